"""Codecs in Flower's Message API: a client mod and a FedAvg that encode/decode the arrays they carry.

The server tells each client which codecs to use (config keys ``codec-up``, ``codec-down``), so one
ClientApp serves any codec, in simulation or on a Deployment Engine. A client's error-feedback
residual lives in ``context.state``, where Flower keeps a node's state between rounds. The ledger
records the encoded ArrayRecords: the bytes that actually travel.

The downlink may send the global *update*: with ``delta`` in the down-codec, the server sends each node the
difference between the global model and the model that node holds (what it decoded the last time it took
part, kept in its ``context.state``), so what a lossy codec dropped is sent again in the next delta (the
downlink's error feedback), and a node that missed rounds catches up with one delta from the model it has.
A node the server has sent nothing yet gets the full model, with the chain's value codec only. Both sides
keep the held model only once the node's reply came back, so they agree on it; the ledger counts every
message as it is encoded for its node.
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

from ..ledger import Ledger
from ..names import ARRAYS, CONFIG, METRICS, PARTITION_ID
from ..tracking import MessageTrackingFedAvg, sampling
from .chain import DELTA, SPARSIFY, Codec, parse_codec
from .encoding import decode, encode

UP_KEY, DOWN_KEY = "codec-up", "codec-down"  # config keys naming the codecs of a train message
RESIDUAL_KEY = "codec-residual"  # context.state key of a client's error-feedback residual
HOLD_KEY = "codec-hold"  # config key: True when the client must keep what it decoded (a delta downlink)
HELD_KEY = "codec-held"  # context.state key of the model a client holds (the base of the next downlink delta)
# A train reply's timing metrics (seconds): local steps, encoding the reply, decoding the broadcast.
COMPUTE_SECONDS, ENCODE_SECONDS, DECODE_SECONDS = "compute-seconds", "encode-seconds", "decode-seconds"
CLIENT_SECONDS = (COMPUTE_SECONDS, ENCODE_SECONDS, DECODE_SECONDS)
SERVER_SECONDS = "server_seconds"  # a round's server time: decoding, aggregating and encoding the broadcast


def to_numpy(record: ArrayRecord) -> dict[str, np.ndarray]:
    """An ArrayRecord as name -> numpy array."""
    return {k: a.numpy() for k, a in record.items()}


def to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    """Name -> numpy array as an ArrayRecord."""
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def message_codecs(msg: Message) -> tuple[Codec, Codec]:
    """(uplink, downlink) codecs named in a message's config; none if absent."""
    config = msg.content.config_records.get(CONFIG, ConfigRecord())
    return parse_codec(str(config.get(UP_KEY, ""))), parse_codec(str(config.get(DOWN_KEY, "")))


def load_residual(context: Context) -> dict[str, np.ndarray]:
    """The residual this client kept last round (empty the first time)."""
    record = context.state.array_records.get(RESIDUAL_KEY)
    return to_numpy(record) if record is not None else {}


def encode_reply(
    reply: Message, up: Codec, received: dict[str, np.ndarray], context: Context, server_round: int = 1
) -> None:
    """Replace the reply's arrays by their encoding; keep the new residual (or other codec state) in context.state."""
    local = to_numpy(reply.content.array_records[ARRAYS])
    encoded = encode(up, local, received, load_residual(context), server_round)
    if up.sparsifier is not None and up.sparsifier.error_feedback:
        context.state[RESIDUAL_KEY] = to_record(encoded.residual)
    reply.content[ARRAYS] = to_record(encoded.arrays)


def full_model_codec(down: Codec) -> Codec:
    """What a node that holds no model gets: the down-codec without delta and sparsifier (the weights, shrunk)."""
    return Codec(tuple(s for s in down.stages if s.order not in (DELTA, SPARSIFY)))


