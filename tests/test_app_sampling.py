"""The ServerApp never waits forever: it samples from the nodes connected now."""

from __future__ import annotations

import csv
import time

import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord
from flwr.supercore.task_identity import TaskIdentity

from fedbandwidth.checks import ConfigError
from fedbandwidth.ledger import Ledger
from fedbandwidth.server_app import TIMELINE_COLUMNS, NodeSnapshot, TimedTrackingFedAvg, connected_nodes
from fedbandwidth.tracking import sampling


class Grid:
    """Just enough of Flower's Grid: the node ids connected now."""

    def __init__(self, *node_ids: int) -> None:
        self.node_ids = list(node_ids)

    def get_node_ids(self):
        return list(self.node_ids)


@pytest.fixture
def identity(monkeypatch):
    """Messages need a run id and a node id, as inside a ServerApp."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 7)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 3)


def strategy(tmp_path, min_available: int, wait_seconds: float = 0.0) -> TimedTrackingFedAvg:
    timeline = tmp_path / "timeline.csv"
    timeline.write_text(",".join(TIMELINE_COLUMNS) + "\n")
    return TimedTrackingFedAvg(Ledger(), timeline, wait_seconds=wait_seconds, **sampling(1.0, 0.0, 2, min_available))


def events(tmp_path) -> list[tuple]:
    with (tmp_path / "timeline.csv").open(newline="") as f:
        return [(r["round"], r["event"], r["node_id"]) for r in csv.DictReader(f)]


ARRAYS = ArrayRecord({"w": Array(__import__("numpy").zeros(3, dtype="float32"))})


def test_connected_nodes_waits_at_most_its_seconds():
    started = time.monotonic()
    assert connected_nodes(Grid(1, 2), wanted=3, seconds=0.6) == [1, 2]
    assert 0.5 <= time.monotonic() - started < 5
    assert connected_nodes(Grid(1, 2, 3), wanted=3, seconds=60) == [1, 2, 3]  # enough: no wait


def test_snapshot_grid_keeps_the_nodes_it_saw():
    grid = Grid(1, 2)
    snapshot = NodeSnapshot(grid, grid.get_node_ids())
    grid.node_ids.remove(2)
    assert snapshot.get_node_ids() == [1, 2] and snapshot.node_ids == [1]  # everything else is the grid's


def test_a_round_samples_the_nodes_left(tmp_path, identity):
    fedavg = strategy(tmp_path, min_available=3)  # 3 were wanted; one is gone: Flower alone would wait forever
    messages = fedavg.configure_train(2, ARRAYS, ConfigRecord(), Grid(11, 12))
    assert sorted(m.metadata.dst_node_id for m in messages) == [11, 12]
    assert events(tmp_path) == [("2", "round_start", "")]
    # who never replied is the RoundGrid's to write (tests/test_app_rounds.py)


def test_no_node_at_all_skips_the_round(tmp_path, identity):
    fedavg = strategy(tmp_path, min_available=2)
    assert fedavg.configure_train(3, ARRAYS, ConfigRecord(), Grid()) == []
    assert events(tmp_path) == [("3", "round_start", ""), ("3", "no_nodes", "")]


def test_a_solo_round_samples_one_node_and_the_others_sample_all(tmp_path, identity):
    from fedbandwidth.server_app import read_settings

    timeline = tmp_path / "timeline.csv"
    timeline.write_text(",".join(TIMELINE_COLUMNS) + "\n")
    solo = read_settings({"solo-rounds": "2, 4"}).solo_rounds
    fedavg = TimedTrackingFedAvg(Ledger(), timeline, solo=solo, **sampling(1.0, 0.0, 2, 2))
    sampled = [len(fedavg.configure_train(r, ARRAYS, ConfigRecord(), Grid(11, 12))) for r in (1, 2, 3, 4)]
    assert solo == (2, 4) and sampled == [2, 1, 2, 1]
    assert read_settings({}).solo_rounds == ()
    for bad in ("2,x", "0"):
        with pytest.raises(ConfigError, match="solo-rounds"):
            read_settings({"solo-rounds": bad})
