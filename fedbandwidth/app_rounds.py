"""How a training round of the Flower App closes, and what became of each model message it sent.

Flower's `send_and_receive` waits for every reply or its timeout. `RoundGrid` closes a train round at its
`close_at`-th reply or at its deadline instead, and keeps listening: a reply that comes after the close is
*late* (its upload crossed; its bytes are wasted). A model message goes into the ledger once its fate is known:
*delivered* when its node replied (in time or late), *undelivered* when the SuperLink answered with an error
(the node's heartbeat expired) or no reply came within the round timeout (the node never fetched it, or died).

What a ServerApp can know of a message it pushed: the reply; the SuperLink's error reply (NODE_UNAVAILABLE,
once the node missed its heartbeats: ~60 s); and, in a deployment, whether the node fetched it whole: once a
SuperNode has pulled a message and all its objects it confirms receipt, and the SuperLink then deletes the
message's object from its store (`confirm_message_received` in flwr's fleet handlers), so the ServerApp's
`PullObject` for that id finds nothing. A message without reply whose object is still there was never fetched
(or only in part: a node killed mid-download); one whose object is gone was fetched (its node then died or
never answered): delivered, its bytes wasted. Without that probe (simulation) no reply means undelivered.
A node that answered nothing is *missing*, and is not sampled again until Flower sees it again: a reply from
it, or a heartbeat newer than its miss (its `online_until` grew). A killed node sends neither; a restarted one
registers under a new node id.

Late replies are pulled apart, by a thread of their own: Flower's `pull_messages` pulls each reply's objects
in turn, retrying while an upload runs (`pull_objects`), so a late reply still uploading in a pull with the
round's own replies would hold those back until it had crossed (a 3G straggler delayed the next round by 28 s).
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import Message, MessageType

from .checks import ConfigError
from .ledger import Ledger
from .names import ARRAYS, DOWN, TRAIN, UP
from .payload import record_payload_bytes, record_tensor_bytes

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5  # how often replies are pulled while a round is open (Flower's own loop: 3 s)
NODE_LOST, LATE_REPLY = "node_lost", "late_reply"  # timeline events: no reply ever (or an error); a late reply
ROUND_SENT, ROUND_CLOSED = "round_sent", "round_closed"  # timeline events: its models pushed; it closed


def check_at_least(name: str, value, minimum: float) -> float:
    """Return `value` as a float if it is a number >= minimum, else raise ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
        raise ConfigError(f"{name} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def sample_size(nodes: int, fraction: float, min_nodes: int, over_commit: float = 1.0) -> tuple[int, int]:
    """(K, sampled): Flower's sample size K (from `fraction`, `min_nodes`) and ceil(over_commit * K), both <= nodes."""
    k = min(nodes, max(int(nodes * fraction), min_nodes))
    return k, min(nodes, math.ceil(round(over_commit * k, 9)))


@dataclass
class Sent:
    """A model message pushed for a node, waiting for its fate."""

    round: int  # federated round
    node: int  # destination node id
    payload_bytes: int  # ArrayRecord.count_bytes() of its model
    tensor_bytes: int  # raw tensor bytes of its model
    expires: float  # time.monotonic() after which no reply counts any more (push + round timeout)
    message_id: str = ""  # Flower's id of the message (its object id)


def fetched(grid, message_id: str) -> bool | None:
    """Whether a message's node fetched it whole (its object left the SuperLink's store); None: cannot tell."""
    client, node, run = (getattr(grid, name, None) for name in ("_runtime_client", "node", "_run"))
    if client is None or node is None or run is None or not message_id:
        return None  # not a deployment's HttpGrid (e.g. simulation's InMemoryGrid)
    from flwr.proto.message_pb2 import PullObjectRequest

    try:
        found = client.PullObject(PullObjectRequest(node=node, run_id=run.run_id, object_id=message_id))
    except Exception:  # noqa: BLE001  (the probe is evidence, never a reason to stop the run)
        return None
    return not found.object_found


def server_round(msg: Message) -> int:
    """The round a train or evaluate message belongs to (its config's "server-round", as FedAvg sets it; else 0)."""
    config = next((r for r in msg.content.config_records.values() if "server-round" in r), {})
    return int(config.get("server-round", 0))


def sent_record(msg: Message, expires: float) -> Sent:
    """What the ledger needs of a train message: its round, node and model bytes."""
    record = msg.content.array_records[ARRAYS]
    return Sent(
        server_round(msg),
        msg.metadata.dst_node_id,
        record_payload_bytes(record),
        record_tensor_bytes(record),
        expires,
        msg.metadata.message_id,
    )


class RoundGrid:
    """The ServerApp's grid, except that a train round closes at `close_at` replies or `deadline` seconds, each
    model message is written to `ledger` once delivered or not, and late replies are written as late."""

    def __init__(self, grid, ledger: Ledger, event: Callable[[int, str, int], None], close_at=0, deadline=0.0):
        self._grid, self.ledger, self.event = grid, ledger, event
        self.close_at, self.deadline = close_at, deadline  # 0: every sampled node; 0: no deadline
        self.wanted = 0  # replies this round closes at (the strategy's K unless close_at); 0: all
        self.pending: dict[str, Sent] = {}  # message id -> a message of a closed round still without reply
        self.missing: dict[int, float] = {}  # node id -> its online_until when it missed a round
        self.poll_seconds = POLL_SECONDS
        self._lock = threading.RLock()  # pending, missing and the ledger's fates: the round's thread and the late one
        self._stop, self._late = threading.Event(), None  # the late replies' thread, started at the first pending

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def online_until(self) -> dict[int, float]:
        """Node id -> the time until which the SuperLink counts it online (0 when the grid does not say)."""
        return {n.node_id: float(n.online_until or 0.0) for n in self._grid.get_nodes()}

    def sampleable(self, nodes: list[int]) -> list[int]:
        """`nodes` without the missing ones; a missing node whose heartbeat is newer than its miss is back."""
        seen = self.online_until()
        with self._lock:
            for node, then in list(self.missing.items()):
                if node not in seen or seen[node] > then:
                    del self.missing[node]
            return [n for n in nodes if n not in self.missing]

    def send_and_receive(self, messages, *, timeout: float | None = None) -> list[Message]:
        """Push; pull until the round closes; return its in-time replies (evaluate messages: Flower's way)."""
        messages = list(messages)
        if not messages or messages[0].metadata.message_type != MessageType.TRAIN:
            return list(self._grid.send_and_receive(messages, timeout=timeout))
        start = time.monotonic()
        expires = start + (timeout if timeout is not None else math.inf)
        ids = list(self._grid.push_messages(messages))
        sent = {i: sent_record(m, expires) for i, m in zip(ids, messages, strict=True) if i}
        server_round = next(iter(sent.values())).round if sent else 0
        self.event(server_round, ROUND_SENT, "")
        closes = min(expires, start + self.deadline) if self.deadline else expires
        wanted, replies = min(self.wanted or self.close_at or len(sent), len(sent)), []
        while sent and len(replies) < wanted and time.monotonic() < closes:
            replies += self.pull(sent)
            if sent and len(replies) < wanted:
                time.sleep(self.poll_seconds)
        self.event(server_round, ROUND_CLOSED, "")
        self.close(sent)
        return replies

    def pull(self, sent: dict[str, Sent]) -> list[Message]:
        """Pull replies to this round's messages; return the valid ones (an error reply: the message is lost)."""
        replies = []
        for reply in self._grid.pull_messages(set(sent)):
            s = sent.pop(reply.metadata.reply_to_message_id, None)
            with self._lock:
                if s is not None and reply.has_error():
                    self.lose(s)
                elif s is not None:
                    self.settle(s, delivered=True)
                    replies.append(reply)
        return replies

    def pull_late(self) -> None:
        """Pull replies to closed rounds' messages and write them late (blocks while one still uploads)."""
        with self._lock:
            ids = set(self.pending)
        for reply in self._grid.pull_messages(ids) if ids else []:
            with self._lock:
                s = self.pending.pop(reply.metadata.reply_to_message_id, None)
                if s is not None:
                    self.settle_late(s, reply)

    def listen_late(self) -> None:
        """The late replies' thread: pull them every poll until stopped (an error ends it; drain() goes on)."""
        try:
            while not self._stop.is_set():
                self.pull_late()
                self._stop.wait(self.poll_seconds)
        except Exception:  # noqa: BLE001  (the SuperLink gone: drain() pulls what is left, or loses it)
            log.exception("fedbandwidth: pulling late replies failed")

    def settle(self, s: Sent, delivered: bool) -> None:
        """Write a model message into the ledger, delivered or not."""
        self.ledger.record(s.round, TRAIN, s.node, DOWN, s.payload_bytes, s.tensor_bytes, delivered=delivered)

    def lose(self, s: Sent) -> None:
        """No reply will come: delivered only if the SuperLink shows the node fetched it; the node is lost."""
        self.settle(s, delivered=fetched(self._grid, s.message_id) is True)
        self.event(s.round, NODE_LOST, s.node)
        self.missing[s.node] = self.online_until().get(s.node, 0.0)

    def settle_late(self, s: Sent, reply: Message) -> None:
        """A reply after its round closed: the model went down (delivered), the reply up late; the node is back."""
        if reply.has_error() or ARRAYS not in reply.content.array_records:
            return self.lose(s)
        self.settle(s, delivered=True)
        record = reply.content.array_records[ARRAYS]
        size = record_payload_bytes(record), record_tensor_bytes(record)
        self.ledger.record(s.round, TRAIN, s.node, UP, *size, late=True)
        self.event(s.round, LATE_REPLY, s.node)
        self.missing.pop(s.node, None)

    def close(self, sent: dict[str, Sent]) -> None:
        """The round closed: its messages without reply wait (may come late) until they expire, then are lost."""
        seen = self.online_until() if sent else {}
        now = time.monotonic()
        with self._lock:
            for msg_id, s in sent.items():
                self.pending[msg_id] = s
                self.missing[s.node] = seen.get(s.node, 0.0)
            for msg_id, s in [(i, s) for i, s in self.pending.items() if s.expires <= now]:
                del self.pending[msg_id]
                self.lose(s)
        if self.pending and self._late is None:
            self._late = threading.Thread(target=self.listen_late, name="late-replies", daemon=True)
            self._late.start()

    def drain(self) -> None:
        """After the last round: pull late replies until every message still waiting has one or has expired."""
        self._stop.set()
        if self._late is not None:
            self._late.join()
        while self.pending:
            self.pull_late()
            self.close({})
            if self.pending:
                time.sleep(self.poll_seconds)


def wasted_bytes(transfers) -> dict[str, int]:
    """Bytes that crossed but made no counted update: train downloads of a node with no in-time reply that round
    (delivered ones only) and late uploads; {"down", "up", "total"}."""
    counted = {(t.round, t.node_id) for t in transfers if t.phase == TRAIN and t.direction == UP and not t.late}
    down = sum(
        t.payload_bytes
        for t in transfers
        if t.phase == TRAIN and t.direction == DOWN and t.delivered and (t.round, t.node_id) not in counted
    )
    up = sum(t.payload_bytes for t in transfers if t.direction == UP and t.late)
    return {DOWN: down, UP: up, "total": down + up}
