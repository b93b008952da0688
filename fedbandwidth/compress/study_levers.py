"""The compression study's stages 3 and 4 (each lever family's learning rate, then its settings at every seed), and
the whole plan's runs (`planned`): what study_plan.py's reference leads to, read from the CSV as it is."""

from __future__ import annotations

import json
import math

from .study_plan import (
    REFERENCE,
    REFERENCE_STAGE,
    SETTING,
    SUPERSEDED,
    TUNING,
    Plan,
    Setting,
    base_argv,
    chosen_split,
    fewest_bytes,
    missing,
    reference_argv,
    reference_runs,
    rows_of,
    run,
    split_of,
    targets,
)
from .study_rows import HEADLINE, bytes_to


def own_argv(setting: Setting, rounds: int, steps: int) -> list[str]:
    """A setting's own arguments for a split ("{R}", "{S}", "{R4}", "{S4}" filled in)."""
    names = {"R": rounds, "S": steps, "R4": max(1, rounds // 4), "S4": 4 * steps}
    return [a.format(**names) for a in setting.argv]


def setting_argv(plan: Plan, regime: str, ref: list[str], setting: Setting, lr: float, target: float) -> list[str]:
    """A setting's arguments: the reference's at `lr`, its own, chasing `target` up to chase_factor x the
    reference's local steps (in rounds of the setting's own local steps, if it has its own)."""
    rounds, steps = split_of(ref)
    own = own_argv(setting, rounds, steps)
    own_steps = int(own[own.index("--local-steps") + 1]) if "--local-steps" in own else steps
    most = math.ceil(plan.chase_factor * rounds * steps / own_steps)
    return [
        *base_argv(plan, regime, lr, rounds, steps),
        *own,
        "--target-loss",
        f"{target:.6f}",
        "--max-rounds",
        str(most),
    ]


def family_run(plan: Plan, frame, regime: str, setting: Setting, lr: float) -> dict:
    """A tuning run of a family: its first setting at `lr` and the reference's tuning split, the tuning seed."""
    _, rounds, steps = chosen_split(plan, frame, regime)
    argv = [*base_argv(plan, regime, lr, rounds, steps), *own_argv(setting, rounds, steps)]
    return run(regime, TUNING, setting.name, setting.family, plan.tuning_seed, argv)


def family_lr(plan: Plan, frame, regime: str, first: Setting, ref: list[str]) -> tuple[float | None, list]:
    """(the family's best lr, []) or (None, the tuning runs still needed): a grid a factor 2 apart around the
    reference's lr x lr_scale, at the reference's tuning split, widened past an edge holding the best."""
    centre = float(ref[ref.index("--lr") + 1]) * first.lr_scale
    ks = list(range(-(plan.lever_lrs // 2), plan.lever_lrs - plan.lever_lrs // 2))
    while True:
        runs = {k: family_run(plan, frame, regime, first, centre * 2.0**k) for k in ks}
        needed = missing(frame, list(runs.values()))
        if needed:
            return None, needed
        commands = {json.dumps(r["argv"]): k for k, r in runs.items()}
        rows = rows_of(frame, regime, first.name)
        rows = rows[rows.command.isin(commands) & (rows.seed == plan.tuning_seed)]
        best = commands[fewest_bytes(rows, HEADLINE * rows.final_val_loss.min()).command]
        if best not in (ks[0], ks[-1]) or len(ks) >= plan.max_lrs:
            return float(runs[best]["lr"]), []
        ks = [ks[0] - 1, *ks] if best == ks[0] else [*ks, ks[-1] + 1]


def families(plan: Plan, regime: str) -> dict[str, list[Setting]]:
    """The regime's settings by family, in the table's order (a family's first setting is the one tuned)."""
    out: dict[str, list[Setting]] = {}
    for setting in plan.settings:
        if regime in setting.regimes:
            out.setdefault(setting.family, []).append(setting)
    return out


def goals(plan: Plan, frame, regime: str, ref: list[str]) -> dict:
    """L* at each factor (test) and the validation target settings stop at ("val": 1.01 x the reference's mean
    final validation loss): validation decides when a run stops, test what is reported."""
    rows = rows_of(frame, regime, REFERENCE, ref)
    return {**targets(plan, frame, regime), "val": HEADLINE * float(rows.final_val_loss.mean())}


def top_settings(plan: Plan, frame, regime: str, runs: list[dict], target: float) -> list[str]:
    """The `top` settings with the fewest mean total bytes to `target`, among those whose every seed reached it."""
    means = {}
    for name in dict.fromkeys(r["setting"] for r in runs):
        argvs = {json.dumps(r["argv"]) for r in runs if r["setting"] == name}
        rows = frame[(frame.regime == regime) & (frame.setting == name) & frame.command.isin(argvs)]
        reached = [bytes_to(row, target) for _, row in rows.iterrows()]
        if len(rows) >= len(plan.seeds) and all(reached):
            means[name] = sum(b[1] + b[2] for b in reached) / len(reached)
    return sorted(means, key=means.get)[: plan.top]


def setting_runs(plan: Plan, frame, regime: str) -> tuple[list[dict], list[str]]:
    """Stages 3 and 4 of a regime: (the runs that can run now, what waits and for what)."""
    ref, needed = reference_runs(plan, frame, regime)
    if ref is None or missing(frame, needed):
        return missing(frame, needed), [f"{regime}: lever tuning and settings wait for the reference"]
    goal, todo, runs, waiting = goals(plan, frame, regime, ref), [], [], []
    for family, members in families(plan, regime).items():
        lr, tuning = family_lr(plan, frame, regime, members[0], ref)
        if lr is None:
            todo += tuning
            waiting.append(f"{regime}: {family} settings wait for their lr")
            continue
        for setting in members:
            argv = setting_argv(plan, regime, ref, setting, lr, goal["val"])
            runs += [run(regime, SETTING, setting.name, family, s, argv) for s in plan.seeds]
    todo += missing(frame, runs)
    if todo or waiting:
        return todo, [*waiting, *([f"{regime}: more seeds for the best {plan.top} wait for every setting"])]
    best = top_settings(plan, frame, regime, runs, goal[HEADLINE])
    extra = [{**r, "seed": s} for r in runs if r["setting"] in best and r["seed"] == plan.seeds[0]
             for s in plan.top_seeds]  # fmt: skip
    return missing(frame, extra), []


def planned(plan: Plan, frame) -> tuple[list[dict], list[str]]:
    """Every regime's runs that can run now (in order) and the stages still waiting; ([], []) when complete."""
    todo, waiting = [], []
    for regime in plan.regimes:
        runs, waits = setting_runs(plan, frame, regime)
        todo += runs
        waiting += waits
    return todo, waiting


def chases(command: str, target: str) -> bool:
    """True when a CSV command (JSON) chases this validation target (its --target-loss text)."""
    argv = json.loads(command)
    return "--target-loss" in argv and argv[argv.index("--target-loss") + 1] == target


def superseded(plan: Plan, frame):
    """The frame with rows measured against a reference the plan no longer chooses marked SUPERSEDED (kept: their
    seconds are the study's): reference-stage rows of another command, setting rows chasing another target."""
    frame = frame.copy()
    for regime in plan.regimes:
        ref, _ = reference_argv(plan, frame, regime)
        if ref is None:
            continue
        mine = frame.regime == regime
        stale = mine & (frame.stage == REFERENCE_STAGE) & (frame.command != json.dumps(ref))
        if targets(plan, frame, regime) is not None:
            goal = f"{goals(plan, frame, regime, ref)['val']:.6f}"
            stale |= mine & (frame.stage == SETTING) & ~frame.command.map(lambda c, g=goal: chases(c, g))
        frame.loc[stale, "stage"] = SUPERSEDED
    return frame
