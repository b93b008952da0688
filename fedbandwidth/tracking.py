"""FedAvg strategies that write every model they send and receive into a Ledger.

The legacy one is the lesson's ``BandwidthTrackingFedAvg``; the other does the same on
Flower's Message API. Both measure from lengths and headers, never by deserializing, and both average
the replies as Flower's FedAvg does, bit for bit, but on read-only views of the replies' bytes
(Flower deserializes each reply into a copy first).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from logging import WARNING

import numpy as np
from flwr.app import Array, ArrayRecord, Message
from flwr.common import Parameters, log
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.serverapp.strategy import FedAvg

from .ledger import Ledger
from .names import ARRAYS, DOWN, EVALUATE, TRAIN, UP
from .payload import (
    npy_bytes,
    npy_view,
    parameters_payload_bytes,
    parameters_tensor_bytes,
    record_payload_bytes,
    record_tensor_bytes,
)

POLL_SECONDS = 0.01  # how often wait_for_nodes looks again (nodes register within the run's first second)


def record_parameters(ledger: Ledger, server_round: int, phase: str, direction: str, pairs: Iterable) -> None:
    """Record (ClientProxy, FitIns/FitRes/EvaluateIns) pairs of the legacy API."""
    for proxy, ins_or_res in pairs:
        params = ins_or_res.parameters
        ledger.record(
            server_round,
            phase,
            int(proxy.cid),
            direction,
            parameters_payload_bytes(params),
            parameters_tensor_bytes(params),
        )


def record_messages(
    ledger: Ledger, server_round: int, phase: str, direction: str, messages: Iterable[Message], key: str = ARRAYS
) -> None:
    """Record Message-API messages that carry an ArrayRecord under `key` (errors carry none)."""
    for msg in messages:
        if msg.has_error() or key not in msg.content.array_records:
            continue
        node = msg.metadata.dst_node_id if direction == DOWN else msg.metadata.src_node_id
        record = msg.content.array_records[key]
        ledger.record(server_round, phase, node, direction, record_payload_bytes(record), record_tensor_bytes(record))


def wait_for_nodes(count: Callable[[], int], expected: int, timeout: float = 60.0) -> int:
    """Poll `count()` until it reaches `expected` or `timeout` seconds pass; return the last count.

    Flower sizes a sample from the nodes connected *now*; in a simulation they register over
    the first seconds, so without this wait round 1 may sample fewer nodes than the others.
    """
    deadline = time.monotonic() + timeout
    while (seen := count()) < expected and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return seen


class ReadOnceTensors(list):
    """A reply's serialized tensors, each let go of as it is read.

    Flower's FedAvg deserializes each reply whole before adding it, and keeps a round's replies
    until the next round's are in. Read once, a reply's bytes are freed as its arrays are made:
    the replies shrink while the average grows, and nothing of them is left for the next round.
    """

    def __iter__(self):
        for i in range(len(self)):
            tensor, self[i] = self[i], b""
            yield tensor


class ReadOnceRecord(ArrayRecord):
    """An ArrayRecord whose items() hand each Array over once: ReadOnceTensors for the Message API."""

    def items(self):
        """Yield (key, Array) pairs, removing each from the record as it goes."""
        for key in list(self.keys()):
            yield key, self.pop(key)


def read_once_results(results: list) -> list:
    """Legacy fit results whose tensors Flower's aggregation reads once (then they are gone)."""
    for _, res in results:
        res.parameters.tensors = ReadOnceTensors(res.parameters.tensors)
    return results


def read_once_replies(replies: list[Message], key: str) -> list[Message]:
    """Message-API replies whose arrays Flower's aggregation reads once (error replies carry none)."""
    for msg in replies:
        if not msg.has_error() and key in msg.content.array_records:
            msg.content[key] = ReadOnceRecord(dict(msg.content.array_records[key].items()))
    return replies


CHUNK = 1 << 16  # elements a multiply-add handles at once: its product stays in the CPU's cache
PARALLEL_FROM = 8 * CHUNK  # elements from which an array's halves are summed in two threads at once
_local = threading.local()  # each thread's scratch room for a chunk of products
_helper: list[ThreadPoolExecutor] = []  # the one thread that takes the second half (made when first needed)


def scratch(dtype) -> np.ndarray:
    """This thread's room for one chunk of products, as `dtype`."""
    if not hasattr(_local, "room"):
        _local.room = np.empty(CHUNK * 16, np.uint8)
    return _local.room.view(dtype)


