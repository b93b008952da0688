"""The compression study: total (down + up) bytes to reach a target test loss, lever by lever, in two regimes.

A staged plan (fedbandwidth/compress/study_plan.py), derived each time from what the CSV holds, so a rerun
continues where it stopped. Per regime:
  1. tuning     float32 FedAvg at >= 4 learning rates x 2 splits of the same local-step budget (rounds x local
                steps), widened past an edge holding the best, seed 0, on the validation split; the reference
                is the one reaching 1.01 x the best final validation loss with the fewest total bytes, among
                the runs still at or below it after their last round;
  2. reference  that lr and split, trained until its validation loss has flattened (< 1% better over its last
                quarter of rounds, or rounds doubled twice); when that grew the budget, the grid of 1 again at
                the grown budget, whose best is the reference; at seeds 0-4; L* = 1.01 (1.02, 1.05) x its mean
                final test loss (rows against an earlier reference are kept, marked superseded);
  3. tuning     each lever family as the reference was tuned (its tuning split, seed 0, fewest total bytes to
                1.01 x the grid's best final validation loss) at >= 3 learning rates around the reference's
                (widened past an edge);
  4. setting    every setting of SETTINGS at its family's lr, seeds 0-2, stopping at the validation target
                (1.01 x the reference's mean final validation loss) or 1.5 x the reference's rounds; bytes
                to L* are read from each run's test curve; then seeds 3, 4 for the best 3 of the regime.
Each run is `fedbandwidth train ... --seed S --json` in its own process; its row (up / down / total bytes to
each target, validation and test losses, per-round timing) goes into results/compression_study.csv. A setting
whose arguments this checkout's `train` does not accept yet is left out (and named). --minutes M starts no
run after M minutes: run it in chunks. After each chunk it writes results/compression_summary.json (with
"complete", "pending" and the command that resumes) and the plots.

    .venv/bin/python benchmarks/compression_study.py --minutes 12   # one chunk; repeat until it prints "done"
    .venv/bin/python benchmarks/compression_study.py --markdown     # the findings table of README, from the CSV
    .venv/bin/python benchmarks/compression_study.py --summary && ... --readme  # summary, plots, READMEs' tables
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fedbandwidth.compress.study_levers import planned, superseded
from fedbandwidth.compress.study_plan import Plan, Setting
from fedbandwidth.compress.study_rows import COLUMNS, csv_row

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CSV_PATH = RESULTS / "compression_study.csv"
SUMMARY_PATH = RESULTS / "compression_summary.json"
RESUME = ".venv/bin/python benchmarks/compression_study.py --minutes 12  # repeat until it prints done"
RUN_TIMEOUT = 3600  # seconds before a run is presumed hung
BOTH, WARM = ("scratch", "warm-start"), ("warm-start",)  # adapters fine-tune a pre-trained model: warm start only
ADAPTER_LR = 10.0  # adapters' lr grid is centred on 10 x the reference's
ZEROTH_LR = 1.28  # the first pass searched 10 rates from 0.01 x (retired/): its best was 1.28 x the reference's lr
# Every setting of the study, as `fedbandwidth train` arguments added to the reference's (its lr, rounds, local
# steps; "{R}"/"{S}" are the reference's rounds / local steps, "{R4}" a quarter of them, "{S4}" 4 x as many).
# A family shares one learning rate, tuned on its first setting. The DGC, downlink-delta and zeroth-order rows
# use helper i16levers' flags (issue 16: delta+dgc:D, --down-codec delta+..., --zeroth-seeds K); the study
# leaves out any row this checkout's `train` does not accept yet, and names it.
SETTINGS = (
    Setting("int4 per block of 64", "bits", ("--up-codec", "delta+int4:64"), BOTH),
    Setting("int8", "bits", ("--up-codec", "int8"), BOTH),
    Setting("fp16", "bits", ("--up-codec", "fp16"), BOTH),
    Setting("top-k 1% + error feedback", "top-k", ("--up-codec", "delta+topk:0.01"), BOTH),
    Setting("DGC top-k 1%", "dgc", ("--up-codec", "delta+dgc:0.01"), BOTH),
    Setting("DGC top-k 0.1%", "dgc", ("--up-codec", "delta+dgc:0.001"), BOTH),
    Setting("low rank 4 + int4", "low rank", ("--up-codec", "delta+lowrank:4+int4"), BOTH),
    Setting("low rank 16 + int4", "low rank", ("--up-codec", "delta+lowrank:16+int4"), BOTH),
    Setting("down int4 per block of 64", "downlink", ("--down-codec", "int4:64"), BOTH),
    Setting("down int8", "downlink", ("--down-codec", "int8"), BOTH),
    Setting("down fp16", "downlink", ("--down-codec", "fp16"), BOTH),
    Setting("down global delta int4 + up int4", "downlink",
            ("--down-codec", "delta+int4:64", "--up-codec", "delta+int4:64"), BOTH),
    Setting("down global delta int2 + up int2", "downlink",  # 3 bits a value with the blocks' scale and min
            ("--down-codec", "delta+int2:64", "--up-codec", "delta+int2:64"), BOTH),
    Setting("frozen input embedding", "frozen", ("--up-codec", "layers:-gpt_neox.embed_in.weight"), BOTH),
    Setting("fraction 0.4", "fraction", ("--fraction", "0.4"), BOTH),
    Setting("10 clients, fraction 0.5", "fraction", ("--supernodes", "10", "--fraction", "0.5"), BOTH),
    Setting("down global delta int4 + up int4, 10 clients, fraction 0.5", "downlink",  # a node catches up
            ("--down-codec", "delta+int4:64", "--up-codec", "delta+int4:64", "--supernodes", "10", "--fraction", "0.5"),
            BOTH),  # with one delta from the model it holds, however many rounds it missed: those bytes count
    Setting("fewer rounds x more local steps", "rounds", ("--rounds", "{R4}", "--local-steps", "{S4}"), BOTH),
    Setting("down global delta int4 + up int4, fewer rounds x more local steps", "rounds",  # the lesson's two
            ("--down-codec", "delta+int4:64", "--up-codec", "delta+int4:64", "--rounds", "{R4}", "--local-steps",
             "{S4}"), BOTH),  # levers at once: smaller messages and fewer rounds
    Setting("down global delta int2 + up int2, fewer rounds x more local steps", "rounds",
            ("--down-codec", "delta+int2:64", "--up-codec", "delta+int2:64", "--rounds", "{R4}", "--local-steps",
             "{S4}"), BOTH),
    Setting("adapters r16 (ffa) + int4 per block of 64", "adapters (ffa)",
            ("--lora-rank", "16", "--up-codec", "delta+int4:64"), WARM, ADAPTER_LR),
    Setting("adapters r16 (ffa) + int8", "adapters (ffa)", ("--lora-rank", "16", "--up-codec", "int8"), WARM,
            ADAPTER_LR),
    Setting("adapters r16 (ffa)", "adapters (ffa)", ("--lora-rank", "16"), WARM, ADAPTER_LR),
    Setting("adapters r4 (ffa)", "adapters (ffa)", ("--lora-rank", "4"), WARM, ADAPTER_LR),
    Setting("adapters r16 (fedit)", "adapters (fedit)", ("--lora-rank", "16", "--lora-rule", "fedit"), WARM,
            ADAPTER_LR),
    Setting("zeroth-order FedKSeed K=4096", "zeroth-order", ("--zeroth-seeds", "4096"), BOTH, ZEROTH_LR),
)  # fmt: skip
PLAN = Plan(
    regimes={"scratch": ("train", "--preset", "scratch"), "warm-start": ("train", "--preset", "warm-start")},
    tuning_lrs={"scratch": (1e-3, 2e-3, 4e-3, 8e-3), "warm-start": (2.5e-4, 5e-4, 1e-3, 2e-3)},
    splits=((20, 10), (10, 20)),  # 200 local steps a client either way (at 100, every lr was within 1%: noise)
    settings=SETTINGS,
)
SMOKE = Plan(  # --smoke: the same machinery on train's ci preset, results under build/ (a check, not a study)
    regimes={"ci": ("train", "--preset", "ci")},
    tuning_lrs={"ci": (1e-3, 2e-3, 4e-3, 8e-3)},
    splits=((2, 2), (1, 4)),
    settings=(Setting("int8", "bits", ("--up-codec", "int8"), ("ci",)),),
)


def use_results(folder: Path) -> None:
    """Read and write the study's files in `folder` instead of benchmarks/results/ (--smoke)."""
    global RESULTS, CSV_PATH, SUMMARY_PATH
    RESULTS, CSV_PATH, SUMMARY_PATH = folder, folder / CSV_PATH.name, folder / SUMMARY_PATH.name


