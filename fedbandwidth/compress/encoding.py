"""Encoding and decoding a whole model with a codec chain; error feedback keeps what was not sent.

Encoding turns a dict of float32 arrays into a dict of arrays (what the ArrayRecord carries); every
byte the decoder needs is in it (scales, zero points, indices), except the tensor shapes, which
both sides know from the model. Keys are ``<tensor>#<part>``, e.g. ``lm_head.weight#val#q8``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..payload import npy_header_length
from .chain import LEVERS, Codec

DECODE_ORDER = sorted(LEVERS, key=lambda lever: -lever.order)  # value codecs first, then sparse and low rank


def restore_shape(x: np.ndarray, shape: tuple) -> np.ndarray:
    """A decoded (possibly flat, possibly padded) array in its tensor's shape."""
    return x.ravel()[: int(np.prod(shape, dtype=np.int64))].reshape(shape)


def encode_stages(stages, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Apply each stage's lever in order (delta is applied by the caller)."""
    out = dict(arrays)
    for stage in stages:
        out = stage.lever.encode(stage, out)
    return out


def decode_parts(parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Undo every lever's parts (value codecs first): dense float32 tensors of the known shapes (sent ones only)."""
    dense = dict(parts)
    for lever in DECODE_ORDER:
        dense = lever.decode(dense, shapes)
    return {k: restore_shape(v, shapes[k]).astype(np.float32, copy=False) for k, v in dense.items()}


@dataclass
class Encoded:
    """What encoding produced: the arrays to send and the residual to keep (error feedback)."""

    arrays: dict[str, np.ndarray]  # key -> array, what the ArrayRecord carries
    residual: dict[str, np.ndarray]  # tensor -> what was not sent this time (empty without feedback)


def encode(
    codec: Codec,
    arrays: dict[str, np.ndarray],
    reference: dict[str, np.ndarray] | None = None,
    residual: dict[str, np.ndarray] | None = None,
    server_round: int = 1,
) -> Encoded:
    """Encode named float32 tensors; `reference` is the global model (delta), `residual` the last state kept."""
    values = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    if codec.stage("delta"):
        if reference is None:
            raise ValueError("delta needs the reference (global) model")
        values = {k: v - reference[k] for k, v in values.items() if k in reference}
    sparsifier = codec.sparsifier
    if sparsifier is None or not sparsifier.error_feedback:
        return Encoded(encode_stages(codec.stages, values), {})
    values = {k: v for k, v in values.items() if codec.selects(k)}
    lever = sparsifier.lever
    update, now, scratch = lever.prepare(sparsifier, values, residual or {}, server_round)
    sent = encode_stages(tuple(now if s is sparsifier else s for s in codec.stages), update)
    received = decode_parts(sent, {k: v.shape for k, v in update.items()})
    return Encoded(sent, lever.keep(now, update, received, scratch))


def decode(
    codec: Codec, parts: dict[str, np.ndarray], shapes: dict[str, tuple], reference: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Decode to float32 weights; tensors not sent are taken from `reference` if given, else left out."""
    tensors = decode_parts(parts, shapes)
    if codec.stage("delta"):
        if reference is None:
            raise ValueError("delta needs the reference (global) model")
        tensors = {k: reference[k] + v for k, v in tensors.items()}
    if reference is not None:
        tensors = {k: tensors.get(k, reference[k]) for k in reference}
    return tensors


def payload_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes these arrays count as an ArrayRecord: .npy data (header + raw) plus key length."""
    return sum(npy_header_length(a.shape, a.dtype.str) + a.nbytes + len(k) for k, a in arrays.items())
