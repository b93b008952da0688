"""The study's runs as fleet timings: each setting's seeds, read from the study's CSV, as wire.lever_time runs.

It joins the two halves of the project below it (the study in compress/, the fleet in wire/), so it sits in the
top layer with the command line and the explorer.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..compress.study_rows import numbers
from ..wire.lever_time import LeverRun

CLIENT_SECONDS = ("compute_seconds", "encode_seconds", "decode_seconds")  # the CSV's per-round client timing


def seed_run(row, factor: float = 1.01) -> LeverRun | None:
    """The LeverRun of one CSV row: its rounds to `factor` x the reference's loss, each round's bytes per sampled
    client and its client seconds (mean over those rounds); None if it never got there."""
    rounds = row[f"round_to_{factor}"]
    if rounds is None or (isinstance(rounds, float) and math.isnan(rounds)):
        return None
    rounds, sampled = int(rounds), max(int(int(row.supernodes) * float(row.fraction)), 1)
    seconds = sum(sum(numbers(row[k])[:rounds]) / rounds for k in CLIENT_SECONDS if isinstance(row[k], str))
    down, up = (round(row[f"{d}_bytes_to_{factor}"] / rounds / sampled) for d in ("down", "up"))
    return LeverRun(rounds, down, up, seconds, int(row.supernodes), float(row.fraction))


def study_runs(csv: Path) -> dict[tuple[str, str], list[LeverRun]]:
    """(regime, setting) -> the LeverRun of each seed, for the reference and every setting whose every seed got
    to L*, from the study's CSV."""
    import pandas as pd

    from ..compress.study import reference_rows, setting_rows, study_frame

    frame = study_frame(pd.read_csv(csv))
    runs = {}
    for regime in dict.fromkeys(frame.regime):
        names = ["reference", *[n for n in dict.fromkeys(frame[frame.regime == regime].setting) if n != "reference"]]
        for name in names:
            rows = reference_rows(frame, regime) if name == "reference" else setting_rows(frame, regime, name)
            seeds = [seed_run(row) for _, row in rows.iterrows()]
            if seeds and all(seeds):
                runs[regime, name] = seeds
    return runs
