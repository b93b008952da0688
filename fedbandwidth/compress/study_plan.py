"""The compression study as a staged plan, derived from the runs its CSV already holds (so a rerun resumes).

Per regime, four stages, each waiting for the one before:
1. tuning: float32 FedAvg at every learning rate x every split of the same local-step budget (rounds x
   local steps), seed 0; while the best split is at an edge of the grid (the fewest rounds, or the most), the
   next split past it joins the grid at every lr (up to `max_splits`): the split is tuned as the lr is, since
   more local steps a round is the lesson's second lever and a reference at a poor split credits every lever
   with what the split gives; then, while the best lr is at an edge of those tried at the best split, the next
   lr past it (a factor 2) at that split, up to `max_lrs`. The validation target is 1.01 x the lowest final
   validation loss of these runs;
   the reference is the run that reaches it with the fewest total (up + down) bytes among those that still
   meet it after their last round (L* is made from the reference's final loss: a run that dips below the
   target and drifts back up, as the warm start's fine-tuning does at lr 1e-3, would make L* a loss it
   passed in round 1).
2. reference: the chosen lr and split until its validation loss has flattened (< 1% better over its last
   quarter of rounds; else seed 0 again at twice the rounds, at most `max_doublings` times; when twice the
   rounds end < 1% lower, or higher, the shorter run is the flat one). When that grew the local-step budget,
   the grid of stage 1 again at the grown budget (every lr x its rounds at the tuned local steps and the tuned
   rounds at as many more local steps, widened past an edge as in stage 1): the reference is its best, at
   every reference seed. L* = factor x the mean final *test* loss of these runs (1.01, 1.02, 1.05). Rows
   measured against a reference the plan no longer chooses are marked "superseded"
   (`study_levers.superseded`).
3. lever tuning: each lever family as the reference was tuned: its first setting at the reference's tuning
   split (the rounds x local steps chosen in stage 1), at learning rates around the reference's (x its
   lr_scale), a factor 2 apart, seed 0; the best is the one reaching 1.01 x the grid's lowest final
   validation loss with the fewest total bytes; while it is at an edge of the grid, one more rate beyond
   it, up to `max_lrs`.
4. settings: every setting at its family's best lr, at `seeds`, with `--target-loss` the validation target
   (validation decides when a run stops; its bytes to L* are read from its test curve); then the best `top`
   settings by total bytes to L* (every seed reaching it) at `top_seeds` too.
Stages 1 and 2 are here; stages 3 and 4, and the whole plan's runs (`planned`), in study_levers.py.
A run is done when the CSV has a row of the same regime, setting, command and seed (whatever its stage):
the tuning run of the chosen split is the reference's first flattening run if that split flattened already.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .study_rows import HEADLINE, TARGET_FACTORS, bytes_to, flattened, gained_little, losses_of

REFERENCE = "reference"  # the setting (and family) name of float32 FedAvg
TUNING, REFERENCE_STAGE, SETTING = "tuning", "reference", "setting"  # the stages a row records
FLATTENING = "flattening"  # seed 0 at twice the rounds, to see whether the reference has flattened
SUPERSEDED = "superseded"  # a reference or setting row measured against a reference the plan no longer chooses


@dataclass(frozen=True)
class Setting:
    """One lever setting: `fedbandwidth train` arguments added to the regime's, in a family that shares an lr."""

    name: str  # its name in the CSV, the summary and the plots
    family: str  # settings of a family share one tuned learning rate
    argv: tuple[str, ...]  # extra train arguments; "{R}", "{S}", "{R4}", "{S4}": the reference's rounds, steps, /4, x4
    regimes: tuple[str, ...]  # the regimes it runs in
    lr_scale: float = 1.0  # its family's lr grid is centred on the reference's lr x this


@dataclass(frozen=True)
class Plan:
    """What the study runs: regimes (train arguments), the tuning grid, the settings, the seeds."""

    regimes: dict[str, tuple[str, ...]]  # name -> `fedbandwidth train` arguments
    tuning_lrs: dict[str, tuple[float, ...]]  # regime -> the reference's learning rates (>= 4)
    splits: tuple[tuple[int, int], ...]  # (rounds, local steps) of the same budget (>= 2)
    settings: tuple[Setting, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)  # every setting
    reference_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    top_seeds: tuple[int, ...] = (3, 4)  # more seeds for the best `top` settings of a regime
    top: int = 3
    lever_lrs: int = 3  # learning rates of a family's first grid
    max_lrs: int = 10  # at most this many per family (zeroth-order's best sat at the top of 5, then of 8: 1.28e-3)
    max_doublings: int = 2  # the reference's rounds double at most this often while not flattened
    max_splits: int = 6  # the splits widen past an edge holding the best up to this many
    chase_factor: float = 1.5  # settings chase the validation target for up to this x the reference's rounds
    tuning_seed: int = 0


