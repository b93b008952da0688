"""The compression study's numbers: its targets, bytes to reach them (up, down, total), the summary per regime.

The field compares levers by the communication they need to reach a target quality (Deep Gradient
Compression, PowerSGD). Per regime the reference is float32 FedAvg tuned on the validation split
(study_plan.py); L* = 1.01 x its mean final *test* loss (also 1.02, 1.05). A run's bytes to a target are
its cumulative uplink, downlink and total payload bytes through the first round whose test loss is <= it.
A setting's means are given only when every seed reached the target, and only such a setting can be best.
The headline is total bytes (down + up): the bytes a user pays. Every ratio is also given against the best
float32 FedAvg the study ran (the reference or another split of its rounds x local steps, "best_float32"):
a lever's ratio is only as honest as its denominator. Everything here is read from the CSV.
"""

from __future__ import annotations

import json

import numpy as np

from .study_plan import REFERENCE, REFERENCE_STAGE, SETTING, split_of
from .study_rows import HEADLINE, TARGET_FACTORS, flattened, gained_little, losses_of, target_columns, with_targets

MIN_SEEDS = 3  # a setting can be best only once it ran at this many seeds, every one reaching L*
DIRECTIONS = ("up", "down", "total")
SPLIT_FLAGS = {"--preset", "--lr", "--rounds", "--local-steps", "--target-loss", "--max-rounds"}  # float32 FedAvg's


def reference_rows(frame, regime: str):
    """The reference's runs: the command of the newest reference-stage row (seeds past the first: seed 0 ran in
    tuning or flattening; an earlier reference's rows are marked superseded), every seed."""
    staged = frame[(frame.regime == regime) & (frame.setting == REFERENCE) & (frame.stage == REFERENCE_STAGE)]
    if staged.empty:
        return staged
    command = staged.command.iloc[-1]
    rows = frame[(frame.regime == regime) & (frame.setting == REFERENCE) & (frame.command == command)]
    return rows.sort_values("seed")


def regime_targets(frame, regime: str) -> dict[float, float]:
    """L* at each factor: factor x the reference's mean final test loss ({} before any reference run)."""
    rows = reference_rows(frame, regime)
    return {} if rows.empty else {f: f * float(rows.final_test_loss.mean()) for f in TARGET_FACTORS}


def study_frame(frame):
    """The CSV's runs with every row's bytes to its regime's targets (up, down, total) filled in."""
    return with_targets(frame, {r: regime_targets(frame, r) for r in dict.fromkeys(frame.regime)})


def setting_rows(frame, regime: str, name: str):
    """A setting's runs: every row with the command of its setting-stage rows (its tuning seed included)."""
    rows = frame[(frame.regime == regime) & (frame.setting == name)]
    staged = rows[rows.stage == SETTING]
    return staged if staged.empty else rows[rows.command == staged.command.iloc[0]].sort_values("seed")


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def to_target_means(rows, factor: float = HEADLINE) -> dict:
    """Mean up, down and total bytes to the target over the seeds, and the mean round that reached it (what
    `plan --study-setting` reads); None unless every seed reached it."""
    reached, up, down, total = target_columns(factor)
    every = len(rows) > 0 and rows[total].notna().all()
    means = {f"{d}_bytes_to_target_mean": float(rows[c].astype(float).mean()) if every else None
             for d, c in zip(DIRECTIONS, (up, down, total), strict=True)}  # fmt: skip
    return {**means, "rounds_to_target_mean": float(rows[reached].astype(float).mean()) if every else None}


def ratio(reference: float | None, setting: float | None) -> float | None:
    """How many times fewer bytes than the reference (None unless both are known)."""
    return reference / setting if reference and setting else None


def doubling_gained_little(frame, regime: str, command: list[str], final_val: float) -> bool:
    """True when seed 0 at twice the reference's rounds (its flattening run) ended < 1% lower than it, or higher."""
    doubled = list(command)
    doubled[doubled.index("--rounds") + 1] = str(2 * split_of(command)[0])
    rows = frame[(frame.regime == regime) & (frame.command == json.dumps(doubled)) & (frame.seed == 0)]
    return not rows.empty and gained_little(final_val, float(rows.final_val_loss.iloc[0]))


