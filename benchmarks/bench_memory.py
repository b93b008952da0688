"""Peak memory of `fedbandwidth simulate` over model sizes, node counts and both APIs, in model messages.

For each (model, API, nodes) it runs `fedbandwidth simulate --rounds 2` and reads the process's
peak RSS from the kernel (wait4's ru_maxrss, exact, no sampling). It prints the peak in units of
one model message, the peak above an idle process (Python + the same imports, no model), the
goal (sampled nodes + 3 messages), memory.estimate_memory()'s estimate, and the wall time.
Results are merged into benchmarks/results/memory.json (key model/api/nodes), so a sweep can run
in chunks: rows already there are skipped unless --force.
Usage: python benchmarks/bench_memory.py [--models pythia-14m,pythia-70m] [--nodes 2,10] [--apis legacy,message]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import benchlib
from fedbandwidth.memory import estimate_memory

GOAL_EXTRA_MESSAGES = 3  # goal: peak above idle <= (sampled nodes + 3) model messages
IDLE_SNIPPET = (
    "import fedbandwidth.cli.simulate, fedbandwidth.simulation, fedbandwidth.plots, flwr.simulation, "
    "matplotlib.pyplot, pandas"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="pythia-14m,pythia-70m,pythia-160m,pythia-410m", help="comma-separated")
    parser.add_argument("--nodes", default="2,10", help="SuperNodes, comma-separated (all sampled)")
    parser.add_argument("--apis", default="legacy,message", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="federated rounds (default 2)")
    parser.add_argument("--backend", choices=("inprocess", "ray"), default="inprocess")
    parser.add_argument("--force", action="store_true", help="rerun rows already in the results file")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is ended")
    parser.add_argument("--output", default="memory.json", help="file name under benchmarks/results/")
    return parser.parse_args(argv)


def peak_rss(cmd: list[str], timeout: float) -> tuple[int, float, int, str]:
    """Run `cmd`; return (peak RSS bytes from the kernel, wall seconds, exit code, stdout)."""
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        popen = subprocess.Popen(cmd, cwd=benchlib.ROOT, stdout=subprocess.PIPE, stderr=devnull, text=True)
        timer = threading.Timer(timeout, popen.kill)
        timer.start()
        stdout = popen.stdout.read()
        _, status, usage = os.wait4(popen.pid, 0)
        timer.cancel()
    popen.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024, time.perf_counter() - started, popen.returncode, stdout


def idle_rss(timeout: float) -> int:
    """Peak RSS of a Python that imports what `simulate` imports and holds no model."""
    rss, _, code, _ = peak_rss([sys.executable, "-c", IDLE_SNIPPET], timeout)
    if code != 0:
        raise RuntimeError(f"the idle process failed (exit {code})")
    return rss


def measure(model: str, api: str, nodes: int, args: argparse.Namespace, idle: int) -> dict:
    """One run: peak memory in bytes and model messages, against the goal and the estimate."""
    scratch = benchlib.scratch_dir()
    cmd = benchlib.cli_executable() + ["simulate", "--supernodes", str(nodes), "--rounds", str(args.rounds)]
    cmd += ["--model", model, "--api", api, "--backend", args.backend, "--out", scratch, "--json"]
    try:
        rss, wall, code, stdout = peak_rss(cmd, args.timeout)
    finally:
        benchlib.remove_dir(scratch)
    row = {"model": model, "api": api, "nodes": nodes, "rounds": args.rounds, "backend": args.backend}
    row |= {"command": " ".join(cmd[:-2] + ["--json"]), "returncode": code, "wall_seconds": round(wall, 2)}
    if code != 0:
        return row
    report = json.loads(stdout)
    message = report["model"]["message_payload_bytes"]
    sampled = max(r["nodes"] for r in report["rounds"])
    estimate = estimate_memory(message, sampled, api, args.backend)
    return row | {
        "message_payload_bytes": message,
        "sampled_nodes": sampled,
        "ledger_equals_prediction": report["total_bytes"] == report["predicted_bytes"],
        "peak_rss_bytes": rss,
        "idle_rss_bytes": idle,
        "peak_messages": round(rss / message, 2),
        "above_idle_messages": round((rss - idle) / message, 2),
        "goal_messages": sampled + GOAL_EXTRA_MESSAGES,
        "meets_goal": rss - idle <= (sampled + GOAL_EXTRA_MESSAGES) * message,
        "estimate_bytes": estimate.peak_bytes,
        "estimate_covers_peak": estimate.peak_bytes >= rss,
    }


def print_row(row: dict) -> None:
    """One line per run."""
    head = f"{row['model']:<12} {row['api']:<8} {row['nodes']:>5}"
    if row["returncode"] != 0:
        print(f"{head}  FAILED (exit {row['returncode']}) after {row['wall_seconds']} s", flush=True)
        return
    print(
        f"{head} {row['peak_rss_bytes'] / benchlib.GIB:9.2f} {row['peak_messages']:8.2f} "
        f"{row['above_idle_messages']:8.2f} {row['goal_messages']:6d} {'yes' if row['meets_goal'] else 'NO':>5} "
        f"{row['estimate_bytes'] / benchlib.GIB:9.2f} {row['wall_seconds']:8.1f}",
        flush=True,
    )


def load(path) -> dict:
    """Rows already measured, by key model/api/nodes (empty if no file)."""
    if not path.exists():
        return {}
    return {f"{r['model']}/{r['api']}/{r['nodes']}": r for r in json.loads(path.read_text()).get("runs", [])}


def main(argv: list[str] | None = None) -> int:
    """Measure every (model, API, nodes) not yet in the results file; print; write the merged JSON."""
    args = parse_args(argv)
    path = benchlib.RESULTS_DIR / args.output
    rows = {} if args.force else load(path)
    facts = benchlib.machine_facts()
    idle = idle_rss(args.timeout)
    print(
        f"{facts['logical_cores']} cores, {facts['memory_bytes'] / benchlib.GIB:.1f} GiB; idle process "
        f"{idle / benchlib.MIB:,.0f} MiB; {args.backend} backend, {args.rounds} rounds, all nodes sampled"
    )
    print(
        f"{'model':<12} {'api':<8} {'nodes':>5} {'peak GiB':>9} {'peak msg':>8} {'>idle':>8} {'goal':>6} "
        f"{'meets':>5} {'est. GiB':>9} {'wall s':>8}"
    )
    for model in args.models.split(","):
        for api in args.apis.split(","):
            for nodes in (int(n) for n in args.nodes.split(",")):
                key = f"{model}/{api}/{nodes}"
                if key not in rows:
                    rows[key] = measure(model, api, nodes, args, idle)
                print_row(rows[key])
    benchlib.write_json(args.output, {**facts, "idle_rss_bytes": idle, "runs": list(rows.values())})
    print(f"wrote {path.relative_to(benchlib.ROOT)}")
    return 0 if all(r["returncode"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