def lr_text(lr: float) -> str:
    """A learning rate as train's argument (3 significant digits: the same text for the same rate)."""
    return f"{lr:.3g}"


def run(regime: str, stage: str, setting: str, family: str, seed: int, argv: list[str]) -> dict:
    """One planned run (its lr is read back from the argv)."""
    lr = float(argv[argv.index("--lr") + 1])
    return {"regime": regime, "stage": stage, "setting": setting, "family": family, "seed": seed, "lr": lr,
            "argv": argv}  # fmt: skip


def rows_of(frame, regime: str, setting: str, argv: list[str] | None = None):
    """The CSV rows of a setting of a regime (with exactly this command, if given), by seed."""
    rows = frame[(frame.regime == regime) & (frame.setting == setting)]
    if argv is not None:
        rows = rows[rows.command == json.dumps(argv)]
    return rows.sort_values("seed")


def base_argv(plan: Plan, regime: str, lr: float, rounds: int, steps: int) -> list[str]:
    """The regime's arguments with a learning rate and a split."""
    return [*plan.regimes[regime], "--lr", lr_text(lr), "--rounds", str(rounds), "--local-steps", str(steps)]


def tuning_runs(plan: Plan, regime: str, splits=None) -> list[dict]:
    """Stage 1: float32 FedAvg at every learning rate and split (the plan's, or these), one seed."""
    return [
        run(regime, TUNING, REFERENCE, REFERENCE, plan.tuning_seed, base_argv(plan, regime, lr, r, s))
        for lr in plan.tuning_lrs[regime]
        for r, s in splits or plan.splits
    ]


