"""The Grid meter: every message a ServerApp pushes and every reply it pulls, whatever its records, in a Ledger.

Strategy hooks see only what a strategy builds; a workflow such as SecAgg+ moves most of its bytes outside
them. The Grid is the one door every message of a ServerApp goes through, in simulation and deployment, on
both APIs: `metered(grid, ledger)` wraps its `push_messages` and `pull_messages` (Flower's `send_and_receive`
calls both), and writes one row per message: round, node, direction, message type, stage (SecAgg+'s, when
the message carries one) and its bytes.

What is counted, per message: every record of its RecordDict as Flower counts it (`count_bytes()`):
ArrayRecords as .npy data + keys; ConfigRecords and MetricRecords as 8 B a number (1 B a bool), the length
of each str or bytes, + keys. `payload_bytes` is their sum, `array_bytes` / `config_bytes` / `metric_bytes`
the parts, `tensor_bytes` the raw tensors. What is not: the object framing Flower adds when it moves a
message (each object's header: type, child ids, body length; the message's metadata), protobuf tags and
length prefixes, gRPC/HTTP framing, and Flower's object dedup (an object the SuperLink holds is not sent
again). Error replies carry no records: 0 bytes, one row (their stage says which was lost).
With `objects=True` the meter also writes `object_bytes`: every distinct object of the message (the message
with its metadata, the RecordDict, each record, each array and each 5 MiB chunk) deflated as Flower's Grid
pushes them to a SuperLink that holds none yet (headers and protobuf included; gRPC framing not). It hashes
and serializes every byte again (about 0.1 s for a 56 MB message), so it is off by default.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp

from .ledger import Ledger
from .names import DOWN, GRID, UP
from .payload import record_tensor_bytes


def object_bytes(msg: Message) -> int:
    """Bytes of every distinct object of `msg` as Flower deflates it to push it (what HttpGrid sends at most)."""
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

    return sum(len(obj.deflate()) for obj in get_all_nested_objects(msg).values())


SECAGG_CONFIGS = "secaggplus_configs"  # flwr.common.secure_aggregation.secaggplus_constants.RECORD_KEY_CONFIGS
STAGE_KEY = "stage"  # ... Key.STAGE: the SecAgg+ stage a message down belongs to
ROUND_KEY = "server-round"  # the Message API's FedAvg puts the round in its ConfigRecord (it sets no group_id)


def value_bytes(value) -> int:
    """Bytes Flower counts for one config or metric value: 1 a bool, 8 a number, the length of str or bytes."""
    if isinstance(value, list):
        return sum(value_bytes(v) for v in value)
    if isinstance(value, bool):
        return 1
    return len(value) if isinstance(value, str | bytes) else 8


def config_record_bytes(record: ConfigRecord | MetricRecord) -> int:
    """`count_bytes()` of a ConfigRecord or MetricRecord, also when a list is empty (Flower's raises then)."""
    return sum(value_bytes(v) + len(k) for k, v in record.items())


def message_sizes(msg: Message) -> dict[str, int]:
    """A message's bytes by record kind, as Flower counts them (nothing deserialized); zeros for an error."""
    if msg.has_error() or not msg.has_content():
        return {"array_bytes": 0, "config_bytes": 0, "metric_bytes": 0, "tensor_bytes": 0}
    records = list(msg.content.values())
    return {
        "array_bytes": sum(r.count_bytes() for r in records if isinstance(r, ArrayRecord)),
        "config_bytes": sum(config_record_bytes(r) for r in records if isinstance(r, ConfigRecord)),
        "metric_bytes": sum(config_record_bytes(r) for r in records if isinstance(r, MetricRecord)),
        "tensor_bytes": sum(record_tensor_bytes(r) for r in records if isinstance(r, ArrayRecord)),
    }


def message_stage(msg: Message) -> str:
    """The SecAgg+ stage a message down carries, else its message type."""
    if msg.has_content() and SECAGG_CONFIGS in msg.content.config_records:
        stage = msg.content.config_records[SECAGG_CONFIGS].get(STAGE_KEY)
        if isinstance(stage, str):
            return stage
    return msg.metadata.message_type


def message_round(msg: Message, default: int) -> int:
    """The round a message down belongs to: its group_id, else its config's 'server-round', else `default`."""
    if msg.metadata.group_id.isdigit():
        return int(msg.metadata.group_id)
    if msg.has_content():
        for record in msg.content.config_records.values():
            if isinstance(record.get(ROUND_KEY), int):
                return int(record[ROUND_KEY])
    return default


class GridMeter:
    """Records what goes through one Grid; remembers each pushed message's round, stage and type for its reply."""

    def __init__(self, ledger: Ledger, objects: bool = False) -> None:
        self.ledger = ledger
        self.objects = objects  # also measure object_bytes (hashes and serializes every byte again)
        self.sent: dict[str, tuple[int, str, str]] = {}  # message id -> (round, message type, stage)
        self.round = 0  # the last round seen (a message without one belongs to it)
        self._lock = threading.Lock()

    def record(self, msg: Message, direction: str, round: int, phase: str, stage: str) -> None:
        """Write one message's row."""
        sizes = message_sizes(msg)
        node = msg.metadata.dst_node_id if direction == DOWN else msg.metadata.src_node_id
        payload = sizes["array_bytes"] + sizes["config_bytes"] + sizes["metric_bytes"]
        tensor = sizes.pop("tensor_bytes")
        sizes["object_bytes"] = object_bytes(msg) if self.objects else 0
        self.ledger.record(round, phase, node, direction, payload, tensor, stage=stage, meter=GRID, **sizes)

    def pushed(self, messages: list[Message]) -> None:
        """Record messages just pushed (their ids are set by now)."""
        for msg in messages:
            with self._lock:
                self.round = message_round(msg, self.round)
                key = (self.round, msg.metadata.message_type, message_stage(msg))
                self.sent[msg.metadata.message_id] = key
            self.record(msg, DOWN, *key)

    def pulled(self, replies: Iterable[Message]) -> list[Message]:
        """Record replies just pulled, under the round and stage of the message each answers."""
        replies = list(replies)
        for msg in replies:
            with self._lock:
                fallback = (self.round, msg.metadata.message_type, msg.metadata.message_type)
                key = self.sent.pop(msg.metadata.reply_to_message_id, fallback)
            self.record(msg, UP, *key)
        return replies


def metered(grid: Grid, ledger: Ledger, objects: bool = False) -> Grid:
    """The same Grid, every message it pushes and pulls written to `ledger` (one call; returns `grid`).
    `objects`: also measure each message's object_bytes (slower: see the module's docstring)."""
    meter = GridMeter(ledger, objects)
    push, pull = grid.push_messages, grid.pull_messages

    def push_messages(messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        ids = list(push(messages))
        stored = set(ids)
        meter.pushed([m for m in messages if m.metadata.message_id in stored])
        return ids

    def pull_messages(message_ids: Iterable[str]) -> Iterable[Message]:
        return meter.pulled(pull(message_ids))

    grid.push_messages, grid.pull_messages = push_messages, pull_messages  # send_and_receive calls these
    return grid


class MeteredServerApp(ServerApp):
    """A ServerApp whose Grid is metered into `ledger`; it runs `app` (server_fn or main) unchanged."""

    def __init__(self, app: ServerApp, ledger: Ledger, objects: bool = False) -> None:
        super().__init__()
        self.app, self.ledger, self.objects = app, ledger, objects

    def __call__(self, grid: Grid, context) -> None:
        """Run the wrapped app on the metered grid."""
        self.app(metered(grid, self.ledger, self.objects), context)
