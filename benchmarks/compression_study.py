"""The compression study: uplink bytes to reach a target loss, lever by lever, in two regimes, over seeds.

Regimes (presets of `fedbandwidth train`; 5 clients x 5 rounds x 20 local AdamW steps, 1,024 held-out
sequences of 32 bytes):
  scratch     pythia-14m's architecture from a random init, IID data;
  warm-start  fine-tuning a checkpoint pre-trained centrally on a quarter of the topics (build/warm-start/,
              built once), clients holding the other topics (non-IID, whole topics per client).
Phase "fixed": each regime's reference (no codec) for its rounds at every seed; L* = 1.01 x their mean
final loss; the reference's bytes to target come from these runs' per-round history. Phase "target": every
other setting at every seed with --target-loss L* and --max-rounds twice the reference's rounds (its loss
at its own rounds, the fixed-rounds table, is read from the same run); last, a few reference seeds again
(how much reruns of a seed differ). Each run is `fedbandwidth train ... --seed S --json` in its own
process; its row is appended to results/compression_study.csv when it ends, and a rerun skips rows that
are there, so the study resumes. --minutes M starts no run after M minutes: run it in chunks.
After each chunk it writes results/compression_summary.json (with "complete" and the "pending" runs) and
results/compression_study.png from the runs so far.

    .venv/bin/python benchmarks/compression_study.py --minutes 12   # one chunk; repeat until it prints "done"
    .venv/bin/python benchmarks/compression_study.py --markdown     # the findings table of README, from the CSV
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fedbandwidth.compress.study import FIXED, REFERENCE, TARGET, target_loss

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CSV_PATH = RESULTS / "compression_study.csv"
SEEDS = (0, 1, 2)
REGIMES = {"scratch": ["train", "--preset", "scratch"], "warm-start": ["train", "--preset", "warm-start"]}
REFERENCE_ROUNDS = 5  # the presets' rounds; settings run up to twice as many
LORA = ["--lr", "1e-2"]  # adapters train with a larger learning rate than whole weights
BOTH = tuple(REGIMES)
WARM = ("warm-start",)
# (name, extra arguments, regimes), in the order they run: whole settings (every seed, scratch then warm start)
# one after another, the most instructive first. Adapters need a pre-trained model: warm start only.
SETTINGS = [
    ("int8", ["--up-codec", "int8"], BOTH),
    ("int4 per block of 64", ["--up-codec", "delta+int4:64"], BOTH),
    ("adapters r4 (ffa)", ["--lora-rank", "4", *LORA], WARM),
    ("adapters r16 (ffa)", ["--lora-rank", "16", *LORA], WARM),
    ("adapters r16 (ffa) + int8", ["--lora-rank", "16", *LORA, "--up-codec", "int8"], WARM),
    ("top-k 1% + error feedback", ["--up-codec", "delta+topk:0.01"], BOTH),
    ("low rank 4 + int4", ["--up-codec", "delta+lowrank:4+int4"], BOTH),
    ("fp16", ["--up-codec", "fp16"], BOTH),
    ("frozen input embedding", ["--up-codec", "layers:-gpt_neox.embed_in.weight"], BOTH),
    ("fraction 0.4", ["--fraction", "0.4"], BOTH),
    ("2 rounds x 50 steps", ["--rounds", "2", "--local-steps", "50"], BOTH),
    ("low rank 16 + int4", ["--up-codec", "delta+lowrank:16+int4"], BOTH),
    ("adapters r16 (fedit)", ["--lora-rank", "16", *LORA, "--lora-rule", "fedit"], WARM),
    ("adapters r16 (ffa) + int4 per block of 64", ["--lora-rank", "16", *LORA, "--up-codec", "delta+int4:64"], WARM),
]
RERUN_SEEDS = {"scratch": (0, 1), "warm-start": (0,)}  # reference seeds run twice: how much reruns differ
RERUNS_AFTER = "adapters r16 (ffa) + int8"  # the setting after which the reruns come
COLUMNS = [
    "regime", "setting", "phase", "seed", "command", "rounds", "max_rounds", "local_steps", "fraction", "up_codec",
    "down_codec", "lora_rank", "lora_rule", "target_loss", "rounds_run", "up_bytes", "down_bytes",
    "initial_eval_loss", "final_eval_loss", "eval_losses", "up_bytes_per_round", "reached_target_round",
    "bytes_to_target", "wall_seconds",
]  # fmt: skip
RESUME = ".venv/bin/python benchmarks/compression_study.py --minutes 12  # repeat until it prints done"
RUN_TIMEOUT = 1800  # seconds before a run is presumed hung


def run_train(argv: list[str], seed: int) -> dict:
    """`fedbandwidth ARGV --seed SEED --json` in a fresh process; its JSON summary (RuntimeError if it fails)."""
    out = RESULTS / "runs" / "last"
    command = [sys.executable, "-m", "fedbandwidth", *argv, "--seed", str(seed), "--out", str(out), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} --seed {seed} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def csv_row(regime: str, setting: str, phase: str, seed: int, argv: list[str], report: dict) -> dict:
    """One CSV row of a finished run (losses at full precision, per-round uplink bytes)."""
    cfg = report["config"]
    return {
        "regime": regime, "setting": setting, "phase": phase, "seed": seed, "command": json.dumps(argv),
        **{k: cfg[k] for k in ("rounds", "max_rounds", "local_steps", "fraction", "up_codec", "down_codec",
                                "lora_rank", "lora_rule", "target_loss")},
        "rounds_run": report["rounds_run"], "up_bytes": report["up_bytes"], "down_bytes": report["down_bytes"],
        "initial_eval_loss": report["initial_eval_loss"], "final_eval_loss": report["final_eval_loss"],
        "eval_losses": " ".join(repr(r["eval_loss"]) for r in report["rounds"]),
        "up_bytes_per_round": " ".join(str(r["up_bytes"]) for r in report["rounds"]),
        "reached_target_round": report["reached_target_round"], "bytes_to_target": report["up_bytes_to_target"],
        "wall_seconds": report["wall_seconds"],
    }  # fmt: skip


def done_keys() -> set[tuple]:
    """(regime, setting, phase, seed) of every run already in the CSV."""
    if not CSV_PATH.exists():
        return set()
    with CSV_PATH.open(newline="") as f:
        return {(r["regime"], r["setting"], r["phase"], int(r["seed"])) for r in csv.DictReader(f)}


def append_row(row: dict) -> None:
    """Append one run to the CSV (header first if the file is new)."""
    new = not CSV_PATH.exists()
    with CSV_PATH.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def planned_runs(targets: dict[str, float]) -> list[tuple]:
    """(regime, setting, phase, seed, argv) of every run, in order: the references (phase fixed) first; once a
    regime's L* is known, each setting at every seed (phase target), with reruns of reference seeds after
    RERUNS_AFTER (how much reruns of a seed differ)."""
    runs = [(r, REFERENCE, FIXED, s, base) for r, base in REGIMES.items() for s in SEEDS]
    chase = {r: ["--target-loss", f"{t:.6f}", "--max-rounds", str(2 * REFERENCE_ROUNDS)] for r, t in targets.items()}
    for name, extra, regimes in SETTINGS:
        runs += [(r, name, TARGET, s, [*REGIMES[r], *extra, *chase[r]]) for r in regimes if r in chase for s in SEEDS]
        if name == RERUNS_AFTER:
            runs += [(r, REFERENCE, TARGET, s, [*REGIMES[r], *chase[r]]) for r in chase for s in RERUN_SEEDS[r]]
    return runs


def known_targets() -> dict[str, float]:
    """L* of every regime whose reference runs (phase fixed) are all in the CSV."""
    import pandas as pd

    if not CSV_PATH.exists():
        return {}
    frame = pd.read_csv(CSV_PATH)
    fixed = frame[(frame.setting == REFERENCE) & (frame.phase == FIXED)]
    return {r: target_loss(frame, r) for r in REGIMES if set(fixed[fixed.regime == r].seed) >= set(SEEDS)}


def sweep(minutes: float) -> bool:
    """Run what is missing until `minutes` have passed; True when every planned run is in the CSV."""
    started = time.monotonic()
    while True:
        todo = [run for run in planned_runs(known_targets()) if run[:4] not in done_keys()]
        if not todo:
            return len(known_targets()) == len(REGIMES)
        if time.monotonic() - started > 60 * minutes:
            print(f"{len(todo)}+ runs left; run again to resume", flush=True)
            return False
        regime, setting, phase, seed, argv = todo[0]
        print(f"[{regime} / {setting} / {phase} / seed {seed}] {' '.join(argv)}", flush=True)
        report = run_train(argv, seed)
        append_row(csv_row(regime, setting, phase, seed, argv, report))
        print(f"  up {report['up_bytes']:,} B, rounds {report['rounds_run']}, loss {report['final_eval_loss']:.4f}, "
              f"to target {report['up_bytes_to_target']}, {report['wall_seconds']} s", flush=True)  # fmt: skip


def pending_runs() -> list[dict]:
    """The planned (regime, setting) pairs with seeds not yet run; settings after an unknown L* are all pending."""
    pending: dict[tuple, list[int]] = {}
    targets = known_targets()
    for regime, setting, phase, seed, _ in planned_runs({r: targets.get(r, 0.0) for r in REGIMES}):
        if (regime, setting, phase, seed) not in done_keys():
            pending.setdefault((regime, setting, phase), []).append(seed)
    return [{"regime": r, "setting": s, "phase": p, "seeds": seeds} for (r, s, p), seeds in pending.items()]


def write_results(complete: bool) -> None:
    """compression_summary.json and the bytes-to-target plot from the CSV so far; print the reruns' spread."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from fedbandwidth.compress.study import rerun_differences, study_summary
    from fedbandwidth.compress.study_plots import study_figure

    frame = pd.read_csv(CSV_PATH)
    summary = {**study_summary(frame), "complete": complete, "pending": pending_runs(), "resume": RESUME}
    (RESULTS / "compression_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    study_figure(frame).savefig(RESULTS / "compression_study.png", dpi=110)
    print(f"reruns of the same seed: largest held-out loss difference {rerun_differences(frame)}")
    for regime, result in summary["regimes"].items():
        print(f"{regime}: L* {result['target_loss']:.4f}, best {result['best']}")


def print_markdown() -> None:
    """The findings table for README and benchmarks/README (markdown), and what has not run yet."""
    import pandas as pd

    from fedbandwidth.compress.study import findings_markdown, study_summary

    frame = pd.read_csv(CSV_PATH)
    print("\n".join(findings_markdown(study_summary(frame), frame)))
    left: dict[str, list[str]] = {}
    for p in pending_runs():
        if p["setting"] != REFERENCE:
            seeds = "" if len(p["seeds"]) == len(SEEDS) else f" (seed(s) {', '.join(map(str, p['seeds']))})"
            left.setdefault(p["setting"], []).append(p["regime"] + seeds)
    print("\nNot run yet: " + ("; ".join(f"{k}: {', '.join(v)}" for k, v in left.items()) or "nothing") + ".")


def main() -> None:
    """Run (a chunk of) the study; write the results once it is complete."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float("inf"), help="start no run after this many minutes")
    parser.add_argument("--markdown", action="store_true", help="print the findings table (markdown) and exit")
    args = parser.parse_args()
    if args.markdown:
        return print_markdown()
    RESULTS.mkdir(exist_ok=True)
    os.chdir(REPO)  # the warm-start checkpoint is cached under build/ here
    complete = sweep(args.minutes)
    if len(known_targets()) == len(REGIMES):
        write_results(complete)
    if complete:
        print("done")


if __name__ == "__main__":
    main()