def wider_split(splits: list[tuple[int, int]], best: tuple[int, int]) -> tuple[int, int] | None:
    """The next split of the same local-step budget past the edge holding the best (fewer rounds of more local
    steps, or more of fewer), dividing the budget exactly; None when the best is inside the grid or at 1 round."""
    budget, rounds = best[0] * best[1], sorted(r for r, _ in splits)
    if best[0] == rounds[0] > 1:
        fewer = next(r for r in range(best[0] // 2, 0, -1) if budget % r == 0)
        return fewer, budget // fewer
    more = next((r for r in range(2 * best[0], budget + 1) if budget % r == 0), None)
    return (more, budget // more) if best[0] == rounds[-1] and more else None


def missing(frame, runs: list[dict]) -> list[dict]:
    """The runs that have no row yet (same regime, setting, command, seed)."""
    done = {(r.regime, r.setting, r.command, int(r.seed)) for r in frame.itertuples()}
    return [r for r in runs if (r["regime"], r["setting"], json.dumps(r["argv"]), r["seed"]) not in done]


def fewest_bytes(rows, target: float):
    """The row reaching `target` on validation with the fewest total bytes (ties: lower final validation loss);
    the lowest final validation loss when none reaches it."""
    reached = [(sum(b[1:]), row.final_val_loss, i) for i, row in rows.iterrows() if (b := bytes_to(row, target, "val"))]
    if reached:
        return rows.loc[min(reached)[2]]
    return rows.loc[rows.final_val_loss.idxmin()]


def best_tuning_run(plan: Plan, frame, regime: str, runs: list[dict]):
    """The tuning row that is the reference among `runs` (every one done): fewest bytes to 1.01 x the grid's best
    final validation loss, among the runs still at or below it after their last round."""
    rows = rows_of(frame, regime, REFERENCE)
    rows = rows[rows.command.isin([json.dumps(r["argv"]) for r in runs]) & (rows.seed == plan.tuning_seed)]
    target = HEADLINE * rows.final_val_loss.min()
    ended = rows[rows.final_val_loss <= target]  # L* is the reference's *final* loss: it must end at the target
    return fewest_bytes(ended, target)


def wider_lr(lrs: list[float], best: float) -> float | None:
    """The next learning rate past the edge of `lrs` holding the best (a factor 2 out), or None inside them."""
    texts = sorted(float(lr_text(lr)) for lr in lrs)
    if float(lr_text(best)) == texts[-1]:
        return 2 * texts[-1]
    return texts[0] / 2 if float(lr_text(best)) == texts[0] else None


def grid_choice(plan: Plan, frame, regime: str, splits: list[tuple[int, int]]):
    """((lr, rounds, local steps) of the best float32 run, []) or (None, the runs still needed): the plan's lrs x
    `splits`; while the best split is at an edge, the next split past it at every lr (up to `max_splits`); then
    while the best lr is at an edge of those tried at the best split, the next lr past it there (up to `max_lrs`)."""
    splits, extra = list(splits), []  # extra: (lr, rounds, steps) past the lr grid's edge
    while True:
        runs = tuning_runs(plan, regime, splits)
        runs += [
            run(regime, TUNING, REFERENCE, REFERENCE, plan.tuning_seed, base_argv(plan, regime, *e)) for e in extra
        ]
        if needed := missing(frame, runs):
            return None, needed
        best = best_tuning_run(plan, frame, regime, runs)
        split = (int(best.rounds), int(best.local_steps))
        if (wider := wider_split(splits, split)) and len(splits) < plan.max_splits:
            splits.append(wider)
            continue
        tried = [*plan.tuning_lrs[regime], *(lr for lr, *at in extra if tuple(at) == split)]
        if (lr := wider_lr(tried, float(best.lr))) is None or len(tried) >= plan.max_lrs:
            return (float(best.lr), *split), []
        extra.append((lr, *split))


def reference_tuning(plan: Plan, frame, regime: str) -> tuple[tuple[float, int, int] | None, list[dict]]:
    """Stage 1: ((lr, rounds, local steps) of the tuning grid's best, []) or (None, the tuning runs still needed)."""
    return grid_choice(plan, frame, regime, list(plan.splits))


def chosen_split(plan: Plan, frame, regime: str) -> tuple[float, int, int] | None:
    """(lr, rounds, local steps) of stage 1's best tuning run (families tune at it); None until stage 1 is done."""
    return reference_tuning(plan, frame, regime)[0]


def flat_budget(plan: Plan, frame, regime: str, lr: float, rounds: int, steps: int):
    """(the arguments at the rounds where this lr and split flattened, or at the most doublings allowed, []) or
    (None, the run still needed to know them)."""
    shorter = None  # (argv, final validation loss) of the run at half these rounds
    for doubling in range(plan.max_doublings + 1):
        argv = base_argv(plan, regime, lr, rounds * 2**doubling, steps)
        rows = rows_of(frame, regime, REFERENCE, argv)
        rows = rows[rows.seed == plan.tuning_seed]
        if rows.empty:
            return None, [run(regime, FLATTENING, REFERENCE, REFERENCE, plan.tuning_seed, argv)]
        val = losses_of(rows.iloc[0], "val")
        if shorter and gained_little(shorter[1], val[-1]):  # twice the rounds gained < 1% (or lost): flat already
            return shorter[0], []
        if flattened(val) or doubling == plan.max_doublings:
            return argv, []
        shorter = argv, val[-1]
    raise AssertionError("unreachable")


def budget_splits(tuned: tuple[int, int], rounds: int) -> list[tuple[int, int]]:
    """Two splits of the budget the reference grew to (`rounds` of the tuned split's local steps): those rounds,
    and the tuned split's rounds with as many more local steps."""
    tuned_rounds, steps = tuned
    return [(rounds, steps), (tuned_rounds, rounds * steps // tuned_rounds)]


def reference_argv(plan: Plan, frame, regime: str) -> tuple[list[str] | None, list[dict]]:
    """(the reference's arguments, []) or (None, the runs that decide them): stage 1's best, its rounds doubled
    until flat; when that grew the budget, the grid again at the grown budget (lrs x its splits, widened as in
    stage 1), since the best split of a budget need not be the best of four times it (measured here: scratch's
    8 x 100 steps at lr 2e-3 took 4.00x the total bytes of 2 x 400 at 1e-3 to its L*)."""
    chosen, needed = reference_tuning(plan, frame, regime)
    if chosen is None:
        return None, needed
    lr, rounds, steps = chosen
    argv, needed = flat_budget(plan, frame, regime, lr, rounds, steps)
    if argv is None or split_of(argv)[0] == rounds:
        return argv, needed
    best, needed = grid_choice(plan, frame, regime, budget_splits((rounds, steps), split_of(argv)[0]))
    return (None, needed) if best is None else (base_argv(plan, regime, *best), [])


def reference_runs(plan: Plan, frame, regime: str) -> tuple[list[str] | None, list[dict]]:
    """(the reference's arguments, its runs at every reference seed), or (None, the runs that decide it)."""
    argv, needed = reference_argv(plan, frame, regime)
    if argv is None:
        return None, needed
    return argv, [run(regime, REFERENCE_STAGE, REFERENCE, REFERENCE, s, argv) for s in plan.reference_seeds]


def targets(plan: Plan, frame, regime: str) -> dict[float, float] | None:
    """L* at each factor: factor x the reference's mean final test loss; None until every reference seed ran."""
    argv, runs = reference_runs(plan, frame, regime)
    if argv is None or missing(frame, runs):
        return None
    final = rows_of(frame, regime, REFERENCE, argv).final_test_loss.mean()
    return {f: f * float(final) for f in TARGET_FACTORS}


def split_of(argv: list[str]) -> tuple[int, int]:
    """(rounds, local steps) an argument list gives (the last of each wins, as argparse reads them)."""
    rounds = [int(argv[i + 1]) for i, a in enumerate(argv) if a == "--rounds"]
    steps = [int(argv[i + 1]) for i, a in enumerate(argv) if a == "--local-steps"]
    return rounds[-1], steps[-1]
