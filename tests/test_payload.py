import io

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord
from flwr.common import ndarrays_to_parameters

from conftest import LEGACY_MESSAGE_BYTES, MESSAGE_BYTES, TENSOR_BYTES
from fedbandwidth.model import TensorSpec
from fedbandwidth.payload import (
    legacy_keys,
    npy_header_length,
    npy_tensor_bytes,
    parameters_payload_bytes,
    parameters_tensor_bytes,
    predicted_payload_bytes,
    record_payload_bytes,
    record_tensor_bytes,
)


def npy(a: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, a, allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "shape,dtype",
    [((50304, 128), "float32"), ((128,), "float16"), ((), "int8"), ((3, 0), "float64"), ((2,) * 30, "uint8")],
)
def test_npy_header_and_tensor_bytes(shape, dtype):
    a = np.zeros(shape, dtype=dtype)
    data = npy(a)
    assert npy_header_length(shape, dtype) == len(data) - a.nbytes
    assert npy_tensor_bytes(data) == a.nbytes


def test_pythia_message_sizes(specs, arrays):
    record = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    assert record_payload_bytes(record) == MESSAGE_BYTES == record.count_bytes()
    assert record_tensor_bytes(record) == TENSOR_BYTES
    assert predicted_payload_bytes(specs, [s.name for s in specs]) == MESSAGE_BYTES
    assert MESSAGE_BYTES - TENSOR_BYTES == 76 * 128 + sum(len(s.name) for s in specs)


def test_legacy_message_sizes(specs, arrays):
    parameters = ndarrays_to_parameters(list(arrays.values()))
    assert parameters_payload_bytes(parameters) == LEGACY_MESSAGE_BYTES
    assert parameters_tensor_bytes(parameters) == TENSOR_BYTES
    assert predicted_payload_bytes(specs, legacy_keys(len(specs))) == LEGACY_MESSAGE_BYTES
    # the same count Flower's own conversion gives
    from flwr.compat.common.recorddict_compat import parameters_to_arrayrecord

    assert parameters_to_arrayrecord(parameters, keep_input=True).count_bytes() == LEGACY_MESSAGE_BYTES


def test_legacy_keys():
    assert legacy_keys(3) == ["0", "1", "2"]
    assert legacy_keys(0) == ["_empty"]
    assert sum(map(len, legacy_keys(76))) == 10 + 66 * 2


def test_empty_parameters_count_like_flower():
    from flwr.common import Parameters
    from flwr.compat.common.recorddict_compat import parameters_to_arrayrecord

    empty = Parameters(tensors=[], tensor_type="numpy.ndarray")
    assert parameters_payload_bytes(empty) == parameters_to_arrayrecord(empty, True).count_bytes() == 6


def test_prediction_for_mixed_dtypes():
    specs = [TensorSpec("a", (7, 3), "float16"), TensorSpec("bb", (5,), "int8")]
    record = ArrayRecord({"a": Array(np.ones((7, 3), np.float16)), "bb": Array(np.ones(5, np.int8))})
    assert predicted_payload_bytes(specs, ["a", "bb"]) == record.count_bytes()
    assert record_tensor_bytes(record) == 7 * 3 * 2 + 5


SERIALIZED = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array(3.5),
    np.zeros((0, 5), np.int64),
    np.ones((2, 3), np.float16),
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.arange(10)[::2],
    np.array([1, 2], dtype=">i4"),
]


@pytest.mark.parametrize("array", SERIALIZED, ids=lambda a: f"{a.dtype}{a.shape}")
def test_npy_bytes_are_flowers_serialization_and_npy_view_reads_them_back(array):
    from flwr.common import ndarray_to_bytes

    from fedbandwidth.payload import npy_bytes, npy_view

    data = npy_bytes(array)
    assert data == ndarray_to_bytes(array)
    view = npy_view(data)
    assert view.dtype == array.dtype and view.shape == array.shape and np.array_equal(view, array)
