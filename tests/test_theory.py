import pytest

from conftest import LEGACY_MESSAGE_BYTES, MESSAGE_BYTES, TENSOR_BYTES
from fedbandwidth.theory import course_formula_bytes, message_keys, predict, sampled_nodes, tensor_breakdown


@pytest.mark.parametrize(
    "n,fraction,expected",
    [(2, 1.0, 2), (1, 1.0, 1), (3, 0.5, 2), (10, 0.1, 2), (100, 0.1, 10), (10, 0.35, 3), (5, 0.0, 0), (7, 1.0, 7)],
)
def test_sampling_rule(n, fraction, expected):
    assert sampled_nodes(n, fraction) == expected


def test_course_formula():
    assert course_formula_bytes(TENSOR_BYTES, 2, 1.0, 1) == 4 * TENSOR_BYTES
    assert course_formula_bytes(100, 3, 0.5, 2) == 600  # 1.5 clients: the formula ignores the min


def test_prediction_of_the_lesson(specs):
    p = predict(specs, supernodes=2, rounds=1)
    assert p.message_payload_bytes == LEGACY_MESSAGE_BYTES and p.message_tensor_bytes == TENSOR_BYTES
    assert p.total_bytes == 4 * LEGACY_MESSAGE_BYTES == 225_122_872


def test_prediction_with_evaluate_and_message_api(specs):
    p = predict(specs, supernodes=10, rounds=3, fraction=0.5, fraction_evaluate=0.2, api="message")
    assert (p.train_nodes, p.evaluate_nodes) == (5, 2)
    assert p.down_bytes_per_round == 7 * MESSAGE_BYTES and p.up_bytes_per_round == 5 * MESSAGE_BYTES
    assert p.total_bytes == 3 * 12 * MESSAGE_BYTES


def test_unknown_api(specs):
    with pytest.raises(ValueError, match="unknown api 'grpc'"):
        message_keys(specs, "grpc")


def test_breakdown(specs):
    table = tensor_breakdown(specs).set_index("component")
    assert table.tensor_bytes.sum() == TENSOR_BYTES
    assert table.loc["input embedding", "tensor_bytes"] == 50304 * 128 * 4
    assert round(table.loc[["input embedding", "output embedding"], "share"].sum(), 3) == 0.915
    assert table.loc["layer norms", "tensors"] == 26 and table.loc["attention", "tensors"] == 24
    assert table.tensors.sum() == 76


def test_flowertune_tracker_adds_a_float_per_call_and_prints_two_decimals():
    from fedbandwidth.theory import tracker_mib

    assert tracker_mib(2**20, 2, 3) == 12.0  # 3 rounds x (down + up) x 2 nodes x 1 MiB
    assert tracker_mib(1_858_560, 2, 200) == 1417.97 and tracker_mib(0, 2, 5) == 0.0


def test_flowertune_mib_legacy_omits_keys_and_message_counts_them():
    from fedbandwidth.model import TensorSpec
    from fedbandwidth.theory import flowertune_mib

    specs = [TensorSpec("a" * 1000, (2**18,)), TensorSpec("b", (2**18,))]  # 1 MiB of tensors each
    mib = flowertune_mib(specs, 1, 1)
    assert mib["legacy"] == round(2 * (2 * 2**20 + 2 * 128) / 2**20, 2) == 4.0
    assert mib["message"] == round(2 * (2 * 2**20 + 2 * 128 + 1001) / 2**20, 2) == 4.0
    assert flowertune_mib(specs, 1, 1000) == {"legacy": 4000.49, "message": 4002.4}  # + 2,000 x 1,001 B of keys
