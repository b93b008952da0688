"""The tracking strategies aggregate exactly as Flower's FedAvg does, and keep no reply bytes afterwards."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict
from flwr.common import Code, FitRes, Parameters, Status, ndarrays_to_parameters
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.serverapp.strategy import FedAvg

from fedbandwidth.ledger import Ledger
from fedbandwidth.tracking import (
    CHUNK,
    PARALLEL_FROM,
    BandwidthTrackingFedAvg,
    MessageTrackingFedAvg,
    ReadOnceRecord,
    ReadOnceTensors,
)

BIG = PARALLEL_FROM + CHUNK // 3 + 1  # elements of an array big enough to be summed in two threads


@pytest.fixture(autouse=True)
def server_identity(monkeypatch):
    """Messages are created as a ServerApp would: Flower reads its run, node and task ids."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


def models(seed: int = 0) -> list[list[np.ndarray]]:
    """Three clients' models of two float32 tensors each, with awkward values."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal((5, 3), dtype=np.float32), rng.standard_normal(7, dtype=np.float32)] for _ in range(3)]


class Proxy:
    """The one thing the strategies read from a ClientProxy: its id."""

    def __init__(self, cid: str) -> None:
        self.cid = cid


def fit_results() -> list:
    """(proxy, FitRes) pairs of the three models, weighted 1, 2 and 7 examples."""
    ok = Status(Code.OK, "")
    return [
        (Proxy(str(i)), FitRes(ok, ndarrays_to_parameters(m), weight, {}))
        for i, (m, weight) in enumerate(zip(models(), (1, 2, 7), strict=True))
    ]


def test_read_once_tensors_hand_each_tensor_over_once():
    tensors = ReadOnceTensors([b"ab", b"cd"])
    assert list(tensors) == [b"ab", b"cd"] and list(tensors) == [b"", b""] and len(tensors) == 2


def test_read_once_record_hands_each_array_over_once():
    record = ReadOnceRecord({"w": Array(np.arange(3, dtype=np.float32))})
    assert [k for k, _ in record.items()] == ["w"] and len(record) == 0


def test_legacy_average_is_flowers_to_the_byte_and_frees_the_replies():
    expected, _ = LegacyFedAvg().aggregate_fit(1, fit_results(), [])
    results = fit_results()
    ledger = Ledger()
    averaged, _ = BandwidthTrackingFedAvg(ledger).aggregate_fit(1, results, [])
    assert averaged.tensors == expected.tensors  # same bytes: Flower's arithmetic, unchanged
    assert [len(t) for _, res in results for t in res.parameters.tensors] == [0] * 6
    assert ledger.total_bytes() == sum(len(t) + 1 for m in models() for t in ndarrays_to_parameters(m).tensors)


def replies() -> list[Message]:
    """Message-API train replies of the three models, weighted 1, 2 and 7 examples."""
    out = []
    for node, (model, weight) in enumerate(zip(models(), (1, 2, 7), strict=True), start=1):
        sent = Message(RecordDict(), dst_node_id=node, message_type="train")
        sent.metadata.__dict__["_message_id"] = f"m{node}"
        arrays = ArrayRecord({"a": Array(model[0]), "b": Array(model[1])})
        out.append(
            Message(RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": weight})}), reply_to=sent)
        )
    return out


def test_message_average_is_flowers_to_the_byte_and_frees_the_replies():
    expected, expected_metrics = FedAvg().aggregate_train(1, replies())
    received = replies()
    averaged, metrics = MessageTrackingFedAvg(Ledger()).aggregate_train(1, received)
    assert {k: a.data for k, a in averaged.items()} == {k: a.data for k, a in expected.items()}
    assert metrics == expected_metrics
    assert [len(msg.content["arrays"]) for msg in received] == [0, 0, 0]


def test_empty_parameters_stay_valid():
    results = [(Proxy("0"), FitRes(Status(Code.OK, ""), Parameters([], "numpy.ndarray"), 1, {}))]
    averaged, _ = BandwidthTrackingFedAvg(Ledger()).aggregate_fit(1, results, [])
    assert averaged.tensors == []


def awkward_models(count: int = 10, seed: int = 1) -> list[list[np.ndarray]]:
    """`count` models of every kind of array an average meets: float32/16/64, ints, 0-d, empty, big layers."""
    rng = np.random.default_rng(seed)
    return [
        [
            rng.standard_normal((64, 33), dtype=np.float32) * np.float32(1e3),
            rng.standard_normal(5).astype(np.float16),
            rng.standard_normal((2, 2)),
            rng.integers(-50, 50, (3, 4)),
            np.array(rng.standard_normal(), dtype=np.float32),
            np.zeros((0, 7), np.float32),
            rng.standard_normal(BIG, dtype=np.float32),  # summed in two halves at once, the halves uneven
            rng.standard_normal((BIG // 7, 7)).astype(np.float16),
        ]
        for _ in range(count)
    ]


@pytest.mark.parametrize("weights", [(1,) * 10, (3, 1, 4, 1, 5, 9, 2, 6, 5, 3)])
def test_zero_copy_averages_equal_flowers_to_the_bit_on_both_apis(weights):
    ok, models_ = Status(Code.OK, ""), awkward_models()

    def results():
        pairs = enumerate(zip(models_, weights, strict=True))
        return [(Proxy(str(i)), FitRes(ok, ndarrays_to_parameters(m), w, {})) for i, (m, w) in pairs]

    expected, _ = LegacyFedAvg().aggregate_fit(1, results(), [])
    assert BandwidthTrackingFedAvg(Ledger()).aggregate_fit(1, results(), [])[0].tensors == expected.tensors

    def replies():
        out = []
        for node, (model, weight) in enumerate(zip(models_, weights, strict=True), start=1):
            sent = Message(RecordDict(), dst_node_id=node, message_type="train")
            sent.metadata.__dict__["_message_id"] = f"m{node}"
            arrays = ArrayRecord({f"t{i}": Array(a) for i, a in enumerate(model)})
            content = RecordDict({"arrays": arrays, "metrics": MetricRecord({"num-examples": weight})})
            out.append(Message(content, reply_to=sent))
        return out

    flower, _ = FedAvg().aggregate_train(1, replies())
    ours, _ = MessageTrackingFedAvg(Ledger()).aggregate_train(1, replies())
    assert {k: a.data for k, a in ours.items()} == {k: a.data for k, a in flower.items()}


def test_replies_are_read_as_views_of_their_bytes_not_copies():
    from fedbandwidth.payload import npy_view

    data = ndarrays_to_parameters([np.arange(6, dtype=np.float32).reshape(2, 3)]).tensors[0]
    view = npy_view(data)
    assert view.base is not None and not view.flags.writeable and view.tolist() == [[0, 1, 2], [3, 4, 5]]
