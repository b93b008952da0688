"""The compression study's plots: bytes to target per setting (with error bars), loss vs bytes, one update.

Plot helpers take ax=None and return the Axes (study_figure returns a Figure); none shows or saves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import axes_or_new
from ..units import MIB
from .study import REFERENCE, chase_runs, losses, target_loss
from .update import energy_captured

GOALS = (100, 1000)  # the study's goal and moonshot: this many times fewer uplink bytes to reach L*

# Published uplink reductions, for orientation only: other models, data, tasks and targets than ours.
OTHER_TASKS = {
    "Deep Gradient Compression 270-600x (other tasks: vision, speech)": (270, 600),
    "seed-only zeroth-order LLM tuning ~1,000x (other task)": (1000, 1000),
}


def setting_order(frame, regime: str) -> list[str]:
    """The regime's settings, the reference first, then by mean uplink bytes to target (unreached last)."""
    key = {}
    for setting in dict.fromkeys(frame[frame.regime == regime].setting):
        reached = chase_runs(frame, regime, setting).bytes_to_target
        complete = reached.notna().all()
        key[setting] = (setting != REFERENCE, not complete, reached.mean() if complete else np.inf)
    return sorted(key, key=key.get)


def plot_bytes_to_target(frame, regime: str, ax=None):
    """Uplink bytes to reach L* per setting (log; seeds run in its label): seeds as dots, mean +- sd as error bars;
    unreached seeds as x at the bytes they sent without reaching it. Lines: the reference, 100x and 1,000x fewer;
    shaded: other tasks."""
    order = setting_order(frame, regime)
    ax = axes_or_new(ax, figsize=(12, 0.42 * len(order) + 1.8))
    for y, setting in enumerate(order):
        rows = chase_runs(frame, regime, setting)
        reached = rows.bytes_to_target.dropna()
        ax.scatter(reached, [y] * len(reached), s=14, color="#1f77b4", alpha=0.6, zorder=3)
        missed = rows[rows.bytes_to_target.isna()].up_bytes
        ax.scatter(missed, [y] * len(missed), marker="x", s=40, color="#d62728", zorder=3)
        if len(reached) == len(rows):
            sd = reached.std(ddof=1) if len(reached) > 1 else 0.0
            ax.errorbar(reached.mean(), y, xerr=sd, fmt="D", color="black", ms=5, capsize=3, zorder=4)
    mark_goals(ax, frame, regime)
    seeds = [len(chase_runs(frame, regime, setting)) for setting in order]
    labels = [f"{s} ({n} seed{'s' * (n != 1)})" for s, n in zip(order, seeds, strict=True)]
    ax.set_yticks(range(len(order)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set(
        xscale="log",
        xlabel="uplink payload bytes to reach L* (log)",
        title=f"{regime}: L* = {target_loss(frame, regime):.4f}",
    )
    return ax


def mark_goals(ax, frame, regime: str):
    """Vertical lines at the reference's mean bytes to target and at 100x / 1,000x fewer; other tasks' bands."""
    reference = chase_runs(frame, regime, REFERENCE).bytes_to_target.mean()
    ax.axvline(reference, color="gray", lw=1, label="reference (float32)")
    for goal, style in zip(GOALS, ("--", ":"), strict=True):
        ax.axvline(reference / goal, ls=style, color="gray", label=f"{goal:,}x fewer")
    for (name, (low, high)), color in zip(OTHER_TASKS.items(), ("#8dd3c7", "#fdb462"), strict=True):
        ax.axvspan(reference / high * 0.97, reference / low * 1.03, color=color, alpha=0.35, label=name)
    ax.scatter([], [], marker="x", color="#d62728", label="seed that never reached L* (bytes it sent)")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: no dot hidden
    return ax


def study_figure(frame):
    """A Figure: bytes to target per setting, one panel per regime."""
    regimes = list(dict.fromkeys(frame.regime))
    heights = [len(setting_order(frame, r)) for r in regimes]
    fig, axes = plt.subplots(
        len(regimes),
        1,
        figsize=(13, 0.42 * sum(heights) + 2.5 * len(regimes)),
        height_ratios=heights,
        layout="constrained",
        squeeze=False,
    )
    for regime, ax in zip(regimes, axes[:, 0], strict=True):
        plot_bytes_to_target(frame, regime, ax=ax)
    return fig


def plot_loss_vs_bytes(frame, regime: str, settings: list[str], ax=None):
    """Held-out loss after each round against cumulative uplink bytes (log), one line per seed of each setting;
    the dotted line is L*."""
    ax = axes_or_new(ax, figsize=(8, 4.5))
    for setting, color in zip(settings, plt.cm.tab10(np.arange(len(settings)) % 10), strict=True):
        for i, row in enumerate(chase_runs(frame, regime, setting).itertuples()):
            sent = np.cumsum([int(x) for x in str(row.up_bytes_per_round).split()])
            ax.plot(sent, losses(row), "o-", ms=3, lw=1, color=color, label=setting if i == 0 else None)
    ax.axhline(target_loss(frame, regime), ls=":", color="gray", label="L*")
    ax.set(
        xscale="log",
        xlabel="cumulative uplink payload bytes (log)",
        ylabel="held-out loss (nats/byte)",
        title=f"{regime}: loss after each round vs bytes sent up",
    )
    ax.legend(fontsize="x-small")
    return ax


def plot_codec_bytes(table, ax=None):
    """Horizontal bars: payload MiB of one message per codec, with the reduction factor."""
    ax = axes_or_new(ax, figsize=(7, 0.4 * len(table) + 1))
    bars = ax.barh(table.codec[::-1], table.payload_bytes[::-1] / MIB, color="#ff7f0e")
    for bar, ratio in zip(bars, table.ratio[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:,.1f}x", va="center", fontsize="small")
    ax.set(xlabel="payload of one uplink message (MiB)", xscale="log", title="Bytes per codec")
    return ax


def plot_spectrum(matrices: dict[str, np.ndarray], ax=None):
    """Cumulative energy vs rank for each named matrix: how much a rank-r message can carry."""
    ax = axes_or_new(ax, figsize=(7, 4))
    for name, matrix in matrices.items():
        energy = energy_captured(matrix)
        ax.plot(np.arange(1, energy.size + 1), energy, label=f"{name} {matrix.shape[0]:,}x{matrix.shape[1]:,}")
    ax.set(
        xscale="log",
        xlabel="rank r",
        ylabel="share of the update's energy (sum of s_i^2)",
        ylim=(0, 1.02),
        title="How low-rank is an update?",
    )
    ax.legend(fontsize="small")
    return ax