def over_halves(work: Callable[[int, int], None], size: int) -> None:
    """work(start, stop) over [0, size): for a big array its two halves at once, in this thread and a helper
    (numpy lets go of the GIL in its loops, so a 2-core machine sums at twice the speed); bit for bit the same."""
    middle = size // 2 // CHUNK * CHUNK
    if size < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return work(0, size)
    if not _helper:
        _helper.append(ThreadPoolExecutor(1, thread_name_prefix="fedbandwidth-sum"))
    second = _helper[0].submit(work, middle, size)
    work(0, middle)
    second.result()


def legacy_factor(x: np.ndarray, factor):
    """The factor Flower's in-place FedAvg multiplies x by: itself, or cast to x's dtype if it cannot be."""
    return factor if np.can_cast(factor, x.dtype, casting="same_kind") else np.array(factor, x.dtype)


def add_product(acc: np.ndarray, x: np.ndarray, factor, dtype) -> None:
    """acc += x * factor, the product rounded to `dtype` first (as Flower's FedAvg), a cache-sized chunk at a time."""
    flat_acc, flat_x = acc.reshape(-1), x.reshape(-1)

    def work(begin: int, end: int) -> None:
        product = scratch(dtype)
        for start in range(begin, end, CHUNK):
            part, into = flat_x[start : min(start + CHUNK, end)], flat_acc[start : min(start + CHUNK, end)]
            np.add(into, np.multiply(part, factor, out=product[: part.size]), out=into)

    over_halves(work, flat_x.size)


def average_parameters(results: list) -> list[np.ndarray]:
    """Flower's legacy aggregate_inplace, bit for bit, reading each reply's arrays as views of its bytes, one
    tensor of every reply at a time (read once, each is let go of once summed)."""
    total = sum(res.num_examples for _, res in results)
    factors = np.asarray([res.num_examples / total for _, res in results])  # np.float64, as Flower's
    counts = {len(res.parameters.tensors) for _, res in results}
    if len(counts) > 1:
        raise ValueError("replies carry different numbers of arrays")
    tensors = [iter(res.parameters.tensors) for _, res in results]
    return [weighted_sum([npy_view(next(t)) for t in tensors], factors) for _ in range(max(counts, default=0))]


def weighted_sum(xs: list[np.ndarray], factors) -> np.ndarray:
    """x0 * f0 + x1 * f1 + ... in Flower's order (the first product, then each next one added, every product in
    its array's dtype), a cache-sized chunk of every reply at a time: the sum stays in cache while they stream by."""
    acc = np.empty(xs[0].shape, xs[0].dtype)
    flat_acc, flats = acc.reshape(-1), [x.reshape(-1) for x in xs]
    (first, first_factor), *rest = [(x, legacy_factor(x, f)) for x, f in zip(flats, factors, strict=True)]

    def work(begin: int, end: int) -> None:
        for start in range(begin, end, CHUNK):
            stop = min(start + CHUNK, end)
            into = flat_acc[start:stop]
            np.multiply(first[start:stop], first_factor, out=into)
            for x, factor in rest:  # Flower: x *= f, then acc += x
                np.add(into, np.multiply(x[start:stop], factor, out=scratch(x.dtype)[: stop - start]), out=into)

    over_halves(work, flat_acc.size)
    return acc


def array_view(array: Array) -> np.ndarray:
    """A Message-API Array as a read-only view of its bytes (Array.numpy() copies them)."""
    return npy_view(array.data) if array.stype == "numpy.ndarray" else array.numpy()


def numpy_array(x: np.ndarray) -> Array:
    """Array(x), as Array.from_numpy_ndarray builds it, its bytes copied once."""
    return Array(dtype=str(x.dtype), shape=tuple(x.shape), stype="numpy.ndarray", data=npy_bytes(x))


def average_records(contents: list, weight_key: str) -> ArrayRecord:
    """Flower's aggregate_arrayrecords, bit for bit, reading each reply's arrays as views of its bytes."""
    weights = [next(iter(content.metric_records.values()))[weight_key] for content in contents]
    total = sum(weights)
    sums: dict[str, np.ndarray] = {}
    for content, weight in zip(contents, weights, strict=True):
        factor = weight / total  # a Python float, as Flower's
        for record in content.array_records.values():
            for key, array in record.items():
                if key not in sums:
                    sums[key] = array_view(array) * factor
                elif np.ndim(sums[key]) == 0:  # a 0-d product is a numpy scalar, rebound as Flower's is
                    sums[key] += array_view(array) * factor
                else:  # Flower: sums[key] += x * factor, the product in its own dtype, which is the sum's
                    add_product(sums[key], array_view(array), factor, sums[key].dtype)
    return ArrayRecord({key: numpy_array(np.asarray(value)) for key, value in sums.items()})


# FedAvg's sampling settings are named differently in the two APIs: Message API name -> legacy name.
LEGACY_SAMPLING_NAMES = {
    "fraction_train": "fraction_fit",
    "min_train_nodes": "min_fit_clients",
    "min_evaluate_nodes": "min_evaluate_clients",
    "min_available_nodes": "min_available_clients",
}


