"""benchmarks/fleet_validation.py counts out of a round the nodes still busy with an earlier round's message."""

import math

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def validation():
    """The validation script as a module."""
    return benchmark_script("fleet_validation")


def test_a_node_still_computing_or_uploading_an_earlier_reply_is_busy_until_it_is_done(validation):
    report = {
        "timing": [
            {"round": 1, "node": 0, "direction": "up", "start_seconds": 20.0, "measured_seconds": 5.0},
            {
                "round": 1,
                "node": 1,
                "direction": "up",
                "start_seconds": None,
                "measured_seconds": None,
                "predicted_seconds": 30.0,
            },  # fmt: skip
            {"round": 2, "node": 0, "direction": "up", "start_seconds": 27.0, "measured_seconds": 1.0},
        ],
        "clientapp": [
            {"round": 1, "node": 1, "left": 90.0},  # its upload not measured: 90 + 30 s predicted
            {"round": 1, "node": 2, "left": 10.0},
            {"round": 2, "node": 2, "left": 29.0},
        ],
    }
    sampled = {1: [0, 1, 2, 3], 2: [0, 1, 2], 3: [0, 1, 2, 3]}
    assert validation.busy_seconds(report, sampled, 1, 0.0) == {}  # nothing came before round 1
    assert validation.busy_seconds(report, sampled, 2, 24.0) == {0: 1.0, 1: 96.0}  # 0 uploads until 25 s
    assert validation.busy_seconds(report, sampled, 3, 30.0) == {1: math.inf, 3: math.inf}  # round 2's, 1's: unknown


def test_the_rounds_send_times_count_from_round_1s_start(validation, tmp_path):
    timeline = tmp_path / "timeline.csv"
    timeline.write_text(
        "round,event,unix_time,node_id\n1,round_start,100.0,\n1,round_sent,101.5,\n2,round_start,120.0,\n"
        "2,round_sent,120.25,\n"
    )
    assert validation.sent_seconds(timeline) == {1: 1.5, 2: 20.25}
