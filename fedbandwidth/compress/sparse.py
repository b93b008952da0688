"""Sparsification: top-k and threshold selection, sent as indices (or a bitmap) plus float32 values."""

from __future__ import annotations

import math

import numpy as np

from .chain import SEP, Stage

UINT16_INDEX_LIMIT = 2**16  # tensors up to this many elements can index with uint16


def topk_indices(x: np.ndarray, fraction: float) -> np.ndarray:
    """Ascending flat indices of the ceil(fraction x size) entries of largest magnitude."""
    flat = x.ravel()
    k = min(flat.size, max(1, math.ceil(fraction * flat.size)))
    if k == flat.size:
        return np.arange(flat.size)
    return np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :])


def threshold_indices(x: np.ndarray, tau: float) -> np.ndarray:
    """Ascending flat indices of the entries with magnitude >= tau."""
    return np.flatnonzero(np.abs(x.ravel()) >= tau)


def index_part(indices: np.ndarray, size: int) -> tuple[str, np.ndarray]:
    """The cheapest honest form of sorted indices: uint16, int32, or a bitmap when denser."""
    options = [("bit", math.ceil(size / 8)), ("idx32", 4 * indices.size)]
    if size <= UINT16_INDEX_LIMIT:
        options.append(("idx16", 2 * indices.size))
    form = min(options, key=lambda o: o[1])[0]
    if form == "bit":
        mask = np.zeros(size, dtype=bool)
        mask[indices] = True
        return "bit", np.packbits(mask)
    return "idx", indices.astype(np.uint16 if form == "idx16" else np.int32)


def sparse_encode(stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Keep the chosen entries of one tensor: their indices (or bitmap) and float32 values."""
    pick = topk_indices(x, stage.param) if stage.name == "topk" else threshold_indices(x, stage.param)
    form, index = index_part(pick, x.size)
    return {key + SEP + form: index, key + SEP + "val": x.ravel()[pick].astype(np.float32)}


def sparse_decode(parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Scatter sparse values back into dense tensors of the known shapes; other keys pass through."""
    out = {}
    for key, x in parts.items():
        base, _, tag = key.rpartition(SEP)
        if tag in ("idx", "bit"):
            size = int(np.prod(shapes[base], dtype=np.int64))
            pick = x.astype(np.int64) if tag == "idx" else np.flatnonzero(np.unpackbits(x)[:size])
            dense = np.zeros(size, dtype=np.float32)
            dense[pick] = parts[base + SEP + "val"].ravel()[: pick.size]
            out[base] = dense.reshape(shapes[base])
        elif tag != "val":
            out[key] = x
    return out