def decode_down(down: Codec, parts: dict[str, np.ndarray], shapes: dict[str, tuple], context: Context):
    """The model a node receives: decoded, against the model it holds if the message is a delta."""
    if down.stage("delta") is None:
        return decode(down, parts, shapes)
    if HELD_KEY not in context.state.array_records:
        raise ValueError("a delta downlink needs the model this node holds, and it holds none")
    return decode(down, parts, shapes, to_numpy(context.state.array_records[HELD_KEY]))


def make_codec_mod(shapes: dict[str, tuple]) -> Mod:
    """A client mod: decode the model coming down, encode what goes back up (codecs from the config)."""

    def codec_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if ARRAYS not in msg.content.array_records:
            return call_next(msg, context)
        started = time.perf_counter()
        up, down = message_codecs(msg)
        received = decode_down(down, to_numpy(msg.content.array_records[ARRAYS]), shapes, context)
        msg.content[ARRAYS] = to_record(received)
        decoded = time.perf_counter()
        reply = call_next(msg, context)
        if (
            msg.metadata.message_type == MessageType.TRAIN
            and not reply.has_error()
            and ARRAYS in reply.content.array_records
        ):
            encoding = time.perf_counter()
            config = msg.content.config_records.get(CONFIG, ConfigRecord())
            encode_reply(reply, up, received, context, int(config.get("server-round", 1)))
            if config.get(HOLD_KEY, False):
                context.state[HELD_KEY] = to_record(received)
            add_seconds(reply, {DECODE_SECONDS: decoded - started, ENCODE_SECONDS: time.perf_counter() - encoding})
        return reply

    return codec_mod


def add_seconds(reply: Message, seconds: dict[str, float]) -> None:
    """Add timing entries to a reply's metrics (if it has a MetricRecord)."""
    if METRICS in reply.content.metric_records:
        for key, value in seconds.items():
            reply.content.metric_records[METRICS][key] = float(value)


def mean_client_seconds(replies: list[Message]) -> dict[str, float]:
    """Per timing metric: its mean over the replies that report it, keyed as the train JSON's rounds are."""
    means = {}
    for key in CLIENT_SECONDS:
        values = [float(r.content[METRICS][key]) for r in replies if key in r.content.metric_records.get(METRICS, {})]
        if values:
            means[key.replace("-", "_")] = float(np.mean(values))
    return means


def partition_order(reply: Message) -> tuple:
    """Sort key of a reply: the partition id its metrics report (then its node id); error replies first."""
    if reply.has_error() or METRICS not in reply.content.metric_records:
        return (-1, reply.metadata.src_node_id)
    return (reply.content.metric_records[METRICS].get(PARTITION_ID, -1), reply.metadata.src_node_id)


def metrics_but_partition(records: list[RecordDict], weighting_key: str) -> MetricRecord:
    """FedAvg's weighted average of the replies' metrics, without the partition id (an average of ids means nothing)."""
    metrics = aggregate_metricrecords(records, weighting_key)
    metrics.pop(PARTITION_ID, None)
    return metrics