def refusal(argv: list[str]) -> str | None:
    """Why this checkout's `fedbandwidth train` refuses `argv` (its one-line error), or None if it accepts it."""
    from fedbandwidth.checks import ConfigError
    from fedbandwidth.cli import build_parser, command

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            command("train").config_from_args(build_parser().parse_args(argv))
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    except ConfigError as err:
        return str(err)
    return None


def accepted_plan(plan: Plan = PLAN) -> tuple[Plan, dict[str, str]]:
    """The plan without the settings `train` does not accept yet, and why each was left out."""
    left_out = {}
    for s in plan.settings:
        argv = [*plan.regimes[s.regimes[0]], *(a.format(R=4, S=4, R4=1, S4=16) for a in s.argv)]
        if reason := refusal(argv):
            left_out[s.name] = reason
    settings = tuple(s for s in plan.settings if s.name not in left_out)
    return Plan(**{**plan.__dict__, "settings": settings}), left_out


def read_frame():
    """The CSV's runs (an empty frame with the columns when there are none)."""
    import pandas as pd

    return pd.read_csv(CSV_PATH) if CSV_PATH.exists() else pd.DataFrame(columns=COLUMNS)


def current_frame(plan: Plan):
    """The CSV's runs, those measured against a reference the plan no longer chooses marked superseded (and so
    written back, named)."""
    frame = read_frame()
    marked = superseded(plan, frame)
    if not marked.stage.equals(frame.stage):
        changed = marked[marked.stage != frame.stage]
        print(f"superseded: {len(changed)} row(s) of {sorted(set(changed.setting))}", flush=True)
        write_frame(marked)
    return marked