def reference_summary(rows, frame, regime: str) -> dict:
    """The reference over its seeds: its command, lr, split, final test loss, bytes to L*, and whether it had
    flattened: every seed's validation loss < 1% better over its last quarter, or seed 0 at twice the rounds
    < 1% lower (the plan stops doubling anyway)."""
    command = json.loads(rows.command.iloc[0])
    rounds, steps = split_of(command)
    loss_mean, loss_sd = mean_sd(rows.final_test_loss)
    flat = all(flattened(losses_of(row, "val")) for _, row in rows.iterrows())
    flat = flat or doubling_gained_little(frame, regime, command, float(rows[rows.seed == 0].final_val_loss.iloc[0]))
    return {"command": command, "seeds": [int(s) for s in rows.seed], "lr": float(rows.lr.iloc[0]),
            "rounds": rounds, "local_steps": steps, "final_loss_mean": loss_mean, "final_loss_sd": loss_sd,
            "flattened": flat, **to_target_means(rows)}  # fmt: skip


def setting_summary(rows, reference: dict) -> dict:
    """One setting over its seeds: seeds reaching L*, mean bytes to it each way, ratios, final test loss."""
    means = to_target_means(rows)
    loss_mean, loss_sd = mean_sd(rows.final_test_loss)
    return {
        "name": rows.setting.iloc[0],
        "command": json.loads(rows.command.iloc[0]),
        "seeds": [int(s) for s in rows.seed],
        "lr": float(rows.lr.iloc[0]),
        "seeds_reaching_target": int(rows[target_columns(HEADLINE)[3]].notna().sum()),
        **means,
        "ratio_total": ratio(reference["total_bytes_to_target_mean"], means["total_bytes_to_target_mean"]),
        "ratio_up": ratio(reference["up_bytes_to_target_mean"], means["up_bytes_to_target_mean"]),
        "final_loss_mean": loss_mean,
        "final_loss_sd": loss_sd,
    }


def is_float32_fedavg(command: list[str]) -> bool:
    """True for the reference's float32 FedAvg, same clients, at another split of rounds x local steps or lr."""
    return {a for a in command if a.startswith("--")} <= SPLIT_FLAGS


def best_float32(reference: dict, settings: list[dict]) -> dict:
    """The float32 FedAvg run (the reference or another split of it, every seed reaching L*, >= MIN_SEEDS seeds)
    with the fewest mean total bytes to L*: the strictest denominator, as tuned as any lever."""
    fit = [s for s in settings if is_float32_fedavg(s["command"]) and s["seeds_reaching_target"] == len(s["seeds"])]
    fit = [s for s in fit if len(s["seeds"]) >= MIN_SEEDS and s["total_bytes_to_target_mean"] is not None]
    return min([{**reference, "name": REFERENCE}, *fit], key=lambda s: s["total_bytes_to_target_mean"] or float("inf"))


def best_by(settings: list[dict], key: str) -> str | None:
    """The setting with the highest `key` ratio among those run at MIN_SEEDS seeds or more, every one reaching L*."""
    fit = [s for s in settings if s[key] is not None and len(s["seeds"]) >= MIN_SEEDS]
    fit = [s for s in fit if s["seeds_reaching_target"] == len(s["seeds"])]
    return max(fit, key=lambda s: s[key])["name"] if fit else None


def regime_summary(frame, regime: str) -> dict:
    """A regime: its reference, its targets, every setting that has setting-stage runs, the best each way."""
    reference = reference_summary(reference_rows(frame, regime), frame, regime)
    names = [n for n in dict.fromkeys(frame[frame.regime == regime].setting) if n != REFERENCE]
    settings = [setting_summary(rows, reference) for n in names if not (rows := setting_rows(frame, regime, n)).empty]
    floor = best_float32(reference, settings)
    for s in settings:
        s["ratio_total_best_float32"] = ratio(floor["total_bytes_to_target_mean"], s["total_bytes_to_target_mean"])
    return {
        "reference": reference,
        "targets": {str(f): t for f, t in regime_targets(frame, regime).items()},
        "settings": settings,
        "best_total": best_by(settings, "ratio_total"),
        "best_up": best_by(settings, "ratio_up"),
        "best_float32": floor["name"],
    }


def study_summary(frame, task: dict | None = None) -> dict:
    """compression_summary.json's measured part: the task, every regime with a reference run, the run seconds."""
    frame = study_frame(frame)
    regimes = [r for r in dict.fromkeys(frame.regime) if not reference_rows(frame, r).empty]
    return {
        "task": task or {},
        "regimes": {r: regime_summary(frame, r) for r in regimes},
        "study_seconds": round(float(frame.run_seconds.sum()), 1),
    }
