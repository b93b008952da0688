"""The packing lever: SecAgg+'s masked vector travels in the bytes its modulus needs, not in int64.

Flower's `secaggplus_mod` uploads each masked array as an int64 .npy (8 B a parameter), though every value is
below the modulus range m (2**32 by default): half of each int64 is zeros. Flower 1.42 has no option for it
(SecAggPlusWorkflow and secaggplus_mod take no dtype; `parameters_mod` keeps int64). Here a client mod,
outside `secaggplus_mod`, re-encodes the masked arrays as one buffer of unsigned integers, ceil(log2(m) / 8)
bytes each (4 for 2**32), their shapes as two lists of ints; a Grid wrapper on the server, after the meter,
restores the int64 .npy bytes exactly before SecAggPlusWorkflow reads them: the aggregate is the same to the
bit, the upload under half (the .npy headers, 128 B an array, go too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from flwr.app import Context, Message
from flwr.common import bytes_to_ndarray, ndarray_to_bytes
from flwr.serverapp import Grid

from ..meter import SECAGG_CONFIGS

MASKED_KEY = "masked_params"  # secaggplus_constants.Key.MASKED_PARAMETERS: the masked vector, one .npy per array
WIDTH_KEY = "packed_width"  # bytes each value was packed into
DTYPE_KEY = "packed_dtype"  # the dtype the masked arrays had before packing (restored after)
NDIMS_KEY = "packed_ndims"  # each array's number of dimensions
DIMS_KEY = "packed_dims"  # all arrays' dimensions, one after the other


def packed_width(modulus_range: int) -> int:
    """Bytes a value below `modulus_range` (a power of 2) needs: ceil(log2(m) / 8)."""
    return max(1, -(-(modulus_range.bit_length() - 1) // 8))


def pack_values(arrays: list[np.ndarray], width: int) -> bytes:
    """Non-negative integers < 256**width, all arrays one after the other, `width` little-endian bytes each."""
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    if width in (1, 2, 4):
        return flat.astype(f"<u{width}").tobytes()
    return np.ascontiguousarray(flat.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]).tobytes()


def unpack_values(data: bytes, width: int, shapes: list[tuple[int, ...]], dtype: str) -> list[np.ndarray]:
    """The inverse of pack_values: arrays of `shapes` in `dtype`."""
    if width in (1, 2, 4):
        flat = np.frombuffer(data, dtype=f"<u{width}")
    else:
        padded = np.zeros((len(data) // width, 4), dtype=np.uint8)
        padded[:, :width] = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
        flat = padded.view("<u4").reshape(-1)
    sizes = np.cumsum([0, *(int(np.prod(s, dtype=np.int64)) for s in shapes)])
    return [flat[a:b].astype(dtype).reshape(s) for a, b, s in zip(sizes[:-1], sizes[1:], shapes, strict=True)]


def pack_reply(reply: Message, width: int) -> Message:
    """Re-encode a 'collect masked vectors' reply's masked arrays in `width` bytes a value (in place)."""
    configs = reply.content.config_records.get(SECAGG_CONFIGS) if reply.has_content() else None
    if configs is None or MASKED_KEY not in configs:
        return reply
    arrays = [bytes_to_ndarray(b) for b in configs[MASKED_KEY]]
    configs[MASKED_KEY] = [pack_values(arrays, width)]
    configs[WIDTH_KEY], configs[DTYPE_KEY] = width, arrays[0].dtype.str
    configs[NDIMS_KEY] = [a.ndim for a in arrays]
    configs[DIMS_KEY] = [int(d) for a in arrays for d in a.shape]
    return reply


def unpack_reply(reply: Message) -> Message:
    """Restore a packed reply's masked arrays to the .npy bytes secaggplus_mod made (in place)."""
    configs = reply.content.config_records.get(SECAGG_CONFIGS) if reply.has_content() else None
    if configs is None or WIDTH_KEY not in configs:
        return reply
    width, dtype = int(configs.pop(WIDTH_KEY)), str(configs.pop(DTYPE_KEY))
    ndims, dims = list(configs.pop(NDIMS_KEY)), list(configs.pop(DIMS_KEY))
    ends = np.cumsum([0, *ndims])
    shapes = [tuple(dims[a:b]) for a, b in zip(ends[:-1], ends[1:], strict=True)]
    arrays = unpack_values(configs[MASKED_KEY][0], width, shapes, dtype)
    configs[MASKED_KEY] = [ndarray_to_bytes(a) for a in arrays]
    return reply


def pack_mod(modulus_range: int) -> Callable:
    """A client mod, placed before secaggplus_mod: packs the masked vector secaggplus_mod returns."""
    width = packed_width(modulus_range)

    def mod(msg: Message, context: Context, call_next) -> Message:
        return pack_reply(call_next(msg, context), width)

    return mod


def unpacking(grid: Grid) -> Grid:
    """The same Grid, packed replies restored as they are pulled (wrap it after the meter: the meter sees packed)."""
    pull = grid.pull_messages

    def pull_messages(message_ids: Iterable[str]) -> Iterable[Message]:
        return [unpack_reply(msg) for msg in pull(message_ids)]

    grid.pull_messages = pull_messages
    return grid
