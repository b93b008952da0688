"""Plots of a ledger: bytes per round (down/up), cumulative bytes, where the bytes are.

Each helper draws on `ax` (a new one if None) and returns it; none shows or saves a figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .units import MIB

DOWN_COLOR, UP_COLOR = "#1f77b4", "#ff7f0e"


def axes_or_new(ax=None, figsize: tuple[float, float] = (6, 3.5)):
    """The given Axes, or a new one on a figure of `figsize` inches (what every plot helper starts with)."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def plot_round_bytes(table, ax=None):
    """Stacked bars per round: MiB sent down (server -> clients) and up (clients -> server)."""
    ax = axes_or_new(ax)
    rounds = table["round"].to_numpy()
    down, up = table.down_bytes.to_numpy() / MIB, table.up_bytes.to_numpy() / MIB
    ax.bar(rounds, down, color=DOWN_COLOR, label="down (server → clients)")
    ax.bar(rounds, up, bottom=down, color=UP_COLOR, label="up (clients → server)")
    ax.set(xlabel="round", ylabel="payload per round (MiB)", title="Bytes per round")
    ax.set_xticks(rounds)
    ax.set_ylim(0, max((down + up).max(initial=0), 1e-9) * 1.3)  # headroom for the legend
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    return ax


def plot_cumulative(table, ax=None, predicted_total: int | None = None):
    """Cumulative payload MiB after each round, with the predicted total as a dashed line."""
    ax = axes_or_new(ax)
    rounds = np.concatenate([[0], table["round"].to_numpy()])
    cumulative = np.concatenate([[0], table.cumulative_bytes.to_numpy()]) / MIB
    ax.plot(rounds, cumulative, marker="o", label="measured")
    if predicted_total is not None:
        ax.axhline(predicted_total / MIB, ls="--", color="gray", label="predicted total")
    ax.set(xlabel="round", ylabel="cumulative payload (MiB)", title="Cumulative bytes")
    ax.set_xticks(rounds)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def plot_breakdown(breakdown, ax=None):
    """Horizontal bars: share of the model's bytes per component (embeddings, MLP, ...)."""
    ax = axes_or_new(ax)
    frame = breakdown.iloc[::-1]
    bars = ax.barh(frame.component, frame.share * 100, color="#2ca02c")
    for bar, share, nbytes in zip(bars, frame.share, frame.tensor_bytes, strict=True):
        ax.text(
            bar.get_width() + 1,
            bar.get_y() + bar.get_height() / 2,
            f"{share:.1%}  ({nbytes / MIB:.2f} MiB)",
            va="center",
            fontsize="small",
        )
    ax.set(xlabel="share of model bytes (%)", xlim=(0, 125), title="Where the bytes are")
    return ax


def lesson_figure(table, predicted_total: int | None = None):
    """A two-panel figure: bytes per round and cumulative bytes; returns the Figure."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    plot_round_bytes(table, ax=left)
    plot_cumulative(table, ax=right, predicted_total=predicted_total)
    return fig