class CompressedFedAvg(MessageTrackingFedAvg):
    """FedAvg that sends encoded models down, decodes the encoded updates coming up, and records both.

    Replies are averaged in partition order, not arrival order: float32 sums depend on their order, and
    which client finishes first varies from run to run (node ids are random too). With `stop`, rounds
    after it returns True sample no node (Flower's loop has no early exit).
    """

    def __init__(
        self,
        ledger: Ledger,
        up_codec: Codec = Codec(),
        down_codec: Codec = Codec(),
        stop=lambda: False,
        timing: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(ledger, **{"train_metrics_aggr_fn": metrics_but_partition, **kwargs})
        self.up_codec, self.down_codec = up_codec, down_codec
        self.stop = stop  # called before each round: True = train no more
        self.timing = timing if timing is not None else {}  # round -> {compute_seconds, ..., server_seconds}
        self.global_arrays: dict[str, np.ndarray] = {}  # this round's full-precision global model
        self.held: dict[int, dict[str, np.ndarray]] = {}  # node -> the model it holds (delta downlink only)
        self.sent: dict[int, dict[str, np.ndarray]] = {}  # node -> what it decodes from this round's message

    def configure_train(self, server_round, arrays, config, grid):
        """FedAvg's sampling and messages, or none once `stop()` says the run is over."""
        return [] if self.stop() else super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        """Average the replies (nothing in a round that trained no node); time it and note the clients' times."""
        started = time.perf_counter()
        replies = list(replies)
        if not replies:
            return None, None
        self.record_client_seconds(server_round, [r for r in replies if not r.has_error()])
        result = super().aggregate_train(server_round, replies)
        self.add_server_seconds(server_round, time.perf_counter() - started)
        return result

    def record_client_seconds(self, server_round: int, replies: list[Message]) -> None:
        """Keep the mean client timings of this round's replies."""
        self.timing.setdefault(server_round, {}).update(mean_client_seconds(replies))

    def add_server_seconds(self, server_round: int, seconds: float) -> None:
        """Add server time (encoding the broadcast, decoding and aggregating the replies) to a round."""
        entry = self.timing.setdefault(server_round, {})
        entry[SERVER_SECONDS] = entry.get(SERVER_SECONDS, 0.0) + seconds

    def encode_train(self, messages, arrays, config):
        """Send each sampled node its encoded model (or the delta from the one it holds) and the codec names."""
        started = time.perf_counter()
        self.global_arrays = to_numpy(arrays)
        shapes = {k: v.shape for k, v in self.global_arrays.items()}
        hold = self.down_codec.stage("delta") is not None
        full = full_model_codec(self.down_codec)
        full_parts = encode(full, self.global_arrays).arrays
        full_sent = decode(full, full_parts, shapes)
        out = []
        for m in messages:
            node, held = m.metadata.dst_node_id, self.held.get(m.metadata.dst_node_id)
            codec = self.down_codec if hold and held is not None else full
            parts = full_parts if codec is full else encode(codec, self.global_arrays, held).arrays
            self.sent[node] = full_sent if codec is full else decode(codec, parts, shapes, held)
            codec_config = ConfigRecord({**config, UP_KEY: str(self.up_codec), DOWN_KEY: str(codec), HOLD_KEY: hold})
            content = RecordDict({self.arrayrecord_key: to_record(parts), self.configrecord_key: codec_config})
            out.append(Message(content, message_type=m.metadata.message_type, dst_node_id=node))
        self.add_server_seconds(int(config.get("server-round", 0)), time.perf_counter() - started)
        return out

    def decode_replies(self, replies):
        """Decode each encoded reply against this round's full-precision global model; sort them in partition order."""
        shapes = {k: v.shape for k, v in self.global_arrays.items()}
        for reply in replies:
            if not reply.has_error() and self.arrayrecord_key in reply.content.array_records:
                if self.down_codec.stage("delta") is not None:  # the node decoded what it was sent: it holds it now
                    self.held[reply.metadata.src_node_id] = self.sent[reply.metadata.src_node_id]
                parts = to_numpy(reply.content.array_records[self.arrayrecord_key])
                decoded = decode(self.up_codec, parts, shapes, self.global_arrays)
                reply.content[self.arrayrecord_key] = to_record(decoded)
        return sorted(replies, key=partition_order)


def compressed_server_app(
    arrays: dict[str, np.ndarray],
    ledger: Ledger,
    up: Codec,
    down: Codec,
    rounds: int = 1,
    supernodes: int = 2,
    fraction: float = 1.0,
):
    """A ServerApp running CompressedFedAvg from `arrays` (for measuring codecs with any ClientApp)."""
    from flwr.serverapp import Grid, ServerApp

    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        strategy = CompressedFedAvg(ledger, up, down, **sampling(fraction, 0.0, 1, supernodes))
        strategy.start(grid=grid, initial_arrays=to_record(arrays), num_rounds=rounds)

    return server
