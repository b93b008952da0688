"""Time to L* of a study setting on a fleet: rounds x (the K-th reply's round, compute and codec included)."""

from __future__ import annotations

import numpy as np
import pytest

from fedbandwidth.wire.calibration import Calibration
from fedbandwidth.wire.lever_time import FLEETS, LeverRun, lever_table, time_to_target
from fedbandwidth.wire.links import PROFILES
from fedbandwidth.wire.plots import plot_lever_times

RUN = LeverRun(rounds=4, down_bytes=9_000_000, up_bytes=1_000_000, client_seconds=2.5, clients=5, fraction=1.0)
TURNS = Calibration(pickup_seconds=0.25, turnaround_seconds=0.75)


def test_on_equal_links_every_round_is_one_clients_whole_round():
    from fedbandwidth.wire.turnaround import served_seconds

    link = PROFILES["home broadband"]
    began = link.latency_seconds + 8 * RUN.down_bytes / link.down_bits_per_second + 2.5 + 1.0  # compute, turns
    up = link.latency_seconds + 8 * RUN.up_bytes / link.up_bits_per_second
    one_round = float(served_seconds(np.array([[began]]), np.array([[began + up]]))[0, 0])  # the ServerApp's pull
    assert time_to_target(RUN, "home broadband:1", TURNS) == pytest.approx(4 * one_round)


def test_the_table_has_every_fleet_for_every_setting_with_the_spread_of_its_seeds():
    fast = LeverRun(rounds=2, down_bytes=9_000_000, up_bytes=1_000_000, client_seconds=2.5, clients=5, fraction=1.0)
    rows = lever_table({("scratch", "int8"): [RUN, fast]}, TURNS)
    assert [r["fleet"] for r in rows] == list(FLEETS) and {r["seeds"] for r in rows} == {2}
    home = rows[1]
    assert home["seconds_mean"] == pytest.approx(0.75 * time_to_target(RUN, "home broadband:1", TURNS))
    assert home["seconds_sd"] > 0
    ax = plot_lever_times(rows, "scratch")
    assert len(ax.patches) == 3 and ax.get_xscale() == "log"
    empty = plot_lever_times(rows, "warm-start")  # nothing of this regime reached L* yet: said on the plot
    assert len(empty.patches) == 0 and [t.get_text() for t in empty.texts] == [
        "no setting of this regime has reached L* yet"
    ]


def test_a_study_row_becomes_the_run_it_measured():
    import pandas as pd

    from fedbandwidth.explore.levers import seed_run

    row = pd.Series({"round_to_1.01": 2.0, "supernodes": 10, "fraction": 0.5, "down_bytes_to_1.01": 40_000_000,
                     "up_bytes_to_1.01": 4_000_000, "compute_seconds": "3.0 5.0 9.0", "encode_seconds": "0.5 0.5 0.5",
                     "decode_seconds": float("nan")})  # fmt: skip
    assert seed_run(row) == LeverRun(rounds=2, down_bytes=4_000_000, up_bytes=400_000, client_seconds=4.5,
                                     clients=10, fraction=0.5)  # fmt: skip
    never = row.copy()
    never["round_to_1.01"] = float("nan")
    assert seed_run(never) is None


def test_the_committed_study_gives_the_reference_at_every_seed():
    from pathlib import Path

    import pandas as pd

    from fedbandwidth.compress.study import reference_rows
    from fedbandwidth.explore.levers import study_runs

    csv = Path(__file__).parent.parent / "benchmarks" / "results" / "compression_study.csv"
    runs, seeds = study_runs(csv), len(reference_rows(pd.read_csv(csv), "scratch"))
    reference = runs.get(("scratch", "reference"), [])  # none while the study's reference is still being tuned
    assert len(reference) == seeds and all(r.rounds >= 1 and r.clients == reference[0].clients for r in reference)
