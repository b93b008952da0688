"""The compression study's results: compression ratios, the best run within a loss budget, the Pareto plot.

Plot helpers take ax=None and return the Axes (pareto_figure returns a Figure); none shows or saves.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots import axes_or_new
from ..units import MIB

TARGET_RATIO = 100  # the study's goal: this many times fewer uplink bytes than float32, same loss (within 2%)

# Published uplink reductions, for orientation (other models, data and settings than ours).
REFERENCES = {
    "DGC (datacenter), 270-600x": (270, 600),
    "Federated Dropout, 28x": (28, 28),
    "NVFlare 4-bit, ~7x": (7, 7),
    "TFF tutorial, ~3.5x": (3.5, 3.5),
}


def same_training(frame, run):
    """The rows of `frame` with `run`'s rounds, local steps, client fraction and partitioning (if recorded)."""
    same = (frame.rounds == run.rounds) & (frame.local_steps == run.local_steps) & (frame.fraction == run.fraction)
    if "partitioning" in frame:
        same &= frame.partitioning == run.partitioning
    return frame[same]


def baseline(frame):
    """The uncompressed run: no codec either way, all clients, IID, the rounds and steps most runs use."""
    rounds, steps = frame.groupby(["rounds", "local_steps"]).size().idxmax()
    plain = frame[
        (frame.up_codec == "none")
        & (frame.down_codec == "none")
        & (frame.fraction == 1.0)
        & (frame.rounds == rounds)
        & (frame.local_steps == steps)
    ]
    if "partitioning" in plain:
        plain = plain[plain.partitioning == "iid"]
    return plain.iloc[0]


def with_ratios(frame):
    """The frame plus up_ratio (baseline uplink / run uplink) and loss_change (relative to baseline)."""
    base = baseline(frame)
    out = frame.copy()
    out["up_ratio"] = base.up_bytes / out.up_bytes
    out["loss_change"] = out.final_eval_loss / base.final_eval_loss - 1
    return out


def best_within(frame, loss_budget: float = 0.02):
    """The run with the largest uplink reduction whose held-out loss is within `loss_budget` of the baseline,
    among runs with the baseline's rounds, local steps, client fraction and partitioning (only codecs differ)."""
    base = baseline(frame)
    same = with_ratios(frame).loc[same_training(frame, base).index]
    ok = same[same.loss_change <= loss_budget]
    return ok.sort_values("up_ratio", ascending=False).iloc[0]


SHORT_NAMES = {"gpt_neox.embed_in.weight": "embed_in", "lm_head.weight": "lm_head"}  # for plot labels


def run_label(row, base) -> str:
    """A short label for a study run: its codecs, and its fraction, rounds and steps where not the baseline's."""
    label = row.up_codec if row.down_codec == "none" else f"{row.up_codec} / down {row.down_codec}"
    for long, short in SHORT_NAMES.items():
        label = label.replace(long, short)
    if row.fraction != base.fraction:
        label += f" f={row.fraction:g}"
    if (row.rounds, row.local_steps) != (base.rounds, base.local_steps):
        label += f" R={row.rounds} S={row.local_steps}"
    if getattr(row, "partitioning", "iid") != getattr(base, "partitioning", "iid"):
        label += f" {row.partitioning}"
    return label


def plot_pareto(frame, ax=None, loss_budget: float = 0.02, zoom: float | None = None, label_above: float | None = None):
    """Cumulative uplink bytes (log) vs final held-out loss, one point a run, published ratios marked.

    With `zoom`, only runs within that relative loss of the baseline are drawn (labels stay readable);
    with `label_above`, only runs worse than that relative loss are labelled.
    """
    ax = axes_or_new(ax, figsize=(8, 5))
    data, base = with_ratios(frame), baseline(frame)
    if zoom is not None:
        data = data[data.loss_change <= zoom]
    ax.scatter(data.up_bytes, data.final_eval_loss, color="#1f77b4", zorder=3)
    labelled = data if label_above is None else data[data.loss_change > label_above]
    for i, (_, row) in enumerate(labelled.sort_values("up_bytes").iterrows()):
        ax.annotate(
            run_label(row, base),
            (row.up_bytes, row.final_eval_loss),
            fontsize=6,
            xytext=(3, 3 if i % 2 else -8),
            textcoords="offset points",
        )
    mark_goal_and_best(ax, frame, loss_budget)
    ax.set_xscale("log")
    ax.set(
        xlabel="cumulative uplink payload bytes (log)",
        ylabel="final held-out loss (nats/byte)",
        title="Uplink bytes vs held-out loss"
        + (
            f": runs within {zoom:.0%} of the baseline"
            if zoom
            else " (published reductions shown relative to our baseline)"
        ),
    )
    ax.legend(fontsize="x-small", loc="upper right" if zoom else (0.27, 0.16))
    return ax


