"""benchmarks/fleet_validation.py counts out of a round the nodes still busy with an earlier round's message."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fleet_validation.py"


@pytest.fixture(scope="module")
def validation():
    """The validation script as a module (nothing runs on import)."""
    spec = importlib.util.spec_from_file_location("fleet_validation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_node_still_computing_or_uploading_an_earlier_reply_is_busy(validation):
    report = {
        "timing": [
            {"round": 1, "node": 0, "direction": "up", "start_seconds": 20.0, "measured_seconds": 5.0},
            {"round": 1, "node": 1, "direction": "up", "start_seconds": None, "measured_seconds": None},
            {"round": 2, "node": 0, "direction": "up", "start_seconds": 27.0, "measured_seconds": 1.0},
        ],
        "clientapp": [
            {"round": 1, "node": 1, "left": 90.0},
            {"round": 1, "node": 2, "left": 10.0},
            {"round": 2, "node": 2, "left": 29.0},
        ],
    }
    sampled = {1: [0, 1, 2, 3], 2: [0, 1, 2], 3: [0, 1, 2, 3]}
    assert validation.busy_partitions(report, sampled, 1, 0.0) == []  # nothing came before round 1
    assert validation.busy_partitions(report, sampled, 2, 24.0) == [0, 1]  # 0 uploads until 25 s, 1 computes
    assert validation.busy_partitions(report, sampled, 3, 30.0) == [1, 3]  # 1 still computes; 3: round 1's fate unknown


def test_the_rounds_send_times_count_from_round_1s_start(validation, tmp_path):
    timeline = tmp_path / "timeline.csv"
    timeline.write_text(
        "round,event,unix_time,node_id\n1,round_start,100.0,\n1,round_sent,101.5,\n2,round_start,120.0,\n"
        "2,round_sent,120.25,\n"
    )
    assert validation.sent_seconds(timeline) == {1: 1.5, 2: 20.25}
