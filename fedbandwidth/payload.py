"""Sizes of what a Flower message carries, read from headers and lengths: nothing is deserialized.

*Payload bytes* are what Flower counts, ``ArrayRecord.count_bytes()``: each array's serialized
data (an ``.npy`` file: header + raw tensor bytes) plus the length of its key.
*Tensor bytes* are the raw numbers alone (numel x itemsize), what the course formula counts.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord
from flwr.common import Parameters
from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE

EMPTY_TENSOR_KEY = "_empty"  # key Flower uses when legacy Parameters hold no tensor
CHUNK_BYTES = FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE  # Flower cuts each array's .npy data into chunks this long


def npy_header_length(shape: tuple[int, ...], dtype: str = "float32") -> int:
    """Bytes of the .npy header numpy writes before an array of this shape and dtype."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.tell()


def npy_header(data: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and header length of a serialized .npy array, read from its header only
    (parsed once per distinct header: a round's messages repeat the model's few dozen)."""
    length = {1: (8, 10), 2: (8, 12)}.get(data[6]) if len(data) > 12 else None  # where the header's length is
    if length is None:
        return parsed_header(bytes(data[:4096]))  # numpy says what is wrong with it
    size = length[1] + int.from_bytes(data[length[0] : length[1]], "little")
    return parsed_header(bytes(data[:size]))


@functools.lru_cache(maxsize=4096)
def parsed_header(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and length of a .npy header (numpy's own parser)."""
    stream = io.BytesIO(header)  # headers are < 4 KiB; never the tensor itself
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}[
        np.lib.format.read_magic(stream)
    ]
    shape, fortran, dtype = read_header(stream)
    return shape, fortran, dtype, stream.tell()


def npy_tensor_bytes(data: bytes) -> int:
    """Raw tensor bytes of a serialized .npy array, read from its header only."""
    shape, _, dtype, _ = npy_header(data)
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def npy_view(data: bytes) -> np.ndarray:
    """A serialized .npy array as a read-only view of its bytes (no copy); np.load's copy if Fortran-ordered."""
    shape, fortran, dtype, offset = npy_header(data)
    if fortran or dtype.hasobject:
        return np.load(io.BytesIO(data), allow_pickle=False)
    count = int(np.prod(shape, dtype=np.int64))
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


def npy_bytes(array: np.ndarray) -> bytes:
    """The bytes np.save writes for `array` (as Flower serializes it), copied once; np.save into a BytesIO and
    its getvalue() copy twice."""
    header = io.BytesIO()
    try:
        if not array.flags.c_contiguous or array.dtype.hasobject:
            raise ValueError("np.save's own path")
        np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    except ValueError:  # not C-ordered, objects, or a header over 64 KiB (np.save writes format 2.0)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    return b"".join((header.getvalue(), array.reshape(-1).view(np.uint8)))


def legacy_keys(num_tensors: int) -> list[str]:
    """Keys Flower gives legacy Parameters when it turns them into an ArrayRecord."""
    return [str(i) for i in range(num_tensors)] or [EMPTY_TENSOR_KEY]


def parameters_payload_bytes(parameters: Parameters) -> int:
    """Payload bytes of legacy Parameters, exactly as the ArrayRecord Flower builds counts them."""
    keys = legacy_keys(len(parameters.tensors))
    return sum(len(t) for t in parameters.tensors) + sum(len(k) for k in keys)


def parameters_tensor_bytes(parameters: Parameters) -> int:
    """Raw tensor bytes inside legacy Parameters."""
    return sum(npy_tensor_bytes(t) for t in parameters.tensors)


def record_payload_bytes(record: ArrayRecord) -> int:
    """Payload bytes of an ArrayRecord, as Flower counts them."""
    return record.count_bytes()


def record_tensor_bytes(record: ArrayRecord) -> int:
    """Raw tensor bytes of an ArrayRecord, from each Array's shape and dtype."""
    return sum(
        npy_tensor_bytes(a.data) if not a.dtype else int(np.prod(a.shape, dtype=np.int64)) * np.dtype(a.dtype).itemsize
        for a in record.values()
    )


def predicted_payload_bytes(specs: Iterable, keys: Iterable[str]) -> int:
    """Payload bytes an ArrayRecord of these tensors will count, computed before anything is built."""
    return sum(npy_header_length(s.shape, s.dtype) + s.nbytes + len(k) for s, k in zip(specs, keys, strict=True))


def chunk_count(specs: Iterable) -> int:
    """Chunks Flower cuts these arrays into (Array.slice_array: each .npy file in CHUNK_BYTES pieces)."""
    return sum(math.ceil((npy_header_length(s.shape, s.dtype) + s.nbytes) / CHUNK_BYTES) for s in specs)
