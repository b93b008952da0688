"""The explorer's figure: predicted bytes per round and cumulative, with measured bytes laid over them."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from ..plots import plot_round_bytes
from ..units import MIB

MEASURED_STYLE = {"marker": "x", "markersize": 9, "color": "black", "linestyle": "none", "label": "measured"}


def overlay_round_totals(measured, ax):
    """Black crosses at each measured round's total MiB, on a per-round bar plot."""
    ax.plot(measured["round"], measured.total_bytes / MIB, **MEASURED_STYLE)
    ax.legend(loc="upper center", ncol=3, fontsize="small")
    return ax


def plot_cumulative_forecast(predicted, measured=None, ax=None):
    """Predicted cumulative MiB after each round (a line), measured totals as crosses."""
    ax = ax if ax is not None else Figure().subplots()
    rounds = np.concatenate([[0], predicted["round"].to_numpy()])
    ax.plot(
        rounds,
        np.concatenate([[0], predicted.cumulative_bytes.to_numpy()]) / MIB,
        marker="o",
        color="gray",
        label="predicted",
    )
    if measured is not None:
        ax.plot(measured["round"], measured.cumulative_bytes / MIB, **MEASURED_STYLE)
    ax.set(xlabel="round", ylabel="cumulative payload (MiB)", title="Cumulative bytes")
    ax.set_xticks(rounds)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def forecast_figure(predicted, measured=None) -> Figure:
    """Two panels (bytes per round, cumulative) of a predicted run, measured laid over; no pyplot."""
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_round_bytes(predicted, ax=left).set_title("Bytes per round (predicted bars)")
    if measured is not None:
        overlay_round_totals(measured, left)
    plot_cumulative_forecast(predicted, measured, ax=right)
    return fig


def png_bytes(fig: Figure, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (for an ipywidgets Image)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
