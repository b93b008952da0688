"""How the Flower App's train rounds close: at the K-th reply or a deadline; late replies written as late; a
message never fetched written as undelivered; a node that missed a round not sampled until Flower sees it."""

from __future__ import annotations

import csv
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MessageType, MetricRecord, RecordDict
from flwr.common.constant import ErrorCode
from flwr.proto.message_pb2 import PullObjectResponse
from flwr.proto.node_pb2 import Node, NodeInfo
from flwr.supercore.task_identity import TaskIdentity

from fedbandwidth.app_rounds import RoundGrid, fetched, sample_size, wasted_bytes
from fedbandwidth.checks import ConfigError
from fedbandwidth.ledger import Ledger
from fedbandwidth.payload import record_payload_bytes
from fedbandwidth.server_app import TIMELINE_COLUMNS, TimedTrackingFedAvg, append_event, read_settings
from fedbandwidth.tracking import sampling

ARRAYS = ArrayRecord({"w": Array(np.zeros(3, dtype="float32"))})
MODEL = record_payload_bytes(ARRAYS)


@pytest.fixture
def identity(monkeypatch):
    """Messages need a run id and a node id, as inside a ServerApp."""
    monkeypatch.setattr(TaskIdentity, "_run_id", 7)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 3)


class Grid:
    """A SuperLink in miniature: nodes with their online_until; node -> pulls before it replies (None: never)."""

    def __init__(self, online: dict[int, float], reply_after: dict[int, int | None]) -> None:
        self.online, self.reply_after, self.pushed, self.pulls = dict(online), dict(reply_after), {}, 0
        self.uploading: dict[str, threading.Event] = {}  # message id -> set when its reply's upload has crossed

    def get_node_ids(self):
        return list(self.online)

    def get_nodes(self):
        return [NodeInfo(node_id=n, online_until=t) for n, t in self.online.items()]

    def push_messages(self, messages):
        ids = []
        for i, msg in enumerate(messages):
            msg.metadata.__dict__["_message_id"] = f"m{len(self.pushed) + i}"
            ids.append(msg.metadata.message_id)
        self.pushed.update(zip(ids, messages, strict=True))
        return ids

    def pull_messages(self, message_ids):
        self.pulls += 1
        replies = []
        for msg_id in sorted(message_ids):
            if msg_id in self.uploading:  # Flower pulls a reply's objects in turn, waiting while they upload
                self.uploading[msg_id].wait()
            msg = self.pushed[msg_id]
            after = self.reply_after[msg.metadata.dst_node_id]
            if after is not None and self.pulls > after:
                content = RecordDict({"arrays": ARRAYS, "metrics": MetricRecord({"num-examples": 1})})
                reply = Message(content, reply_to=msg)
                reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
                replies.append(reply)
                self.reply_after[msg.metadata.dst_node_id] = None  # one reply a message
        return replies


def train_messages(nodes, server_round=1):
    config = ConfigRecord({"server-round": server_round})
    return [
        Message(RecordDict({"arrays": ARRAYS, "config": config}), dst_node_id=n, message_type=MessageType.TRAIN)
        for n in nodes
    ]


@pytest.fixture
def timeline(tmp_path):
    path = tmp_path / "timeline.csv"
    path.write_text(",".join(TIMELINE_COLUMNS) + "\n")
    return path


def round_grid(grid, timeline, **closing) -> tuple[RoundGrid, Ledger]:
    ledger = Ledger()
    rounds = RoundGrid(grid, ledger, lambda r, e, n: append_event(timeline, r, e, n), **closing)
    rounds.poll_seconds = 0.001
    return rounds, ledger


ROUND_EVENTS = ("round_start", "round_sent", "round_closed")


def events(timeline, kinds=None) -> list[tuple]:
    """The timeline's events about nodes (or of `kinds`), as (round, event, node id)."""
    with timeline.open(newline="") as f:
        rows = [(r["round"], r["event"], r["node_id"]) for r in csv.DictReader(f)]
    return [r for r in rows if (r[1] in kinds if kinds else r[1] not in ROUND_EVENTS)]


