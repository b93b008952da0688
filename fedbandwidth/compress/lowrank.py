"""Low rank: each matrix of an update as thin factors P (m x r) and Q (n x r), P Q^T its best rank-r approximation."""

from __future__ import annotations

import numpy as np

from ..checks import ConfigError
from .stage import SEP, SPARSIFY, Lever, Stage, untag, value_and_feedback


def lowrank_pays(shape: tuple, rank: int) -> bool:
    """True if a matrix of this shape costs fewer values as rank-`rank` factors than whole."""
    return len(shape) == 2 and rank * (shape[0] + shape[1]) < shape[0] * shape[1]


def top_factors(x: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """P (m x r), Q (n x r) with P Q^T = the best rank-r approximation of x (its truncated SVD).

    Via the small side's Gram matrix in float64 (for pythia's 50,304 x 128 embeddings: one 128 x 128
    eigenproblem, ~20x faster than a full SVD): x^T x = V S^2 V^T, so x V_r V_r^T = U_r S_r V_r^T.
    """
    tall = x.shape[0] >= x.shape[1]
    a = (x if tall else x.T).astype(np.float64)
    _, vecs = np.linalg.eigh(a.T @ a)  # eigenvalues ascending
    v = vecs[:, ::-1][:, :rank]
    av = a @ v
    p, q = (av, v) if tall else (v, av)
    return p.astype(np.float32), q.astype(np.float32)


class LowRank(Lever):
    """``lowrank:<rank>[:noef]``: each matrix of the update as two thin factors; small ones whole."""

    name, order, needs_delta = "lowrank", SPARSIFY, True

    def parse(self, args: list[str], where: str) -> Stage:
        """A whole rank >= 1, optionally ':noef'."""
        text, feedback = value_and_feedback(self.name, args, where)
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{where}: lowrank rank must be a whole number >= 1, got {text!r}")
        return Stage(self, float(text), error_feedback=feedback)

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """P = U_r S_r (m x r) and Q = V_r (n x r), the best rank-r approximation, when that is smaller."""
        rank = int(stage.param)
        if not lowrank_pays(x.shape, rank):
            return {key: x}
        p, q = top_factors(x, rank)
        return {key + SEP + "lrp": p, key + SEP + "lrq": q}

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """Multiply factors back into matrices of the known shapes."""

        def matrix(base: str, tag: str, x: np.ndarray) -> np.ndarray:
            rows, cols = shapes[base]
            rank = x.size // rows  # int4 may have padded one value
            p = x.ravel()[: rows * rank].reshape(rows, rank)
            q = parts[base + SEP + "lrq"].ravel()[: cols * rank].reshape(cols, rank)
            return p @ q.T

        return untag(parts, ("lrp",), ("lrq",), matrix)


LEVER = LowRank()