def sampling(
    fraction: float, fraction_evaluate: float, min_nodes: int, min_available: int | None = None, api: str = "message"
) -> dict:
    """FedAvg's sampling keywords for `api`: fractions, at least `min_nodes` sampled of `min_available` connected."""
    kwargs = {
        "fraction_train": fraction,
        "fraction_evaluate": fraction_evaluate,
        "min_train_nodes": min_nodes,
        "min_evaluate_nodes": min_nodes,
        "min_available_nodes": min_available or min_nodes,
    }
    return kwargs if api == "message" else {LEGACY_SAMPLING_NAMES.get(k, k): v for k, v in kwargs.items()}


class LedgerTracking:
    """What the tracking strategies hold: the ledger they write to, and how many nodes to wait for."""

    def __init__(self, ledger: Ledger, expected_nodes: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ledger = ledger
        self.expected_nodes = expected_nodes  # wait for this many nodes before sampling


class BandwidthTrackingFedAvg(LedgerTracking, LegacyFedAvg):
    """The lesson's strategy: FedAvg that logs the size of every model it sends and receives."""

    def configure_fit(self, server_round, parameters, client_manager):
        """Sample clients as FedAvg does, then record the model going down to each."""
        wait_for_nodes(client_manager.num_available, self.expected_nodes)
        instructions = super().configure_fit(server_round, parameters, client_manager)
        record_parameters(self.ledger, server_round, TRAIN, DOWN, instructions)
        return instructions

    def aggregate_fit(self, server_round, results, failures):
        """Record each model that came back (failed clients send none), then average as FedAvg does."""
        record_parameters(self.ledger, server_round, TRAIN, UP, results)
        self.ledger.end_round(server_round)
        if not results or not self.inplace or (failures and not self.accept_failures):
            return super().aggregate_fit(server_round, read_once_results(results), failures)
        metrics = [(res.num_examples, res.metrics) for _, res in results]
        arrays = average_parameters(read_once_results(results))
        parameters = Parameters(tensors=[npy_bytes(a) for a in arrays], tensor_type="numpy.ndarray")  # as Flower's
        if self.fit_metrics_aggregation_fn:
            return parameters, self.fit_metrics_aggregation_fn(metrics)
        if server_round == 1:  # as FedAvg: only once
            log(WARNING, "No fit_metrics_aggregation_fn provided")
        return parameters, {}

    def configure_evaluate(self, server_round, parameters, client_manager):
        """Record the model going down again for evaluation (none if fraction_evaluate is 0)."""
        instructions = super().configure_evaluate(server_round, parameters, client_manager)
        record_parameters(self.ledger, server_round, EVALUATE, DOWN, instructions)
        return instructions


class MessageTrackingFedAvg(LedgerTracking, FedAvg):
    """The same strategy on Flower's Message API (``flwr.serverapp.strategy.FedAvg``)."""

    def configure_train(self, server_round, arrays, config, grid):
        """Sample nodes as FedAvg does, then record the model going down to each."""
        wait_for_nodes(lambda: len(list(grid.get_node_ids())), self.expected_nodes)
        messages = list(super().configure_train(server_round, arrays, config, grid))
        messages = self.encode_train(messages, arrays, config)
        record_messages(self.ledger, server_round, TRAIN, DOWN, messages, self.arrayrecord_key)
        return messages

    def aggregate_train(self, server_round, replies):
        """Record each model that came back (error replies carry none), then average."""
        replies = list(replies)
        record_messages(self.ledger, server_round, TRAIN, UP, replies, self.arrayrecord_key)
        self.ledger.end_round(server_round)
        replies = read_once_replies(self.decode_replies(replies), self.arrayrecord_key)
        valid, _ = self._check_and_log_replies(replies, is_train=True)  # FedAvg.aggregate_train's own checks
        if not valid:
            return None, None
        contents = [msg.content for msg in valid]
        arrays = average_records(contents, self.weighted_by_key)
        return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    def encode_train(self, messages: list[Message], arrays, config) -> list[Message]:
        """Hook: what the train messages carry on the wire (unchanged here; codecs override it)."""
        return messages

    def decode_replies(self, replies: list[Message]) -> list[Message]:
        """Hook: turn received replies back into full models (unchanged here; codecs override it)."""
        return replies

    def configure_evaluate(self, server_round, arrays, config, grid):
        """Record the model going down again for evaluation (none if fraction_evaluate is 0)."""
        messages = list(super().configure_evaluate(server_round, arrays, config, grid))
        record_messages(self.ledger, server_round, EVALUATE, DOWN, messages, self.arrayrecord_key)
        return messages
