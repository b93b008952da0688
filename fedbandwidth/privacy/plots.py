"""Plots of what privacy costs: SecAgg+'s bytes per round and stage. Each takes `ax=None` and returns the Axes."""

from __future__ import annotations

import numpy as np

from ..names import DOWN, UP
from ..plots import DOWN_COLOR, UP_COLOR, axes_or_new
from .formula import STAGES

SHORT = {"setup": "setup", "share_keys": "share\nkeys", "collect_masked_vectors": "masked\nvectors", "unmask": "unmask"}


def plot_stage_bytes(rows: list[dict], ax=None):
    """Bars per (round, stage), down and up side by side, on a log scale: bytes as the Grid meter measured them."""
    ax = axes_or_new(ax, figsize=(8, 3.5))
    keys = sorted({(r["round"], r["stage"]) for r in rows}, key=lambda k: (k[0], STAGES.index(k[1])))
    size = {(r["round"], r["stage"], r["direction"]): r["bytes"] for r in rows}
    x = np.arange(len(keys))
    for offset, direction, color in ((-0.2, DOWN, DOWN_COLOR), (0.2, UP, UP_COLOR)):
        heights = [max(size.get((*k, direction), 0), 1) for k in keys]
        ax.bar(x + offset, heights, width=0.4, color=color, label=f"{direction}")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"r{r}\n{SHORT[s]}" for r, s in keys], fontsize="small")
    ax.set(ylabel="bytes (log scale)", title="SecAgg+: bytes per round and stage")
    ax.legend(fontsize="small")
    return ax
