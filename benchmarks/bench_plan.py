"""How fast `plan` answers for a large fleet: 10,000 clients, in-process and as a whole process, next to the
start-up of the same Python with numpy (measured in the same run, so the ratio holds on a busy machine).

    .venv/bin/python benchmarks/bench_plan.py [--clients 10000]   ->  benchmarks/results/plan_speed.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from benchlib import machine_facts, write_json
from fedbandwidth.wire.fleet import fleet_from_mix
from fedbandwidth.wire.plan import PlanConfig, plan

MIX = "4G:0.5,Wi-Fi:0.3,3G:0.2"


def wall(argv: list[str]) -> float:
    """Seconds a whole process takes."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    fleet = fleet_from_mix(MIX, args.clients, 0.1)
    cfg = PlanConfig(56_283_760, 56_283_760, 20, 0.1, 1.3, None, None, args.rounds, 200, 0)
    inproc, whole, floor = [], [], []
    command = [sys.executable, "-m", "fedbandwidth", "plan", "--fleet", MIX, "--supernodes", str(args.clients),
               "--fraction", "0.1", "--over-commit", "1.3", "--rounds", str(args.rounds), "--json"]  # fmt: skip
    for _ in range(args.repeat):
        started = time.perf_counter()
        plan(fleet, cfg)
        inproc.append(time.perf_counter() - started)
        whole.append(wall(command))
        floor.append(wall([sys.executable, "-c", "import numpy"]))
    med = statistics.median
    path = write_json("plan_speed.json", {"machine": machine_facts(), "command": command[2:], "clients": args.clients,
                                          "rounds": args.rounds, "in_process_seconds": inproc,
                                          "whole_process_seconds": whole, "import_numpy_seconds": floor})  # fmt: skip
    print(f"written {path}")
    print(f"{args.clients:,} clients x {args.rounds} rounds x 200 draws, runs: {args.repeat}")
    print(f"plan() in process: median {med(inproc):.3f} s (min {min(inproc):.3f}, max {max(inproc):.3f})")
    print(f"`fedbandwidth plan` whole process: median {med(whole):.3f} s (goal <= 10 s)")
    print(f"python -c 'import numpy': median {med(floor):.3f} s; plan / that = {med(whole) / med(floor):.1f}x")


if __name__ == "__main__":
    main()