def mark_goal_and_best(ax, frame, loss_budget: float = 0.02):
    """Draw the loss budget, the 100x line, the best same-training run (a star) and the published bands."""
    base = baseline(frame)
    ax.axhline(
        base.final_eval_loss * (1 + loss_budget), ls=":", color="gray", label=f"baseline loss + {loss_budget:.0%}"
    )
    ax.axvline(base.up_bytes / TARGET_RATIO, ls="--", color="gray", label=f"{TARGET_RATIO}x fewer uplink bytes")
    best = best_within(frame, loss_budget)
    ax.scatter(
        [best.up_bytes],
        [best.final_eval_loss],
        marker="*",
        s=250,
        color="#d62728",
        zorder=4,
        label=f"best within {loss_budget:.0%}, same training: {run_label(best, base)} ({best.up_ratio:,.0f}x)",
    )
    for (name, (low, high)), color in zip(REFERENCES.items(), plt.cm.Set2(np.arange(len(REFERENCES))), strict=True):
        ax.axvspan(base.up_bytes / high * 0.97, base.up_bytes / low * 1.03, color=color, alpha=0.35, label=name)
    return ax


def pareto_figure(frame, zoom: float = 0.05):
    """A Figure: all runs above (labelled if worse than `zoom`), below only the runs within `zoom` of the baseline."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 10), layout="constrained")
    plot_pareto(frame, ax=top, label_above=zoom)
    plot_pareto(frame, ax=bottom, zoom=zoom)
    return fig


def codec_table(codecs: list[str], weights: dict, reference: dict):
    """Payload bytes, ratio to float32 and max abs error of one uplink message, for each codec."""
    import pandas as pd

    from .chain import parse_codec
    from .encoding import decode, encode, payload_bytes

    shapes = {k: v.shape for k, v in weights.items()}
    plain = payload_bytes(weights)
    rows = []
    for text in codecs:
        codec = parse_codec(text)
        sent = encode(codec, weights, reference).arrays
        back = decode(codec, sent, shapes, reference)
        error = max(float(np.abs(back[k] - weights[k]).max()) for k in weights)
        rows.append(
            {
                "codec": text,
                "payload_bytes": payload_bytes(sent),
                "ratio": plain / payload_bytes(sent),
                "max_abs_error": error,
            }
        )
    return pd.DataFrame(rows)


def plot_codec_bytes(table, ax=None):
    """Horizontal bars: payload MiB of one message per codec, with the reduction factor."""
    ax = axes_or_new(ax, figsize=(7, 0.4 * len(table) + 1))
    bars = ax.barh(table.codec[::-1], table.payload_bytes[::-1] / MIB, color="#ff7f0e")
    for bar, ratio in zip(bars, table.ratio[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {ratio:,.1f}x", va="center", fontsize="small")
    ax.set(xlabel="payload of one uplink message (MiB)", xscale="log", title="Bytes per codec")
    return ax


def plot_runs(frame, ax=None, title: str = ""):
    """Uplink bytes (bars, log) and final held-out loss (line) for a set of study runs."""
    ax = axes_or_new(ax, figsize=(7, 3.5))
    labels = [
        f"{r.up_codec}{'' if r.down_codec == 'none' else ' / down ' + r.down_codec}\n"
        f"f={r.fraction:g} R={r.rounds} S={r.local_steps}"
        f"{'' if getattr(r, 'partitioning', 'iid') == 'iid' else ' ' + r.partitioning}"
        for r in frame.itertuples()
    ]
    ax.bar(labels, frame.up_bytes, color="#ff7f0e")
    ax.set(yscale="log", ylabel="cumulative uplink bytes", title=title)
    ax.tick_params(axis="x", labelsize=6, rotation=30)
    loss = ax.twinx()
    loss.plot(labels, frame.final_eval_loss, "o-", color="#1f77b4")
    loss.set_ylabel("final held-out loss", color="#1f77b4")
    return ax


def client_update(local_steps: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Client 0's first-round update in the study's setting (PRESETS["study"], TrainConfig's sizes): its weights
    after `local_steps` (the preset's if None) minus the initial ones."""
    from . import task
    from .training import PRESETS, TrainConfig

    cfg = TrainConfig(**{**PRESETS["study"], "local_steps": local_steps or PRESETS["study"]["local_steps"]}, seed=seed)
    model = task.build_model(cfg.seed)
    initial = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    data = task.partition(0, cfg.supernodes, cfg.partitioning, cfg.seq_len, cfg.seed)
    task.train_steps(model, task.sample_batches(data, cfg.local_steps, cfg.batch_size, (cfg.seed, 0, 1)), cfg.lr)
    return {k: v.detach().numpy() - initial[k] for k, v in model.state_dict().items()}


def energy_captured(matrix: np.ndarray) -> np.ndarray:
    """Share of the squared Frobenius norm in the top 1, 2, ... singular values (cumulative, ends at 1)."""
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False) ** 2
    return np.cumsum(values) / values.sum()


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
