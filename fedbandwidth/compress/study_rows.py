"""The compression study's CSV: one row a run, its curves, and its bytes (up, down, total) to each target.

A row holds what the run measured: the held-out losses after every round on the validation split (what
tuning decides on) and on the test split (what is reported), the uplink and downlink payload bytes of
every round, the per-round timing `train --json` records, and its run seconds. The bytes to each
target (1.01, 1.02, 1.05 x the reference's mean final test loss) are derived from those curves once
the regime's reference is known; `with_targets` fills them, so total = up + down in every row.
"""

from __future__ import annotations

import json
import math

TARGET_FACTORS = (1.01, 1.02, 1.05)  # L* = factor x the reference's mean final test loss
HEADLINE = 1.01  # the target ratios and "best" are measured at
FLAT = 0.01  # a loss has flattened once it improves by less than this (relative) over its last quarter
TIMING_KEYS = ("compute_seconds", "encode_seconds", "decode_seconds", "server_seconds")  # per round, if recorded
SPLITS = ("val", "test")  # validation: tuning decides on it; test: what is reported
RUN_COLUMNS = [
    "regime", "stage", "setting", "family", "seed", "lr", "command", "rounds", "local_steps", "supernodes",
    "fraction", "up_codec", "down_codec", "lora_rank", "lora_rule", "rounds_run", "up_bytes", "down_bytes",
    "total_bytes", "base_download_bytes", "final_val_loss", "final_test_loss", "val_losses", "test_losses",
    "up_bytes_per_round", "down_bytes_per_round", *TIMING_KEYS, "run_seconds",
]  # fmt: skip


def target_columns(factor: float) -> list[str]:
    """The derived columns of one target: the round that reached it and the up, down, total bytes through it."""
    return [f"{k}_to_{factor}" for k in ("round", "up_bytes", "down_bytes", "total_bytes")]


COLUMNS = RUN_COLUMNS + [c for f in TARGET_FACTORS for c in target_columns(f)]


def numbers(cell) -> list[float]:
    """A space-separated column as floats ([] for an empty cell or NaN)."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    return [float(x) for x in str(cell).split()]


def joined(values) -> str:
    """Values as one space-separated cell (floats at full precision); "" when there are none."""
    return " ".join(repr(v) if isinstance(v, float) else str(v) for v in values)


def round_loss(entry: dict, split: str) -> float | None:
    """A round entry's held-out loss on `split` ("val"/"test"); the single eval_loss of an older train JSON."""
    return entry.get(f"{split}_loss", entry.get("eval_loss"))


def final_loss(losses: list[float], rounds: int) -> float:
    """The loss after the run's own `rounds` (also when it went on chasing a target), or its last."""
    return losses[min(rounds, len(losses)) - 1] if losses else math.nan


def timing_cells(entries: list[dict]) -> dict:
    """Per-round timing columns: space-separated seconds, empty when train did not record them."""
    return {k: joined(e[k] for e in entries if e.get(k) is not None) for k in TIMING_KEYS}


def csv_row(run: dict, report: dict) -> dict:
    """The row of a finished run: `run` names it (regime, stage, setting, family, seed, lr, argv), `report` is
    its `train --json`."""
    cfg, entries = report["config"], report["rounds"]
    val = [round_loss(e, "val") for e in entries]
    test = [round_loss(e, "test") for e in entries]
    up, down = [e["up_bytes"] for e in entries], [e["down_bytes"] for e in entries]
    base = report.get("model", {}).get("uncompressed_message_bytes", 0) if cfg.get("lora_rank") else 0
    keys = ("rounds", "local_steps", "supernodes", "fraction", "up_codec", "down_codec", "lora_rank", "lora_rule")
    return {
        **{k: run[k] for k in ("regime", "stage", "setting", "family", "seed")},
        "lr": cfg["lr"], "command": json.dumps(run["argv"]), **{k: cfg.get(k) for k in keys},
        "rounds_run": len(entries), "up_bytes": sum(up), "down_bytes": sum(down), "total_bytes": sum(up) + sum(down),
        "base_download_bytes": base,
        "final_val_loss": final_loss(val, cfg["rounds"]), "final_test_loss": final_loss(test, cfg["rounds"]),
        "val_losses": joined(val), "test_losses": joined(test),
        "up_bytes_per_round": joined(up), "down_bytes_per_round": joined(down),
        **timing_cells(entries), "run_seconds": report["wall_seconds"],
    }  # fmt: skip


def losses_of(row, split: str) -> list[float]:
    """A row's held-out losses after rounds 1, 2, ... on `split` ("val" or "test")."""
    return numbers(row[f"{split}_losses"])


def bytes_to(row, target: float, split: str = "test") -> tuple[int, int, int] | None:
    """(round, cumulative up, cumulative down bytes) at the first round whose `split` loss <= target; None if never."""
    up, down = numbers(row["up_bytes_per_round"]), numbers(row["down_bytes_per_round"])
    for r, loss in enumerate(losses_of(row, split), 1):
        if loss <= target:
            return r, int(sum(up[:r])), int(sum(down[:r]))
    return None


def target_cells(row, factor: float, target: float | None) -> dict:
    """One target's derived columns of a row: round, up, down, total bytes (all None if unknown or unreached)."""
    reached = bytes_to(row, target) if target is not None else None
    values = (None,) * 4 if reached is None else (*reached, reached[1] + reached[2])
    return dict(zip(target_columns(factor), values, strict=True))


def with_targets(frame, targets: dict[str, dict[float, float]]):
    """The frame with every row's bytes to each of its regime's targets filled in (None where unknown)."""
    import pandas as pd

    frame = frame.reset_index(drop=True)
    cells = [
        {k: v for f in TARGET_FACTORS for k, v in target_cells(row, f, targets.get(row["regime"], {}).get(f)).items()}
        for _, row in frame.iterrows()
    ]
    derived = pd.DataFrame(cells, columns=COLUMNS[len(RUN_COLUMNS) :], index=frame.index, dtype="object")
    return pd.concat([frame[RUN_COLUMNS], derived], axis=1)


def gained_little(shorter: float, longer: float) -> bool:
    """True when the longer run's final loss is less than FLAT (relative) below the shorter run's, or above it."""
    return longer > (1 - FLAT) * shorter


def flattened(losses: list[float], tolerance: float = FLAT) -> bool:
    """True when the loss improved by less than `tolerance` (relative) over the last quarter of the rounds."""
    if len(losses) < 4:
        return False
    quarter = len(losses) // 4
    start, end = losses[-quarter - 1], losses[-1]
    return (start - end) / start < tolerance
