"""The compression study's numbers: the target loss, uplink bytes to reach it, and the summary per regime.

The field compares levers by the communication they need to reach a target quality (Deep Gradient
Compression, PowerSGD), not by the loss after a short fixed budget. Per regime the target is
L* = 1.01 x the uncompressed reference's mean final loss; a run's *bytes to target* is its cumulative
uplink bytes at the first round whose held-out loss is <= L*. A seed that never reaches L* stays in
the table as such; a setting's mean bytes to target is given only when every seed reached it.

Rows are runs of benchmarks/compression_study.py (one per regime, setting, seed and phase): phase
"fixed" runs the reference for its rounds (this defines L*); phase "target" runs every other setting
with --target-loss L* for up to twice the reference's rounds. Every run evaluates after every round, so
the reference's bytes to target are read from its fixed runs' per-round history, and a run's final loss
(the fixed-rounds table) is its loss after its own --rounds, also when it went on chasing L*. A reference
row in phase "target" is a rerun of a seed: it measures only how much reruns differ.
"""

from __future__ import annotations

import json

import numpy as np

from .train_report import bytes_to_target

TARGET_FACTOR = 1.01  # L* = this x the reference's mean final held-out loss
REFERENCE = "reference"  # the setting name of the uncompressed run
FIXED, TARGET = "fixed", "target"  # phases: the reference alone for its rounds; every setting chasing L*


def runs_of(frame, regime: str, setting: str, phase: str = TARGET):
    """The rows of one setting of one regime in one phase, by seed."""
    rows = frame[(frame.regime == regime) & (frame.setting == setting) & (frame.phase == phase)]
    return rows.sort_values("seed")


def target_loss(frame, regime: str) -> float:
    """L*: TARGET_FACTOR x the mean final loss of the regime's reference runs (phase fixed)."""
    return TARGET_FACTOR * float(runs_of(frame, regime, REFERENCE, FIXED).final_eval_loss.mean())


def chase_runs(frame, regime: str, setting: str):
    """A setting's runs measured against L*: its target-phase rows; the reference's fixed rows, whose
    reached_target_round and bytes_to_target are read from their per-round history."""
    if setting != REFERENCE:
        return runs_of(frame, regime, setting)
    rows = runs_of(frame, regime, REFERENCE, FIXED).copy()
    reached = [bytes_to_target(history(row), target_loss(frame, regime)) for row in rows.itertuples()]
    rows["reached_target_round"] = [r for r, _ in reached]
    rows["bytes_to_target"] = [np.nan if b is None else b for _, b in reached]
    return rows


def history(row) -> list[dict]:
    """A run's rounds as train reports them (round, up_bytes, eval_loss), from its CSV row."""
    up = [int(x) for x in str(row.up_bytes_per_round).split()]
    return [
        {"round": r, "up_bytes": b, "eval_loss": loss}
        for r, (b, loss) in enumerate(zip(up, losses(row), strict=True), 1)
    ]


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def bytes_to_target_mean(rows) -> float | None:
    """Mean uplink bytes to target over the seeds, or None unless every seed reached the target."""
    reached = rows.bytes_to_target.dropna()
    return float(reached.mean()) if len(reached) == len(rows) and len(rows) else None


def setting_summary(rows, reference_bytes: float | None) -> dict:
    """One setting over its seeds: seeds reaching the target, mean bytes to target, ratio, final loss."""
    to_target = bytes_to_target_mean(rows)
    loss_mean, loss_sd = mean_sd(rows.final_eval_loss)
    ratio = reference_bytes / to_target if to_target and reference_bytes else None
    return {
        "name": rows.setting.iloc[0],
        "command": json.loads(rows.command.iloc[0]),
        "seeds": [int(s) for s in rows.seed],
        "seeds_reaching_target": int(rows.bytes_to_target.notna().sum()),
        "up_bytes_to_target_mean": to_target,
        "ratio_to_reference": ratio,
        "final_loss_mean": loss_mean,
        "final_loss_sd": loss_sd,
    }


def best_setting(settings: list[dict], seeds: list[int]) -> str | None:
    """The setting with the highest ratio among those run at every one of `seeds` that all reached the target."""
    complete = [s for s in settings if s["ratio_to_reference"] is not None and set(s["seeds"]) >= set(seeds)]
    return max(complete, key=lambda s: s["ratio_to_reference"])["name"] if complete else None


def regime_summary(frame, regime: str) -> dict:
    """A regime's reference (phase fixed: final loss; phase target: bytes to target), L*, settings and best."""
    fixed = runs_of(frame, regime, REFERENCE, FIXED)
    reference_bytes = bytes_to_target_mean(chase_runs(frame, regime, REFERENCE))
    loss_mean, loss_sd = mean_sd(fixed.final_eval_loss)
    names = [n for n in dict.fromkeys(frame[frame.regime == regime].setting) if n != REFERENCE]
    settings = [setting_summary(chase_runs(frame, regime, n), reference_bytes) for n in names]
    settings = [s for s in settings if s["seeds"]]
    reference = {
        "command": json.loads(fixed.command.iloc[0]),
        "seeds": [int(s) for s in fixed.seed],
        "final_loss_mean": loss_mean,
        "final_loss_sd": loss_sd,
        "up_bytes_to_target_mean": reference_bytes,
    }
    return {
        "reference": reference,
        "target_loss": target_loss(frame, regime),
        "settings": settings,
        "best": best_setting(settings, reference["seeds"]),
    }


