"""Deep Gradient Compression as an uplink lever: ``dgc:<density>[:<momentum>[:<clip>]]`` (Lin et al., arXiv 1712.01887).

DGC sends the top entries of each worker's gradient and makes that work with four fixes: momentum
correction (sparsify the accumulated *velocity*, not the raw gradient, so momentum survives the dropped
entries), local gradient clipping (clip before accumulating), momentum factor masking (zero the velocity
where an entry was sent, so stale momentum does not push it again), and a density warm-up (send much more
in the first epochs). In federated averaging the "gradient" a client has is its round's update Δ (local
minus global, after its local AdamW steps), so this lever applies DGC to Δ, round by round, on the client:

    Δ ← Δ · min(1, clip / ‖Δ‖)          local clipping (all the update's tensors as one vector; none if no clip)
    u ← m·u + Δ                          momentum correction: the client keeps the velocity u ...
    v ← v + u                            ... and accumulates it in v (DGC's error accumulation)
    send top-k(v) at density d_r,  d_r = max(density, 4^-r)  warm-up: 25%, 6.25%, 1.56%, 0.39%, ... in rounds 1, 2, 3, 4
    v ← v - what arrives,  u ← 0 where sent   momentum factor masking

u and v live in the client's context.state like top-k's residual; the server adds the average of what
arrives to the global model (a delta), so the momentum is the clients', and the server stays FedAvg.
The payload is top-k's (indices or a bitmap, float32 values; a value codec may follow), at density d_r.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..checks import ConfigError
from .sparse import Sparsifier, topk_indices
from .stage import SEP, Stage, number

VELOCITY = SEP + "u"  # state key suffix of a tensor's velocity (its accumulation is kept under its own name)
WARMUP_BASE = 0.25  # round r sends at least this ** r of the entries


def warm_density(density: float, server_round: int) -> float:
    """The density of round `server_round` (1, 2, ...): 4^-r until that falls below `density`."""
    return max(density, WARMUP_BASE ** max(server_round, 1))


def clipped(update: dict[str, np.ndarray], clip: float) -> dict[str, np.ndarray]:
    """The update scaled down to L2 norm `clip` (all tensors as one vector) if it is longer; clip 0: unchanged."""
    norm = math.sqrt(sum(float(np.square(v, dtype=np.float64).sum()) for v in update.values()))
    if not clip or norm <= clip:
        return update
    return {k: (v * np.float32(clip / norm)).astype(np.float32) for k, v in update.items()}


class DeepGradient(Sparsifier):
    """``dgc:<density>[:<momentum>[:<clip>]]``: top-k of the momentum-corrected accumulation, warmed up."""

    name, uplink_only = "dgc", True

    def parse(self, args: list[str], where: str) -> Stage:
        """A density in (0, 1], a momentum in [0, 1) (default 0.9), a clipping norm >= 0 (default 0: none)."""
        if not args or len(args) > 3:
            raise ConfigError(f"{where}: dgc needs a density and optionally ':<momentum>:<clip>', got {args!r}")
        density = number(f"{where}: dgc density", args[0], 0, 1)
        momentum = number(f"{where}: dgc momentum", args[1], 0, 1, low_open=False) if len(args) > 1 else 0.9
        if momentum >= 1:
            raise ConfigError(f"{where}: dgc momentum must lie in [0, 1), got {args[1]}")
        clip = number(f"{where}: dgc clip", args[2], 0, math.inf, low_open=False) if len(args) > 2 else 0.0
        return Stage(self, density, extra=(momentum, clip))

    def text(self, stage: Stage) -> str:
        """'dgc:<density>:<momentum>[:<clip>]'."""
        momentum, clip = stage.extra
        return f"dgc:{stage.param:g}:{momentum:g}" + (f":{clip:g}" if clip else "")

    def pick(self, x: np.ndarray, value: float) -> np.ndarray:
        """The top entries at this round's density."""
        return topk_indices(x, value)

    def prepare(self, stage: Stage, update: dict, state: dict, server_round: int) -> tuple[dict, Stage, dict]:
        """Clip, add to the velocity, accumulate: (v to sparsify, the round's warm stage, the velocity u)."""
        momentum, clip = stage.extra
        update = clipped(update, clip)
        velocity = {k: momentum * state[k + VELOCITY] + g if k + VELOCITY in state else g for k, g in update.items()}
        accumulated = {k: state[k] + u if k in state else u for k, u in velocity.items()}
        now = dataclasses.replace(stage, param=warm_density(stage.param, server_round))
        return accumulated, now, velocity

    def keep(self, stage: Stage, sent: dict, received: dict, scratch: dict) -> dict:
        """v minus what arrives, and the velocity with the sent entries zeroed (momentum factor masking)."""
        state = {k: v - received[k] for k, v in sent.items()}
        for k, u in scratch.items():
            masked = u.copy()
            masked.ravel()[topk_indices(sent[k], stage.param)] = 0
            state[k + VELOCITY] = masked
        return state


LEVER = DeepGradient()
