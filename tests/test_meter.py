"""The Grid meter: every message a ServerApp moves, with its records' bytes, its stage, round, node and direction."""

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from fedbandwidth.ledger import Ledger
from fedbandwidth.meter import config_record_bytes, message_round, message_sizes, message_stage, value_bytes
from fedbandwidth.simulation import SimulationConfig, simulate

ARRAYS = {"a": np.arange(10, dtype=np.float32), "b": np.ones((3, 4), dtype=np.float32)}
ARRAY_BYTES = {"legacy": (128 + 40 + 1) + (128 + 48 + 1), "message": (128 + 40 + 1) + (128 + 48 + 1)}  # npy + key
TENSOR_BYTES = 88


def test_config_bytes_follow_flowers_count_and_allow_empty_lists():
    record = ConfigRecord({"n": 3, "x": 1.5, "flag": True, "name": "abc", "blob": b"\0" * 5, "ids": [1, 2, 3]})
    assert (
        config_record_bytes(record)
        == record.count_bytes()
        == (1 + 8) + (1 + 8) + (4 + 1) + (4 + 3) + (4 + 5) + (3 + 24)
    )
    assert config_record_bytes(ConfigRecord({"dead_nids": []})) == 9  # Flower's count_bytes raises IndexError here
    assert config_record_bytes(MetricRecord({"num-examples": 1, "loss": [0.1, 0.2]})) == 12 + 8 + 4 + 16
    assert value_bytes([b"ab", b"cde"]) == 5


@pytest.fixture
def run_identity(monkeypatch):
    """Flower builds a Message only inside a run: give it one."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 7)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 3)


def test_sizes_stage_and_round_of_a_message(run_identity):
    content = RecordDict({"secaggplus_configs": ConfigRecord({"stage": "share_keys", "7": [b"k" * 3, b"k" * 4]})})
    msg = Message(content=content, dst_node_id=7, message_type="train", group_id="3")
    assert message_stage(msg) == "share_keys" and message_round(msg, 0) == 3
    sizes = {"array_bytes": 0, "config_bytes": 5 + 10 + 1 + 7, "metric_bytes": 0, "tensor_bytes": 0}
    assert message_sizes(msg) == sizes
    config = RecordDict({"config": ConfigRecord({"server-round": 2})})
    plain = Message(content=config, dst_node_id=7, message_type="train")
    assert message_stage(plain) == "train" and message_round(plain, 1) == 2
    assert message_round(Message(content=RecordDict(), dst_node_id=7, message_type="evaluate"), 4) == 4


# Records besides the model, as Flower counts them (keys + 8 B a number + str lengths):
# legacy reply: fitres.status {code: 0, message: "Success"} = 4+8+7+7, fitres.num_examples {num_examples: 1} = 12+8;
# legacy evaluate reply: status 26, metrics {accuracy: 0.0} = 16, loss 4+8 and num_examples 20;
# Message API: config {server-round: r} = 12+8 down; reply metrics {num-examples: 1} = 20 (evaluate + loss: 32).
EXTRA = {
    "legacy": {("train", "down"): (0, 0), ("train", "up"): (26, 20), ("evaluate", "down"): (0, 0),
               ("evaluate", "up"): (26 + 16, 12 + 20)},
    "message": {("train", "down"): (20, 0), ("train", "up"): (0, 20), ("evaluate", "down"): (20, 0),
                ("evaluate", "up"): (0, 32)},
}  # fmt: skip


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_grid_meter_equals_the_strategy_ledger_plus_configs_and_metrics(api):
    grid = Ledger()
    ledger = simulate(SimulationConfig(3, 2, fraction_evaluate=1.0, api=api), ARRAYS, grid_ledger=grid)
    model_rows = {(t.round, t.phase, t.node_id, t.direction): t.payload_bytes for t in ledger.transfers}
    metered = {(t.round, t.phase, t.node_id, t.direction): t.array_bytes for t in grid.transfers if t.array_bytes}
    assert metered == model_rows and len(model_rows) == 2 * (3 + 3 + 3)  # rounds x (train down, up, evaluate down)
    assert {t.meter for t in grid.transfers} == {"grid"} and len(grid.transfers) == 2 * 4 * 3
    for t in grid.transfers:
        assert (t.config_bytes, t.metric_bytes) == EXTRA[api][(t.phase, t.direction)]
        assert t.payload_bytes == t.array_bytes + t.config_bytes + t.metric_bytes and t.stage == t.phase
        assert t.tensor_bytes == (TENSOR_BYTES if t.array_bytes else 0)
    assert sum(t.array_bytes for t in grid.transfers) == ledger.total_bytes() == 18 * ARRAY_BYTES[api]


def test_grid_rows_are_read_back_from_csv(tmp_path):
    ledger = Ledger(tmp_path / "ledger.csv")
    ledger.record(1, "train", 7, "down", 50, 8, stage="setup", config_bytes=50, meter="grid")
    ledger.record(1, "train", 7, "up", 0, 0, delivered=False)
    back = Ledger.from_csv(tmp_path / "ledger.csv")
    assert back.transfers == ledger.transfers and back.transfers[0].stage == "setup"


class EchoGrid:
    """A stand-in Grid: push stores messages under ids, pull answers each with a reply carrying a MetricRecord."""

    def __init__(self) -> None:
        self.stored: dict[str, Message] = {}

    def push_messages(self, messages):
        ids = []
        for i, msg in enumerate(messages):
            msg.metadata.__dict__["_message_id"] = f"m{len(self.stored) + i}"
            ids.append(msg.metadata.message_id)
        self.stored.update({m.metadata.message_id: m for m in messages})
        return ids

    def pull_messages(self, message_ids):
        return [Message(RecordDict({"metrics": MetricRecord({"x": 1})}), reply_to=self.stored[i]) for i in message_ids]

    def send_and_receive(self, messages, *, timeout=None):
        return self.pull_messages(self.push_messages(messages))


def test_metered_grid_writes_pushes_and_their_replies_under_the_pushed_stage(run_identity):
    from fedbandwidth.meter import metered

    ledger = Ledger()
    grid = metered(EchoGrid(), ledger)
    content = RecordDict({"secaggplus_configs": ConfigRecord({"stage": "unmask", "active_nids": [1, 2]})})
    replies = grid.send_and_receive([Message(content=content, dst_node_id=9, message_type="train", group_id="2")])
    assert len(replies) == 1
    down, up = ledger.transfers
    assert (down.round, down.stage, down.direction, down.node_id, down.config_bytes) == (2, "unmask", "down", 9, 38)
    assert (up.round, up.stage, up.direction, up.metric_bytes, up.payload_bytes, up.meter) == (
        2,
        "unmask",
        "up",
        9,
        9,
        "grid",
    )
