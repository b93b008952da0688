"""How long a round takes on a fleet: Monte Carlo over which clients are sampled and which are there.

A round samples K = max(int(N x fraction), 1) clients (Flower's rule with a minimum of 1), or ceil(x K) with
over-commit x, among the clients available that round (each answers with its own probability). A sampled
client's round is its download, its local steps and its upload, each transfer one message on its own link,
plus the one-way latency each way. The server's link is one bottleneck all sampled clients share while they
move their messages at once, max-min fairly (as TCP flows through one shaped link do): a client slower than an
equal share keeps its own rate and the others split what it leaves. The round closes at the K-th reply, or at
the deadline if that comes first; a sampled client whose reply comes after the close is a straggler: its
download produced no counted update, and its upload still crosses (as `fedbandwidth deploy` records a late
reply), so both are wasted bytes.
Each message is timed by `transfer.py`'s object-by-object model (its request turns, framing, the server's CPU
terms from the calibration, the SuperLink's share per other sampled client) when a model is given, once per
distinct link; else by the course's formula per client (latency + 8 x bytes / rate). With a model (or `turns`),
a client's round adds the calibration's pickup (its poll) and its ClientApp's turnaround, which grows with its
download: Flower's ClientApp retries a missing object after 1, 2, 4, 8, then 10 s (turnaround.py); and a reply
counts once the ServerApp has pulled it, with the same retries from its upload's start, one reply at a time. A
fleet's question is which clients finish, and the K-th fastest answers it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import ConfigError
from ..names import DOWN, UP
from .calibration import Calibration
from .fleet import Fleet
from .links import BITS_PER_BYTE, LinkProfile
from .transfer import BUILT_IN, message_seconds
from .turnaround import served_seconds


@dataclass(frozen=True)
class PlanConfig:
    """One planned run: the messages, the sampling, the closing rule and the server's link."""

    down_bytes: int  # payload bytes of the message each sampled client downloads
    up_bytes: int  # payload bytes of the update each client uploads
    local_steps: int = 1  # local steps a sampled client computes a round
    fraction: float = 1.0  # fraction of the fleet a round needs replies from (K = max(int(N x f), 1))
    over_commit: float = 1.0  # sample ceil(x K) clients, close at the K-th reply (x >= 1)
    deadline: float | None = None  # close a round after this many seconds, whatever came back
    server_link: LinkProfile | None = None  # the server's own link, shared by every sampled client (None: no limit)
    rounds: int = 1  # rounds planned
    trials: int = 200  # Monte Carlo draws of a round
    seed: int = 0  # the draws' seed
    model: str | None = None  # with it, transfer.py's object-by-object model times each message; else the formula
    down_objects: tuple[int, ...] | None = None  # the download's objects (None: the float32 model's)
    up_objects: tuple[int, ...] | None = None  # the upload's objects (None: the float32 model's)
    calibration: Calibration = BUILT_IN  # the server's CPU terms (transfer.py's model), the ClientApp's turns
    turns: bool | None = None  # add a node's poll and ClientApp turnaround (None: with a model only)

    @property
    def flower_turns(self) -> bool:
        """Whether a client's round includes Flower's poll and ClientApp turnaround."""
        return self.model is not None if self.turns is None else self.turns

    def __post_init__(self) -> None:
        if not self.over_commit >= 1:
            raise ConfigError(
                f"--over-commit must be >= 1 (sample at least the clients a round needs), got {self.over_commit}"
            )
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError(f"--deadline must be > 0 seconds, got {self.deadline}")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"--fraction must be in (0, 1], got {self.fraction}")