def rows(ledger) -> list[tuple]:
    return sorted((t.node_id, t.direction, t.payload_bytes, t.delivered, t.late) for t in ledger.transfers)


def test_sample_size_over_commits_within_the_nodes_there_are():
    assert sample_size(10, 0.5, 2) == (5, 5)
    assert sample_size(10, 0.5, 2, over_commit=1.3) == (5, 7)  # ceil(6.5)
    assert sample_size(10, 0.3, 2, over_commit=1.5) == (3, 5)  # ceil(4.5)
    assert sample_size(3, 1.0, 2, over_commit=1.5) == (3, 3)  # never more than there are
    assert sample_size(1, 1.0, 2) == (1, 1)


def test_a_round_closes_at_its_kth_reply_and_the_late_one_is_written_late(identity, timeline):
    grid = Grid({11: 100.0, 12: 100.0, 13: 100.0}, {11: 0, 12: 0, 13: None})
    rounds, ledger = round_grid(grid, timeline, close_at=2)
    replies = rounds.send_and_receive(train_messages([11, 12, 13]), timeout=60)
    assert sorted(r.metadata.src_node_id for r in replies) == [11, 12]
    assert rounds.sampleable([11, 12, 13]) == [11, 12]  # 13 answered nothing yet, nor heartbeat since
    grid.reply_after[13] = 0  # now it replies, after its round closed
    rounds.drain()
    assert rows(ledger) == [
        (11, "down", MODEL, True, False),
        (12, "down", MODEL, True, False),
        (13, "down", MODEL, True, False),  # it was fetched: the reply came
        (13, "up", MODEL, True, True),  # late: it crossed, and was wasted
    ]
    assert events(timeline) == [("1", "late_reply", "13")]
    assert events(timeline, ("round_sent", "round_closed")) == [("1", "round_sent", ""), ("1", "round_closed", "")]
    assert rounds.sampleable([11, 12, 13]) == [11, 12, 13]  # Flower saw it again
    # the in-time ups are the strategy's to write; with them, only node 13's bytes are wasted
    ledger.record(1, "train", 11, "up", MODEL, 12)
    ledger.record(1, "train", 12, "up", MODEL, 12)
    assert wasted_bytes(ledger.transfers) == {"down": MODEL, "up": MODEL, "total": 2 * MODEL}


def test_a_late_reply_still_uploading_does_not_hold_back_the_next_rounds_replies(identity, timeline):
    grid = Grid({11: 100.0, 12: 100.0, 13: 100.0}, {11: 0, 12: 0, 13: None})
    rounds, ledger = round_grid(grid, timeline, close_at=2)
    rounds.send_and_receive(train_messages([11, 12, 13]), timeout=60)  # 13's message m2 is pending
    grid.uploading["m2"] = uploading = threading.Event()  # its reply is there, its objects still crossing
    grid.reply_after.update({11: 0, 12: 0, 13: 0})
    threading.Timer(1.0, uploading.set).start()  # the upload ends 1 s from now
    replies = rounds.send_and_receive(train_messages([11, 12], server_round=2), timeout=60)
    assert sorted(r.metadata.src_node_id for r in replies) == [11, 12] and not uploading.is_set()  # not held
    rounds.drain()
    assert uploading.is_set() and events(timeline) == [("1", "late_reply", "13")]
    assert [(t.round, t.node_id) for t in ledger.transfers if t.late] == [(1, 13)]


def test_a_message_never_fetched_is_undelivered_and_its_node_not_sampled_until_seen(identity, timeline):
    grid = Grid({11: 100.0, 12: 100.0}, {11: 0, 12: None})  # 12 was killed: it never replies
    rounds, ledger = round_grid(grid, timeline)
    replies = rounds.send_and_receive(train_messages([11, 12]), timeout=0.05)
    assert [r.metadata.src_node_id for r in replies] == [11]
    assert rows(ledger) == [(11, "down", MODEL, True, False), (12, "down", MODEL, False, False)]
    assert ledger.total_bytes() == MODEL  # not counted as moved
    assert events(timeline) == [("1", "node_lost", "12")] and rounds.pending == {}
    assert rounds.sampleable([11, 12]) == [11]  # still listed by Flower, not sampled
    grid.online[12] = 130.0  # a heartbeat after its miss: it is alive after all
    assert rounds.sampleable([11, 12]) == [11, 12]


