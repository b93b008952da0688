"""Plots of the wire: payload vs wire bytes per node, transfer time per client in a round (ax=None, return the Axes)."""

from __future__ import annotations

import numpy as np

from ..plots import DOWN_COLOR, UP_COLOR, axes_or_new
from ..units import MIB


def plot_payload_vs_wire(table, ax=None):
    """Paired bars per node and direction: payload MiB (what the ledger counts) and wire MiB (what moved)."""
    ax = axes_or_new(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table.payload_bytes / MIB, width=0.4, color=DOWN_COLOR, label="payload (ledger)")
    ax.bar(x + 0.2, table.wire_bytes / MIB, width=0.4, color="#7f7f7f", label="wire (relay)")
    ax.set_xticks(x, [f"node {p}\n{d}" for p, d in zip(table.partition, table.direction, strict=True)])
    ax.set(ylabel="MiB", title="Payload vs wire bytes, per node and direction")
    ax.legend(fontsize="small")
    return ax


def plot_round_times(times, round_number: int = 1, ax=None):
    """Stacked bars per node of one round: seconds down and up; a dashed line at the round's time."""
    ax = axes_or_new(ax)
    rows = times[times["round"] == round_number].reset_index(drop=True)
    labels = [f"{link}\n…{str(node)[-4:]}" for link, node in zip(rows.link, rows.node_id, strict=True)]
    ax.bar(labels, rows.down_seconds, color=DOWN_COLOR, label="model down")
    ax.bar(labels, rows.up_seconds, bottom=rows.down_seconds, color=UP_COLOR, label="update up")
    if len(rows):
        ax.axhline(rows.seconds.max(), ls="--", color="gray", label="round time (slowest client)")
    ax.set(ylabel="seconds", title=f"Round {round_number}: transfer time per client")
    ax.legend(fontsize="small")
    return ax


def plot_timeline(timing, ax=None):
    """A timeline per node: each model message as a bar from its first byte to its last (measured), and a thin
    line as long as the link model predicts, from the same start; rounds read left to right."""
    ax = axes_or_new(ax, figsize=(9, 1 + 0.6 * timing.node.nunique()))
    measured = timing.dropna(subset=["measured_seconds"])
    for row in measured.itertuples():
        color = DOWN_COLOR if row.direction == "down" else UP_COLOR
        ax.barh(row.node, row.measured_seconds, left=row.start_seconds, height=0.5, color=color, alpha=0.8)
        if row.predicted_seconds is not None and row.predicted_seconds == row.predicted_seconds:  # a link was emulated
            end = row.start_seconds + row.predicted_seconds
            ax.plot([row.start_seconds, end], [row.node + 0.32] * 2, color="black", lw=1.5)
            ax.plot([end, end], [row.node + 0.22, row.node + 0.42], color="black", lw=1.5)
    nodes = sorted(timing.node.unique())
    links = timing.drop_duplicates("node").set_index("node").link
    ax.set_yticks(nodes, [f"node {n}\n{links[n]}" for n in nodes])
    ax.set(xlabel="seconds since round 1 started", title="Each model message: measured (bar) and predicted (line)")
    ax.barh([], [], color=DOWN_COLOR, label="model down (measured)")
    ax.barh([], [], color=UP_COLOR, label="update up (measured)")
    ax.plot([], [], color="black", label="predicted by the link model")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_lever_times(rows: list[dict], regime: str, ax=None):
    """Time to L* per setting (a row each) on each fleet (a bar each, mean +- sd over seeds), log seconds."""
    ax = axes_or_new(ax)
    mine = [r for r in rows if r["regime"] == regime]
    settings = list(dict.fromkeys(r["setting"] for r in mine))
    fleets = list(dict.fromkeys(r["fleet"] for r in mine))
    height = 0.8 / max(len(fleets), 1)
    for j, fleet in enumerate(fleets):
        cells = {r["setting"]: r for r in mine if r["fleet"] == fleet}
        y = np.arange(len(settings)) + j * height
        x = [cells[s]["seconds_mean"] if s in cells else np.nan for s in settings]
        err = [cells[s]["seconds_sd"] if s in cells else 0.0 for s in settings]
        ax.barh(y, x, height=height, xerr=err, label=fleet)
    ax.set_yticks(np.arange(len(settings)) + 0.4 - height / 2, settings)
    ax.set(xscale="log", xlabel="seconds to L* (mean +- sd over seeds)", title=f"{regime}: which lever finishes first")
    if not mine:
        ax.text(0.5, 0.5, "no setting of this regime has reached L* yet", ha="center", transform=ax.transAxes)
    ax.invert_yaxis()
    if mine:
        ax.legend(fontsize="small")
    return ax