def sample_clients(fleet: Fleet, wanted: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """(trials, wanted) client indices, each row a draw without replacement among that trial's available clients;
    -1 where fewer were available."""
    keys = rng.random((trials, len(fleet)))
    keys[rng.random((trials, len(fleet))) >= fleet.availability] = np.inf
    wanted = min(wanted, len(fleet))
    picked = (
        np.argpartition(keys, wanted - 1, axis=1)[:, :wanted]
        if wanted < len(fleet)
        else np.tile(np.arange(len(fleet)), (trials, 1))
    )
    return np.where(np.isfinite(np.take_along_axis(keys, picked, axis=1)), picked, -1)


def fair_level(caps: np.ndarray, server: float | None) -> np.ndarray:
    """(trials, 1) the max-min fair level of a `server` bit/s link shared by clients capped at `caps` (trials x
    m bit/s, nan where no client): each gets min(its cap, level), and the shares fill the link (inf: they cannot)."""
    if server is None:
        return np.full((len(caps), 1), np.inf)
    real = ~np.isnan(caps)
    ordered = np.sort(np.where(real, caps, np.inf), axis=1)
    finite = np.where(np.isfinite(ordered), ordered, 0.0)
    before = np.cumsum(finite, axis=1) - finite  # the caps of the slower clients
    left = real.sum(axis=1, keepdims=True) - np.arange(caps.shape[1])  # clients from this one on
    level = np.where(left > 0, (server - before) / np.maximum(left, 1), np.inf)
    at = (ordered >= level) & (left > 0)  # the first client the level binds: it and all faster ones get the level
    found = np.take_along_axis(level, at.argmax(axis=1)[:, None], axis=1)
    return np.where(at.any(axis=1, keepdims=True), found, np.inf)


def transfer_seconds(num_bytes: int, own: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Seconds to move `num_bytes` at each client's own rate, capped by the server link's fair level."""
    return BITS_PER_BYTE * num_bytes / np.minimum(own, level)


LEVEL_STEPS = 200  # fair levels are told apart on a log grid this fine (0.5%): distinct links x levels are few


def object_seconds(fleet: Fleet, idx: np.ndarray, sharing: np.ndarray, level: np.ndarray, cfg: PlanConfig,
                   direction: str) -> np.ndarray:  # fmt: skip
    """transfer.py's seconds for each sampled client's message (its link, the server's link at its fair `level`
    among the `sharing` clients sampled with it, the calibration), once per distinct link, sharing and level."""
    rates = fleet.down_bits_per_second if direction == DOWN else fleet.up_bits_per_second
    objects = cfg.down_objects if direction == DOWN else cfg.up_objects
    links, link_of = np.unique(np.stack([rates, fleet.latency_seconds], axis=-1), axis=0, return_inverse=True)
    steps = np.where(np.isfinite(level), np.rint(np.log(np.where(np.isfinite(level), level, 1.0)) * LEVEL_STEPS), -1)
    most, span = int(sharing.max(initial=0)) + 1, int(steps.max(initial=0)) + 2  # (link, sharing, level): one int
    pair = link_of.ravel()[idx] * most + np.broadcast_to(sharing, idx.shape)
    keys, inverse = np.unique(pair * span + np.broadcast_to(steps + 1, idx.shape).astype(np.int64), return_inverse=True)
    seconds = np.array([message_seconds(cfg.model, LinkProfile("c", *links[k // span // most][[0, 0, 1]]), direction,
                                        nodes=int(k // span % most), calibration=cfg.calibration,
                                        server=cfg.server_link, objects=objects, level=level_of(int(k % span) - 1))
                        for k in keys])  # fmt: skip
    return seconds[inverse.ravel()].reshape(idx.shape)


def level_of(step: int) -> float:
    """The fair level a step of the log grid stands for, in bit/s (step -1: no level binds, inf)."""
    return math.exp(step / LEVEL_STEPS) if step >= 0 else math.inf


def reply_seconds(fleet: Fleet, picked: np.ndarray, cfg: PlanConfig, rng: np.random.Generator | None = None):
    """When each sampled client's reply reaches the server (inf where no client was sampled): with Flower's turns,
    when the ServerApp has pulled it (turnaround.served_seconds); the retries drawn with `rng`, else their mean."""
    ok = picked >= 0
    idx = np.where(ok, picked, 0)
    sharing = ok.sum(axis=1, keepdims=True)
    server = (lambda d: cfg.server_link.rate(d)) if cfg.server_link else (lambda d: None)  # noqa: E731
    own = {DOWN: fleet.down_bits_per_second[idx], UP: fleet.up_bits_per_second[idx]}
    level = {d: fair_level(np.where(ok, own[d], np.nan), server(d)) for d in (DOWN, UP)}
    if cfg.model is not None:
        down, up = (object_seconds(fleet, idx, sharing, level[d], cfg, d) for d in (DOWN, UP))
    else:
        down = fleet.latency_seconds[idx] + transfer_seconds(cfg.down_bytes, own[DOWN], level[DOWN])
        up = fleet.latency_seconds[idx] + transfer_seconds(cfg.up_bytes, own[UP], level[UP])
    began = down + cfg.local_steps * fleet.step_seconds[idx]
    if not cfg.flower_turns:
        return np.where(ok, began + up, np.inf)
    work_bytes = (cfg.down_bytes + cfg.up_bytes) / 2  # what its ClientApp decodes and encodes
    began = began + cfg.calibration.pickup_seconds + cfg.calibration.turnaround(down, rng, work_bytes)  # its poll
    began = np.where(ok, began, np.inf)
    return served_seconds(began, began + up)  # the ServerApp pulls each reply's objects, one at a time (mean retries)


def close_seconds(replies: np.ndarray, needed: int, deadline: float | None) -> np.ndarray:
    """When each trial's round closes: its `needed`-th reply (or its last, if fewer came), or the deadline."""
    ordered = np.sort(replies, axis=1)
    came = np.isfinite(ordered).sum(axis=1)
    kth = ordered[np.arange(len(ordered)), np.clip(np.minimum(needed, came) - 1, 0, None)]
    return kth if deadline is None else np.minimum(kth, deadline)


def plan_round(fleet: Fleet, cfg: PlanConfig, rng: np.random.Generator) -> dict:
    """One round's median and p90 close time, and its mean bytes moved and wasted, over `cfg.trials` draws."""
    needed = max(int(len(fleet) * cfg.fraction), 1)
    picked = sample_clients(fleet, math.ceil(cfg.over_commit * needed), cfg.trials, rng)
    replies = reply_seconds(fleet, picked, cfg, rng)
    close = close_seconds(replies, needed, cfg.deadline)
    sampled = (picked >= 0).sum(axis=1)
    late = sampled - (replies <= close[:, None]).sum(axis=1)
    message = cfg.down_bytes + cfg.up_bytes
    return {
        "seconds_median": float(np.median(close)),
        "seconds_p90": float(np.percentile(close, 90)),
        "bytes": int(round(float(np.mean(sampled)) * message)),
        "wasted_bytes": int(round(float(np.mean(late)) * message)),
        "sampled": float(np.mean(sampled)),
        "late": float(np.mean(late)),
    }


def plan(fleet: Fleet, cfg: PlanConfig) -> dict:
    """Every round of the run planned on `fleet`; totals of the medians, bytes and wasted bytes."""
    rng = np.random.default_rng(cfg.seed)
    rounds = [{"round": r, **plan_round(fleet, cfg, rng)} for r in range(1, cfg.rounds + 1)]
    return {
        "clients": len(fleet),
        "rounds": rounds,
        "seconds_median": sum(r["seconds_median"] for r in rounds),
        "bytes": sum(r["bytes"] for r in rounds),
        "wasted_bytes": sum(r["wasted_bytes"] for r in rounds),
    }


def plot_plan(report: dict, ax=None):
    """Each round's median close time as a bar, its p90 as a whisker; return the Axes."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.subplots(figsize=(6, 3))[1]
    rounds = [r["round"] for r in report["rounds"]]
    median = np.array([r["seconds_median"] for r in report["rounds"]])
    p90 = np.array([r["seconds_p90"] for r in report["rounds"]])
    ax.bar(rounds, median, color="tab:blue", label="median")
    ax.errorbar(rounds, median, yerr=[np.zeros_like(p90), p90 - median], fmt="none", ecolor="k", capsize=3, label="p90")
    ax.set(xlabel="round", ylabel="seconds until the round closes", title=f"{report['clients']:,} clients")
    ax.legend()
    return ax