def study_summary(frame) -> dict:
    """compression_summary.json: every regime of the study, in the order the runs list them."""
    return {"regimes": {regime: regime_summary(frame, regime) for regime in dict.fromkeys(frame.regime)}}


def rerun_differences(frame) -> dict[str, float]:
    """Per regime, the largest |loss difference| over rounds 1..R between the reference's two runs of a seed."""
    out = {}
    for regime in dict.fromkeys(frame.regime):
        fixed = runs_of(frame, regime, REFERENCE, FIXED).set_index("seed")
        chased = runs_of(frame, regime, REFERENCE).set_index("seed")
        diffs = [
            abs(a - b)
            for seed in fixed.index.intersection(chased.index)
            for a, b in zip(losses(fixed.loc[seed]), losses(chased.loc[seed]), strict=False)
        ]
        out[regime] = max(diffs) if diffs else float("nan")
    return out


def losses(row) -> list[float]:
    """A run's held-out loss after each round (1, 2, ...), from its eval_losses column."""
    return [float(x) for x in str(row.eval_losses).split()]


def summary_table(summary: dict, regime: str):
    """A regime's summary as a table: one row per setting (the reference first), bytes to target and loss."""
    import pandas as pd

    result = summary["regimes"][regime]
    rows = [
        {
            "setting": s["name"],
            "seeds reaching L*": f"{s['seeds_reaching_target']}/{len(s['seeds'])}",
            "uplink bytes to L* (mean)": s["up_bytes_to_target_mean"],
            "x fewer than float32": s["ratio_to_reference"],
            "final loss (mean)": s["final_loss_mean"],
            "final loss (sd)": s["final_loss_sd"],
        }
        for s in [reference_entry(result), *result["settings"]]
    ]
    return pd.DataFrame(rows).set_index("setting")


def reference_entry(result: dict) -> dict:
    """A regime's reference shaped like one of its settings (ratio 1; seeds reaching L*: all, or "some")."""
    reference = {"name": REFERENCE, **result["reference"], "ratio_to_reference": 1.0}
    complete = result["reference"]["up_bytes_to_target_mean"] is not None  # its mean needs every seed
    return {**reference, "seeds_reaching_target": len(reference["seeds"]) if complete else "some"}


MARKDOWN_HEADER = [
    "| regime | setting | seeds reaching L* | uplink bytes to L* (mean ± sd) | fewer than float32 "
    "| loss after its rounds (mean ± sd) |",
    "|---|---|---:|---:|---:|---:|",
]


def bytes_cell(rows) -> str:
    """Bytes to L* as mean ± sd over seeds, or which seeds never reached it and what they sent."""
    reached = rows.bytes_to_target
    if reached.notna().all():
        return f"{reached.mean():,.0f} ± {reached.std(ddof=1):,.0f}"
    missed = rows[reached.isna()]
    sent = ", ".join(f"{int(v):,}" for v in missed.up_bytes)
    seeds = ", ".join(str(int(s)) for s in missed.seed)
    return f"seed(s) {seeds} never reached L* in {int(missed.rounds_run.max())} rounds (sent {sent} B)"


def markdown_row(frame, regime: str, setting: dict) -> str:
    """One line of the findings table: a setting of a regime (a summary entry) over its seeds."""
    rows = chase_runs(frame, regime, setting["name"])
    label = "reference (float32)" if setting["name"] == REFERENCE else setting["name"]
    ratio = setting["ratio_to_reference"]
    fewer = "1x" if setting["name"] == REFERENCE else "—" if ratio is None else f"{ratio:.2f}x"
    reach = f"{int(rows.bytes_to_target.notna().sum())}/{len(rows)}"
    loss = f"{setting['final_loss_mean']:.4f} ± {setting['final_loss_sd']:.4f}"
    return f"| {regime} | {label} | {reach} | {bytes_cell(rows)} | {fewer} | {loss} |"


def findings_markdown(summary: dict, frame) -> list[str]:
    """The findings table (markdown lines): both references, then each setting run at every reference seed."""
    regimes = summary["regimes"].items()
    lines = [*MARKDOWN_HEADER, *(markdown_row(frame, r, reference_entry(result)) for r, result in regimes)]
    for regime, result in regimes:
        seeds = set(result["reference"]["seeds"])
        lines += [markdown_row(frame, regime, s) for s in result["settings"] if set(s["seeds"]) >= seeds]
    return lines