def test_an_error_reply_from_the_superlink_makes_a_message_undelivered(identity, timeline):
    grid = Grid({11: 100.0}, {11: None})
    rounds, ledger = round_grid(grid, timeline)
    (msg,) = train_messages([11])
    error = Error(ErrorCode.NODE_UNAVAILABLE, "the node missed its heartbeats")
    grid.pull_messages = lambda ids: [Message(error, reply_to=msg)] if msg.metadata.message_id in ids else []
    assert rounds.send_and_receive([msg], timeout=60) == []
    assert rows(ledger) == [(11, "down", MODEL, False, False)] and rounds.sampleable([11]) == []


def test_a_deadline_closes_the_round_whatever_came_back(identity, timeline):
    grid = Grid({11: 100.0, 12: 100.0}, {11: 0, 12: 10**9})
    rounds, _ = round_grid(grid, timeline, deadline=0.05)
    replies = rounds.send_and_receive(train_messages([11, 12]), timeout=60)
    assert [r.metadata.src_node_id for r in replies] == [11] and len(rounds.pending) == 1  # 12 may still be late


def test_the_strategy_over_commits_and_leaves_missing_nodes_out(identity, timeline):
    grid = Grid({n: 100.0 for n in range(1, 11)}, {n: 0 for n in range(1, 11)})
    rounds, ledger = round_grid(grid, timeline)
    rounds.missing[10] = 100.0
    fedavg = TimedTrackingFedAvg(ledger, timeline, wait_seconds=0, over_commit=1.3, **sampling(0.5, 0.0, 2, 2))
    messages = fedavg.configure_train(2, ARRAYS, ConfigRecord(), rounds)
    sampled = {m.metadata.dst_node_id for m in messages}
    assert len(sampled) == 6 and 10 not in sampled  # K = int(9 * 0.5) = 4, ceil(1.3 * 4) = 6 of the 9 left
    assert rounds.wanted == 4 and ledger.transfers == []  # closes at K; rows come once delivered


def test_straggler_run_config_is_checked():
    assert read_settings({"over-commit": 1.3, "close-at": 3, "deadline": 20}).deadline == 20.0
    with pytest.raises(ConfigError, match="over-commit must be a number >= 1"):
        read_settings({"over-commit": 0.5})
    with pytest.raises(ConfigError, match="deadline must be a number >= 0"):
        read_settings({"deadline": -1})


class Runtime:
    """The part of a deployment's HttpGrid the fetch probe uses: PullObject on the SuperLink's store."""

    def __init__(self, stored: set[str]) -> None:
        self.stored = stored

    def PullObject(self, request):  # noqa: N802 (Flower's name)
        return PullObjectResponse(object_found=request.object_id in self.stored)


def test_a_message_fetched_whole_but_never_answered_is_delivered(identity, timeline):
    grid = Grid({11: 100.0, 12: 100.0}, {11: None, 12: None})  # both die without replying
    # m0 (node 11's) left the store: its node confirmed it had it all; m1 (node 12's) is there: never fetched
    grid._runtime_client, grid.node, grid._run = Runtime({"m1"}), Node(node_id=0), SimpleNamespace(run_id=7)
    rounds, ledger = round_grid(grid, timeline)
    messages = train_messages([11, 12])
    assert rounds.send_and_receive(messages, timeout=0.05) == []
    assert rows(ledger) == [(11, "down", MODEL, True, False), (12, "down", MODEL, False, False)]
    assert fetched(object(), "m0") is None  # a grid that cannot tell (simulation)
