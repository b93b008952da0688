"""The compression study's plots: test loss vs total bytes (the Pareto frontier marked), total bytes to L* per
setting (with error bars), one message per codec, one update's spectrum. No literature bands: published figures
are other tasks, and go in the text with their task.

Plot helpers take ax=None and return the Axes (study_figure returns a Figure); none shows or saves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import axes_or_new
from ..units import MIB
from .study import reference_rows, regime_targets, setting_rows, study_frame
from .study_plan import REFERENCE
from .study_rows import HEADLINE, losses_of, numbers, target_columns
from .update import energy_captured

TOTAL = target_columns(HEADLINE)[3]  # total bytes to L* = 1.01 x the reference's mean final test loss


def regime_runs(frame, regime: str) -> dict:
    """{setting: its runs}, the reference first, then each setting that has setting-stage runs."""
    names = [n for n in dict.fromkeys(frame[frame.regime == regime].setting) if n != REFERENCE]
    runs = {REFERENCE: reference_rows(frame, regime), **{n: setting_rows(frame, regime, n) for n in names}}
    return {n: rows for n, rows in runs.items() if not rows.empty}


def setting_order(frame, regime: str) -> list[str]:
    """The regime's settings, the reference first, then by mean total bytes to L* (unreached last)."""
    runs = regime_runs(study_frame(frame), regime)
    key = {n: (n != REFERENCE, not r[TOTAL].notna().all(), r[TOTAL].astype(float).mean()) for n, r in runs.items()}
    return sorted(key, key=lambda n: (key[n][0], key[n][1], np.nan_to_num(key[n][2], nan=np.inf)))


def plot_bytes_to_target(frame, regime: str, ax=None):
    """Total bytes to reach L* per setting (log): seeds as dots, mean +- sd as error bars; a seed that never
    reached it as x at the bytes it moved. The line is the reference's mean."""
    frame = study_frame(frame)
    runs, order = regime_runs(frame, regime), setting_order(frame, regime)
    ax = axes_or_new(ax, figsize=(11, 0.42 * len(order) + 1.8))
    for y, name in enumerate(order):
        rows = runs[name]
        reached = rows[TOTAL].dropna().astype(float)
        ax.scatter(reached, [y] * len(reached), s=14, color="#1f77b4", alpha=0.6, zorder=3)
        missed = rows[rows[TOTAL].isna()].total_bytes
        ax.scatter(missed, [y] * len(missed), marker="x", s=40, color="#d62728", zorder=3)
        if len(reached) == len(rows):
            sd = reached.std(ddof=1) if len(reached) > 1 else 0.0
            ax.errorbar(reached.mean(), y, xerr=sd, fmt="D", color="black", ms=5, capsize=3, zorder=4)
    ax.axvline(runs[REFERENCE][TOTAL].astype(float).mean(), color="gray", lw=1, label="reference (float32)")
    ax.scatter([], [], marker="x", color="#d62728", label="seed that never reached L* (bytes it moved)")
    labels = [f"{n} ({len(runs[n])} seed{'s' * (len(runs[n]) != 1)})" for n in order]
    ax.set_yticks(range(len(order)), labels, fontsize="small")
    ax.invert_yaxis()
    star = regime_targets(frame, regime)[HEADLINE]
    ax.set(xscale="log", xlabel="total (down + up) payload bytes to reach L* (log)", title=f"{regime}: L* = {star:.4f}")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def mean_curve(rows) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative total bytes, mean test loss) after each round, over the seeds' common rounds."""
    totals = [np.cumsum(numbers(r.up_bytes_per_round)) + np.cumsum(numbers(r.down_bytes_per_round))
              for _, r in rows.iterrows()]  # fmt: skip
    losses = [losses_of(r, "test") for _, r in rows.iterrows()]
    n = min(len(x) for x in losses)
    return np.mean([t[:n] for t in totals], axis=0), np.mean([x[:n] for x in losses], axis=0)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both bytes and loss, by bytes (the frontier)."""
    frontier, best = [], np.inf
    for x, y in sorted(points):
        if y < best:
            frontier.append((x, y))
            best = y
    return frontier


def plot_loss_vs_bytes(frame, regime: str, settings: list[str] | None = None, ax=None):
    """Mean test loss after each round against cumulative total bytes (log), a line per setting; the dashed line
    is the Pareto frontier over every setting's rounds, the dotted one L*."""
    runs = regime_runs(frame, regime)
    ax = axes_or_new(ax, figsize=(8, 4.5))
    names = [n for n in runs if settings is None or n in settings]
    points = []
    for name, color in zip(names, plt.cm.tab10(np.arange(len(names)) % 10), strict=True):
        x, y = mean_curve(runs[name])
        ax.plot(x, y, "o-", ms=3, lw=1, color=color, label=name)
        points += list(zip(x, y, strict=True))
    front = np.array(pareto(points)).reshape(-1, 2)
    ax.plot(front[:, 0], front[:, 1], "--", color="black", lw=1.5, label="Pareto frontier", zorder=5)
    ax.axhline(regime_targets(frame, regime)[HEADLINE], ls=":", color="gray", label="L*")
    ax.set(xscale="log", xlabel="cumulative total (down + up) payload bytes (log)", ylabel="test loss (nats/token)",
           title=f"{regime}: test loss after each round vs bytes moved")  # fmt: skip
    ax.legend(fontsize="x-small")
    return ax


def study_figure(frame):
    """A Figure: per regime, test loss vs total bytes (left) and total bytes to L* per setting (right)."""
    regimes = [r for r in dict.fromkeys(frame.regime) if regime_targets(frame, r)]
    heights = [max(4, 0.42 * len(setting_order(frame, r)) + 1.8) for r in regimes]
    fig, axes = plt.subplots(len(regimes), 2, figsize=(20, sum(heights)), layout="constrained", squeeze=False)
    for regime, (left, right) in zip(regimes, axes, strict=True):
        plot_loss_vs_bytes(frame, regime, ax=left)
        plot_bytes_to_target(frame, regime, ax=right)
    return fig


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


def plot_pretraining(curve: dict, ax=None):
    """The warm start's central pre-training: train and validation loss against steps (the stop marked)."""
    ax = axes_or_new(ax)
    ax.plot(curve["step"], curve["train_loss"], "o-", ms=3, alpha=0.6, label="train (the step's batch)")
    ax.plot(curve["step"], curve["val_loss"], "o-", ms=3, label="validation (pre-training documents)")
    stop = "flattened: < 1% better over the last quarter" if curve["flattened"] else "the step cap (not flattened)"
    ax.axvline(curve["step"][-1], color="grey", ls=":", label=f"stop: {stop}")
    ax.set(xlabel="pre-training step (16 x 128 tokens)", ylabel="loss (nats per token)",
           title=f"The warm start: {curve['step'][-1]:,} steps, {curve['seconds']:,.0f} s")  # fmt: skip
    ax.legend(fontsize="small")
    return ax
