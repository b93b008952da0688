"""The compression study's results: compression ratios, the best run within a loss budget, the Pareto plot.

Plot helpers take ax=None and return the Axes (pareto_figure returns a Figure); none shows or saves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

# Published uplink reductions, for orientation (other models, data and settings than ours).
REFERENCES = {
    "DGC (datacenter), 270-600x": (270, 600),
    "Federated Dropout, 28x": (28, 28),
    "NVFlare 4-bit, ~7x": (7, 7),
    "TFF tutorial, ~3.5x": (3.5, 3.5),
}


def baseline(frame):
    """The uncompressed run: no codec either way, all clients, the rounds and steps most runs use."""
    rounds, steps = frame.groupby(["rounds", "local_steps"]).size().idxmax()
    plain = frame[(frame.up_codec == "none") & (frame.down_codec == "none") & (frame.fraction == 1.0)
                  & (frame.rounds == rounds) & (frame.local_steps == steps)]
    return plain.iloc[0]


def with_ratios(frame):
    """The frame plus up_ratio (baseline uplink / run uplink) and loss_change (relative to baseline)."""
    base = baseline(frame)
    out = frame.copy()
    out["up_ratio"] = base.up_bytes / out.up_bytes
    out["loss_change"] = out.final_eval_loss / base.final_eval_loss - 1
    return out


def best_within(frame, loss_budget: float = 0.02):
    """The run with the largest uplink reduction whose held-out loss is within `loss_budget` of the baseline."""
    base = baseline(frame)
    same = with_ratios(frame[(frame.rounds == base.rounds) & (frame.local_steps == base.local_steps)])
    ok = same[same.loss_change <= loss_budget]
    return ok.sort_values("up_ratio", ascending=False).iloc[0]


def plot_pareto(frame, ax=None, loss_budget: float = 0.02):
    """Cumulative uplink bytes (log) vs final held-out loss, one point a run, published ratios marked."""
    ax = ax if ax is not None else plt.subplots(figsize=(8, 5))[1]
    data, base = with_ratios(frame), baseline(frame)
    ax.scatter(data.up_bytes, data.final_eval_loss, color="#1f77b4", zorder=3)
    for _, row in data.iterrows():
        label = row.up_codec if row.fraction == 1.0 else f"{row.up_codec} f={row.fraction:g}"
        if (row.rounds, row.local_steps) != (base.rounds, base.local_steps):
            label += f" R={row.rounds} S={row.local_steps}"
        ax.annotate(label, (row.up_bytes, row.final_eval_loss), fontsize=6, xytext=(3, 2),
                    textcoords="offset points")
    ax.axhline(base.final_eval_loss * (1 + loss_budget), ls=":", color="gray",
               label=f"baseline loss + {loss_budget:.0%}")
    for (name, (low, high)), color in zip(REFERENCES.items(), plt.cm.Set2(np.arange(len(REFERENCES)))):
        ax.axvspan(base.up_bytes / high * 0.97, base.up_bytes / low * 1.03, color=color, alpha=0.35, label=name)
    ax.set_xscale("log")
    ax.set(xlabel="cumulative uplink payload bytes (log)", ylabel="final held-out loss (nats/byte)",
           title="Uplink bytes vs held-out loss (published reductions shown relative to our baseline)")
    ax.legend(fontsize="x-small", loc="upper right")
    return ax


def pareto_figure(frame):
    """A Figure with the Pareto plot."""
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    plot_pareto(frame, ax=ax)
    return fig


def codec_table(codecs: list[str], weights: dict, reference: dict):
    """Payload bytes, ratio to float32 and max abs error of one uplink message, for each codec."""
    import pandas as pd

    from .codecs import decode, encode, parse_codec, payload_bytes

    shapes = {k: v.shape for k, v in weights.items()}
    plain = payload_bytes(weights)
    rows = []
    for text in codecs:
        codec = parse_codec(text)
        sent = encode(codec, weights, reference).arrays
        back = decode(codec, sent, shapes, reference)
        error = max(float(np.abs(back[k] - weights[k]).max()) for k in weights)
        rows.append({"codec": text, "payload_bytes": payload_bytes(sent),
                     "ratio": plain / payload_bytes(sent), "max_abs_error": error})
    return pd.DataFrame(rows)


def plot_codec_bytes(table, ax=None):
    """Horizontal bars: payload MiB of one message per codec, with the reduction factor."""
    from .units import MIB

    ax = ax if ax is not None else plt.subplots(figsize=(7, 0.4 * len(table) + 1))[1]
    bars = ax.barh(table.codec[::-1], table.payload_bytes[::-1] / MIB, color="#ff7f0e")
    for bar, ratio in zip(bars, table.ratio[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:,.1f}x", va="center",
                fontsize="small")
    ax.set(xlabel="payload of one uplink message (MiB)", xscale="log", title="Bytes per codec")
    return ax


def plot_runs(frame, ax=None, title: str = ""):
    """Uplink bytes (bars, log) and final held-out loss (line) for a set of study runs."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 3.5))[1]
    labels = [f"{r.up_codec}\nf={r.fraction:g} R={r.rounds} S={r.local_steps}" for r in frame.itertuples()]
    ax.bar(labels, frame.up_bytes, color="#ff7f0e")
    ax.set(yscale="log", ylabel="cumulative uplink bytes", title=title)
    ax.tick_params(axis="x", labelsize=6, rotation=30)
    loss = ax.twinx()
    loss.plot(labels, frame.final_eval_loss, "o-", color="#1f77b4")
    loss.set_ylabel("final held-out loss", color="#1f77b4")
    return ax
