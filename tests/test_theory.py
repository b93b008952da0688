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
