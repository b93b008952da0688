"""The compression study: every lever of lesson 5 on the real training task, bytes vs held-out loss.

Each run is `fedbandwidth train --preset study ... --json` in its own process (in-process backend; a
failed run is retried). Rows are appended to results/compression_study.csv as runs finish; a
rerun skips runs already there, so an interrupted sweep resumes. Then the Pareto plot is drawn.

    .venv/bin/python benchmarks/compression_study.py            # the full sweep (~35 min here)
    .venv/bin/python benchmarks/compression_study.py --quick    # 3 rounds x 2 steps, a few codecs
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from fedbandwidth.compress.training import PRESETS

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
COLUMNS = [
    "up_codec",
    "down_codec",
    "fraction",
    "local_steps",
    "rounds",
    "partitioning",
    "up_bytes",
    "down_bytes",
    "final_eval_loss",
    "initial_eval_loss",
    "wall_seconds",
]
FROZEN = "layers:-gpt_neox.embed_in.weight,-lm_head.weight"  # the two embeddings: 91.5% of the bytes
FROZEN_INPUT = "layers:-gpt_neox.embed_in.weight"  # only the input embedding stays home: 45.8% of the bytes
RUN_TIMEOUT = 900  # seconds before a run is presumed hung and retried
STUDY = PRESETS["study"]  # supernodes, rounds, local steps of every run unless a spec says otherwise


def run_spec(
    up="none", down="none", fraction=1.0, rounds=STUDY["rounds"], local_steps=STUDY["local_steps"], partitioning="iid"
) -> dict:
    """One run of the sweep."""
    return {
        "up_codec": up,
        "down_codec": down,
        "fraction": fraction,
        "rounds": rounds,
        "partitioning": partitioning,
        "local_steps": local_steps,
    }


def full_sweep() -> list[dict]:
    """No compression; value codecs; frozen embeddings; top-k and low rank with and without error
    feedback; combinations; client fractions; local steps vs rounds at equal compute; non-IID clients."""
    runs = [run_spec(), run_spec("fp16"), run_spec("int8"), run_spec("int4"), run_spec(FROZEN), run_spec(FROZEN_INPUT)]
    for fraction in ("0.1", "0.01", "0.001"):
        runs += [run_spec(f"delta+topk:{fraction}"), run_spec(f"delta+topk:{fraction}:noef")]
    runs += [
        run_spec("delta+topk:0.01+int8"),
        run_spec("delta+lowrank:1"),
        run_spec("delta+lowrank:4"),
        run_spec("delta+lowrank:4:noef"),
        run_spec("delta+lowrank:4+int8"),
        run_spec("delta+lowrank:8+int4"),
        run_spec("delta+lowrank:2+int4"),
        run_spec("delta+lowrank:2+int4", "fp16"),
        run_spec(f"delta+{FROZEN}+lowrank:4+int8"),
        run_spec(fraction=0.5),
        run_spec(fraction=0.2),
        run_spec("delta+lowrank:2+int4", fraction=0.5),
        run_spec(rounds=3, local_steps=6),
        run_spec(rounds=9, local_steps=2),
        run_spec(rounds=2, local_steps=9),
        run_spec("delta+lowrank:2+int4", rounds=3, local_steps=6),
    ]
    runs += [run_spec(u, partitioning="topic") for u in ("none", "delta+lowrank:4+int8", "delta+lowrank:2+int4")]
    return runs


def quick_sweep() -> list[dict]:
    """A reduced sweep: a few codecs, 3 rounds x 2 local steps."""
    return [
        run_spec(u, rounds=3, local_steps=2)
        for u in ("none", "int8", "delta+topk:0.01", "delta+topk:0.01:noef", "delta+lowrank:2+int4")
    ]


def key(row: dict) -> tuple:
    """What identifies a run in the CSV."""
    return (
        row["up_codec"],
        row["down_codec"],
        float(row["fraction"]),
        int(row["local_steps"]),
        int(row["rounds"]),
        row.get("partitioning", "iid"),
    )


def run_once(spec: dict, out: Path) -> dict | None:
    """Run `fedbandwidth train` for one spec; its JSON summary, or None if it failed twice."""
    command = [
        sys.executable,
        "-m",
        "fedbandwidth",
        "train",
        "--preset",
        "study",
        "--up-codec",
        spec["up_codec"],
        "--down-codec",
        spec["down_codec"],
        "--fraction",
        str(spec["fraction"]),
        "--rounds",
        str(spec["rounds"]),
        "--local-steps",
        str(spec["local_steps"]),
        "--partitioning",
        spec["partitioning"],
        "--out",
        str(out),
        "--json",
    ]
    for attempt in (1, 2, 3):
        child = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )  # its own group: Ray's processes end with it
        try:
            stdout, stderr = child.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:  # Ray's raylet can die at start-up on a busy machine: a hang
            os.killpg(child.pid, signal.SIGKILL)
            stdout, stderr = child.communicate()
        if child.returncode == 0:
            return json.loads(stdout)
        print(f"  attempt {attempt} failed: {stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return None


def append_row(path: Path, spec: dict, report: dict) -> dict:
    """Append one finished run to the CSV (header first if new)."""
    row = {
        **spec,
        "up_bytes": report["up_bytes"],
        "down_bytes": report["down_bytes"],
        "final_eval_loss": round(report["final_eval_loss"], 5),
        "initial_eval_loss": round(report["initial_eval_loss"], 5),
        "wall_seconds": report["wall_seconds"],
    }
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    return row


def sweep(runs: list[dict], csv_path: Path) -> None:
    """Run every spec not yet in the CSV, appending as each finishes."""
    done = {key(r) for r in csv.DictReader(csv_path.open())} if csv_path.exists() else set()
    for i, spec in enumerate(runs, 1):
        if key(spec) in done:
            continue
        print(f"[{i}/{len(runs)}] {spec}", flush=True)
        report = run_once(spec, RESULTS / "runs" / f"run{i:02d}")
        if report:
            row = append_row(csv_path, spec, report)
            print(
                f"  up {row['up_bytes']:,} B, down {row['down_bytes']:,} B, "
                f"loss {row['final_eval_loss']}, {row['wall_seconds']} s",
                flush=True,
            )


def main() -> None:
    """Run the sweep, then draw the Pareto plot next to the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced sweep into compression_study_quick.*")
    args = parser.parse_args()
    name = "compression_study_quick" if args.quick else "compression_study"
    csv_path = RESULTS / f"{name}.csv"
    RESULTS.mkdir(exist_ok=True)
    sweep(quick_sweep() if args.quick else full_sweep(), csv_path)

    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from fedbandwidth.compress.study import pareto_figure

    figure = pareto_figure(pd.read_csv(csv_path))
    figure.savefig(RESULTS / f"{name}.png", dpi=110)
    print(f"wrote {csv_path} and {RESULTS / f'{name}.png'}")


if __name__ == "__main__":
    main()
