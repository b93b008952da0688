"""Sparsification: top-k and threshold selection, sent as indices (or a bitmap) plus float32 values."""

from __future__ import annotations

import math

import numpy as np

from .stage import SEP, SPARSIFY, Lever, Stage, number, untag, value_and_feedback

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


class Sparsifier(Lever):
    """A stage that keeps some entries of the update: their indices (or a bitmap) and float32 values."""

    order, needs_delta = SPARSIFY, True

    def pick(self, x: np.ndarray, value: float) -> np.ndarray:
        """Ascending flat indices of the entries to send."""
        raise NotImplementedError

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """The chosen entries of one tensor: indices (or bitmap) and float32 values."""
        pick = self.pick(x, stage.param)
        form, index = index_part(pick, x.size)
        return {key + SEP + form: index, key + SEP + "val": x.ravel()[pick].astype(np.float32)}

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """Scatter sparse values back into dense tensors of the known shapes."""

        def dense(base: str, tag: str, x: np.ndarray) -> np.ndarray:
            size = int(np.prod(shapes[base], dtype=np.int64))
            pick = x.astype(np.int64) if tag == "idx" else np.flatnonzero(np.unpackbits(x)[:size])
            out = np.zeros(size, dtype=np.float32)
            out[pick] = parts[base + SEP + "val"].ravel()[: pick.size]
            return out.reshape(shapes[base])

        return untag(parts, ("idx", "bit"), ("val",), dense)


class TopK(Sparsifier):
    """``topk:<fraction>[:noef]``: the ceil(fraction x size) entries of largest magnitude."""

    name = "topk"

    def parse(self, args: list[str], where: str) -> Stage:
        """A fraction in (0, 1], optionally ':noef'."""
        text, feedback = value_and_feedback(self.name, args, where)
        return Stage(self, number(f"{where}: topk fraction", text, 0, 1), error_feedback=feedback)

    def pick(self, x: np.ndarray, value: float) -> np.ndarray:
        """The top-k entries."""
        return topk_indices(x, value)


class Threshold(Sparsifier):
    """``threshold:<tau>[:noef]``: the entries of magnitude >= tau."""

    name = "threshold"

    def parse(self, args: list[str], where: str) -> Stage:
        """A tau >= 0, optionally ':noef'."""
        text, feedback = value_and_feedback(self.name, args, where)
        return Stage(
            self, number(f"{where}: threshold tau", text, 0, math.inf, low_open=False), error_feedback=feedback
        )

    def pick(self, x: np.ndarray, value: float) -> np.ndarray:
        """The entries at or above tau."""
        return threshold_indices(x, value)


LEVERS = (TopK(), Threshold())  # the sparsifiers, in the order chain.py lists them