def write_frame(frame) -> None:
    """The CSV with every row's bytes to its regime's targets (recomputed: they depend on the reference)."""
    from fedbandwidth.compress.study import study_frame

    study_frame(frame).to_csv(CSV_PATH, index=False)


def run_train(argv: list[str], seed: int) -> dict:
    """`fedbandwidth ARGV --seed SEED --json` in a fresh process; its JSON summary (RuntimeError if it fails)."""
    out = RESULTS / "runs" / "last"
    command = [sys.executable, "-m", "fedbandwidth", *argv, "--seed", str(seed), "--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} --seed {seed} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def sweep(plan: Plan, minutes: float, regime: str | None = None, setting: str = "") -> bool:
    """Run what the plan needs next (of `regime` only, and of settings whose name holds `setting`, if given) until
    `minutes` have passed (a run that fails is skipped for this chunk, and named); True when nothing is left."""
    import pandas as pd

    started, failed = time.monotonic(), []
    while True:
        frame = current_frame(plan)
        todo = [r for r in planned(plan, frame)[0] if (r["argv"], r["seed"]) not in failed]
        todo = [r for r in todo if regime in (None, r["regime"]) and setting in r["setting"]]
        if not todo:
            return not failed and not planned(plan, frame)[0]
        if time.monotonic() - started > 60 * minutes:
            print(f"{len(todo)}+ runs left; run again to resume", flush=True)
            return False
        r = todo[0]
        print(f"[{r['regime']} / {r['stage']} / {r['setting']} / lr {r['lr']:g} / seed {r['seed']}] "
              f"{' '.join(r['argv'])}", flush=True)  # fmt: skip
        try:
            row = csv_row(r, run_train(r["argv"], r["seed"]))
        except (RuntimeError, subprocess.TimeoutExpired) as err:  # the others go on; a rerun retries it
            print(f"  FAILED: {err}", flush=True)
            failed.append((r["argv"], r["seed"]))
            continue
        write_frame(pd.concat([frame, pd.DataFrame([row], columns=COLUMNS)], ignore_index=True))
        print(f"  up {row['up_bytes']:,} B, down {row['down_bytes']:,} B, rounds {row['rounds_run']}, "
              f"test loss {row['final_test_loss']:.4f}, {row['run_seconds']} s", flush=True)  # fmt: skip


def task_block() -> dict:
    """The task's record (corpus, tokenizer, vocabulary, message) from the package; {} until it has one."""
    try:
        from fedbandwidth.compress.task import task_record
    except ImportError:
        return {}
    return task_record()


def warm_spec():
    """The warm-start preset's pre-training spec (where `train` looks for its checkpoint: build/warm-start/)."""
    from fedbandwidth.compress.training import PRESETS, TrainConfig

    return TrainConfig(**PRESETS["warm-start"]).pretraining


def pinned_checkpoint() -> Path:
    """The warm-start checkpoint every warm-start row of the study trained from, kept with the results."""
    return RESULTS / "warm_start" / warm_spec().path.name


def sha256_of(path: Path) -> str:
    """A file's sha256 (hex)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin_checkpoint(built: Path, pinned: Path) -> str:
    """Make the checkpoint `train` loads (`built`) the study's pinned one, its curve (.json) with it: copied in when
    missing or different; the one built here is pinned when none is yet. Its sha256. (Pre-training is repeatable
    on one CPU model only: its float kernels differ, and three machines of this kind stopped it at 1,500, 1,700 and
    1,900 steps; rows trained from two checkpoints would be two tasks.)"""
    source, target = (built, pinned) if not pinned.exists() else (pinned, built)
    if not target.exists() or sha256_of(target) != sha256_of(source):
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".npz", ".json"):
            shutil.copyfile(source.with_suffix(suffix), target.with_suffix(suffix))
        print(f"warm start: {source} -> {target}", flush=True)
    return sha256_of(pinned)


def ready_warm_start() -> str:
    """Pin the warm start before its runs: the pinned checkpoint into build/, or (none pinned yet) one built here."""
    from fedbandwidth.compress import warm

    spec = warm_spec()
    if not pinned_checkpoint().exists():
        warm.curve(spec)  # pre-trains once (minutes) if build/ has none
    return pin_checkpoint(spec.path, pinned_checkpoint())


def warm_start_block() -> dict:
    """The pinned warm start's pre-training (checkpoint, sha256, steps, losses, flattened, seconds); {} if none."""
    pinned = pinned_checkpoint()
    if not pinned.exists():
        return {}
    curve = json.loads(pinned.with_suffix(".json").read_text())
    return {"checkpoint": pinned.name, "sha256": sha256_of(pinned), **curve}


def pending(plan: Plan, frame, left_out: dict[str, str]) -> list[dict]:
    """What the study has still to run: the runs it can start now, the stages waiting, the settings left out."""
    todo, waiting = planned(plan, frame)
    runs = [{"regime": r["regime"], "stage": r["stage"], "setting": r["setting"], "seed": r["seed"],
             "command": r["argv"]} for r in todo]  # fmt: skip
    return [*runs, *({"waiting": w} for w in waiting), *({"left out": k, "why": v} for k, v in left_out.items())]


def write_results(plan: Plan, left_out: dict[str, str]) -> dict:
    """compression_summary.json and the plots from the CSV so far."""
    from fedbandwidth.compress.study import study_summary

    frame = current_frame(plan)
    todo = pending(plan, frame, left_out)
    summary = {**study_summary(frame, task_block()), "warm_start": warm_start_block()}
    summary.update(complete=not todo, pending=todo, resume=RESUME)
    SUMMARY_PATH.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["regimes"]:
        write_plots(frame)
    if summary["warm_start"]:
        write_pretraining_plot(summary["warm_start"])
    for regime, result in summary["regimes"].items():
        print(f"{regime}: L* {result['targets']}, best total {result['best_total']}, best up {result['best_up']}")
    return summary


def write_plots(frame) -> None:
    """results/compression_study.png: per regime, test loss vs total bytes and bytes to L* with error bars."""
    import matplotlib

    matplotlib.use("Agg")
    from fedbandwidth.compress.study_plots import study_figure

    study_figure(frame).savefig(RESULTS / "compression_study.png", dpi=110)


def write_pretraining_plot(curve: dict) -> None:
    """results/warm_start_pretraining.png: the warm start's loss curve, where it stopped and why."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedbandwidth.compress.study_plots import plot_pretraining

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    plot_pretraining(curve, ax=ax)
    fig.savefig(RESULTS / "warm_start_pretraining.png", dpi=110)


def print_markdown() -> None:
    """The findings table for README and benchmarks/README (markdown), then what is pending and how to resume."""
    from fedbandwidth.compress.study import study_summary
    from fedbandwidth.compress.study_tables import findings_markdown

    frame = read_frame()
    print("\n".join(findings_markdown(study_summary(frame), frame)))
    plan, left_out = accepted_plan()
    todo = pending(plan, frame, left_out)
    print(f"\nPending: {len(todo)} item(s); resume with `{RESUME.split('  #')[0]}`." if todo else "\nComplete.")


def update_readmes() -> None:
    """Write the findings table from the CSV into README.md and benchmarks/README.md, in place."""
    import benchlib  # benchmarks/, next to this script
    from fedbandwidth.compress.study import study_summary
    from fedbandwidth.compress.study_tables import findings_markdown

    frame = read_frame()
    table = findings_markdown(study_summary(frame), frame)
    for readme in (REPO / "README.md", REPO / "benchmarks" / "README.md"):
        readme.write_text(benchlib.replace_table(readme.read_text(), table))
        print(f"{readme.relative_to(REPO)}: findings table written ({len(table) - 2} rows)")


def main() -> None:
    """Run (a chunk of) the study; write the summary and plots from what the CSV holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float("inf"), help="start no run after this many minutes")
    parser.add_argument("--markdown", action="store_true", help="print the findings table (markdown) and exit")
    parser.add_argument("--summary", action="store_true", help="write the summary and plots from the CSV and exit")
    parser.add_argument("--readme", action="store_true", help="write the findings table into the READMEs and exit")
    parser.add_argument("--smoke", action="store_true", help="the ci preset, results in build/study-smoke/")
    parser.add_argument("--regime", help="run only this regime's pending runs (the others wait)")
    parser.add_argument("--setting", default="", help="run only the settings whose name holds this text")
    args = parser.parse_args()
    if args.smoke:
        use_results(REPO / "build" / "study-smoke")
    if args.markdown:
        return print_markdown()
    if args.readme:
        return update_readmes()
    RESULTS.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)  # the warm-start checkpoint is cached under build/ here
    plan, left_out = accepted_plan(SMOKE if args.smoke else PLAN)
    for name, why in left_out.items():
        print(f"left out until train accepts it: {name} ({why})")
    if args.regime is not None and args.regime not in plan.regimes:
        parser.error(f"--regime: unknown regime {args.regime!r}; known: {', '.join(plan.regimes)}")
    if not args.summary:
        if "warm-start" in plan.regimes and args.regime in (None, "warm-start"):
            print(f"warm start: {pinned_checkpoint().name}, sha256 {ready_warm_start()}", flush=True)
        sweep(plan, args.minutes, args.regime, args.setting)
    if not write_results(plan, left_out)["pending"]:
        print("done")


if __name__ == "__main__":
    main()
