"""Wall time of a whole run, as a learner waits for it, against the course's code and against the floor.

Runs, alternating, K times each: benchmarks/course_baseline.py, `fedbandwidth simulate` for each API
(legacy, as the course; message) and backend (inprocess, our default; ray, as the course) for R rounds and
for 1 round, `fedbandwidth simulate --supernodes 1 --rounds 1`, and `python -c "import flwr.simulation"`.
It also times, in this process, copying one round's bytes once with numpy (the memory-copy floor: every
sampled node's model down and its update up, each byte once). Prints every run, the medians and three
ratios, each against something measured in the same run: ours/course (target <= 0.10, legacy), the marginal
cost of a round ((R rounds - 1 round) / (R - 1)) over the floor (target <= 4), and 1 node x 1 round over
the import of flwr.simulation (target <= 1.5). Writes benchmarks/results/speed.json.
Usage: python benchmarks/bench_speed.py [--supernodes 10] [--rounds 3] [--repeat 3] [--backends inprocess]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import benchlib

TARGET_RATIO = 0.10  # ours / course, medians of wall time (legacy API, in-process backend)
FLOOR_TARGET = 4.0  # marginal cost of a round / the memory-copy floor of its bytes
IMPORT_TARGET = 1.5  # `simulate --supernodes 1 --rounds 1` / `python -c "import flwr.simulation"`
STARTUP_TARGET_SECONDS = 2.0  # fixed cost of a run: wall time not spent in rounds
COURSE = "course"
IMPORT = "import-flwr.simulation"  # the wall of importing Flower's Simulation Engine in a fresh Python
SMALLEST = "ours-1x1"  # `fedbandwidth simulate --supernodes 1 --rounds 1`
ONE_ROUND = "-1round"  # suffix of our commands run for one round, to split fixed cost from per-round cost


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernodes", type=int, default=10, help="simulated clients (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="federated rounds (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command (default 3)")
    parser.add_argument(
        "--apis", default="legacy,message", help="our APIs to time, comma-separated (default legacy,message)"
    )
    parser.add_argument(
        "--backends",
        default="inprocess,ray",
        help="Simulation Engine backends to time, comma-separated (default inprocess,ray)",
    )
    parser.add_argument("--skip-course", action="store_true", help="time only our path")
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.0,
        metavar="PCT",
        help="before each run, wait (<= 2 min) until the machine is < PCT%% busy (default: no wait)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is ended (default 600)")
    parser.add_argument("--output", default="speed.json", help="file name under benchmarks/results/")
    return parser.parse_args(argv)


def commands(args: argparse.Namespace, use_cli: bool) -> dict[str, list[str]]:
    """The commands to time, by name: 'course', then 'ours-<api>-<backend>' for each pair."""
    cmds = {} if args.skip_course else {COURSE: benchlib.course_command(args.supernodes, args.rounds)}
    cmds[IMPORT] = [sys.executable, "-c", "import flwr.simulation"]
    cmds[SMALLEST] = benchlib.ours_command(1, 1, use_cli=use_cli)
    for api in args.apis.split(","):
        for backend in args.backends.split(","):
            cmds[f"ours-{api}-{backend}"] = benchlib.ours_command(
                args.supernodes, args.rounds, api=api, use_cli=use_cli, backend=backend
            )
            if args.rounds > 1:
                cmds[f"ours-{api}-{backend}{ONE_ROUND}"] = benchlib.ours_command(
                    args.supernodes, 1, api=api, use_cli=use_cli, backend=backend
                )
    return cmds


def fixed_seconds(meds: dict[str, float | None], rounds: int) -> dict[str, float | None]:
    """Fixed cost of each of our commands: wall(1 round) - per-round time, from the two medians."""
    fixed = {}
    for name, one in meds.items():
        if name.endswith(ONE_ROUND) and one is not None and meds.get(name.removesuffix(ONE_ROUND)) is not None:
            per_round = (meds[name.removesuffix(ONE_ROUND)] - one) / (rounds - 1)
            fixed[name.removesuffix(ONE_ROUND)] = round(one - per_round, 2)
    return fixed


def round_bytes(supernodes: int, api: str = "legacy") -> int:
    """Payload bytes of one round of pythia-14m with every node sampled: each model down and each update up."""
    from fedbandwidth.model import tensor_specs
    from fedbandwidth.theory import predict

    prediction = predict(tensor_specs("pythia-14m"), supernodes, 1, api=api)
    return prediction.down_bytes_per_round + prediction.up_bytes_per_round


def copy_floor_seconds(nbytes: int, repeat: int = 5) -> float:
    """Seconds to copy `nbytes` once with numpy (best of `repeat`, both buffers touched first)."""
    import numpy as np

    source, target = np.ones(nbytes, np.uint8), np.zeros(nbytes, np.uint8)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return round(best, 4)


def floor_ratios(meds: dict, rounds: int, floor: float) -> dict[str, dict]:
    """Each of our R-round commands: its marginal round (seconds) and that over the memory-copy floor."""
    ratios_ = {}
    for name, one in meds.items():
        full = meds.get(name.removesuffix(ONE_ROUND))
        if name.endswith(ONE_ROUND) and one is not None and full is not None and rounds > 1:
            per_round = (full - one) / (rounds - 1)
            ratios_[name.removesuffix(ONE_ROUND)] = {
                "round_seconds": round(per_round, 3),
                "ratio": round(per_round / floor, 2),
            }
    return ratios_


def time_once(name: str, cmd: list[str], quiet_below: float = 0.0, timeout: float = 600.0) -> dict:
    """Run one command to completion (our runs write into a scratch --out); return its row."""
    busy = benchlib.wait_until_quiet(quiet_below) if quiet_below else benchlib.system_busy_percent()
    scratch = benchlib.scratch_dir()
    full = cmd + (["--out", scratch] if name != COURSE and "-c" not in cmd else [])
    try:
        result = benchlib.run_tracked(full, timeout=timeout)
    finally:
        benchlib.remove_dir(scratch)
    if result.returncode != 0:
        print(f"  {name} FAILED (exit {result.returncode}):\n{result.stderr_tail}", file=sys.stderr)
    return {
        "name": name,
        "wall_seconds": round(result.wall_seconds, 2),
        "cpu_seconds": result.cpu_seconds,
        "returncode": result.returncode,
        "busy_percent_before": busy,
        "load_1min_after": round(os.getloadavg()[0], 2),
        "processes_seen": result.pids_seen,
        "cpu_seconds_by_process": result.cpu_by_process,
        "leftovers_killed": result.leftovers_killed,
    }


def run_all(cmds: dict[str, list[str]], repeat: int, quiet_below: float = 0.0, timeout: float = 600.0) -> list[dict]:
    """Alternate the commands `repeat` times; print each run as it ends."""
    runs = []
    for rep in range(1, repeat + 1):
        for name, cmd in cmds.items():
            row = time_once(name, cmd, quiet_below, timeout) | {"repetition": rep}
            runs.append(row)
            extra = f", ended {len(row['leftovers_killed'])} leftover(s)" if row["leftovers_killed"] else ""
            print(
                f"  rep {rep}  {name:<22} {row['wall_seconds']:7.2f} s wall  {row['cpu_seconds']:6.1f} s CPU"
                f"  (machine {row['busy_percent_before']:.0f}% busy before, load {row['load_1min_after']} after)"
                f"  exit {row['returncode']}{extra}",
                flush=True,
            )
    return runs


def medians(runs: list[dict], column: str = "wall_seconds") -> dict[str, float | None]:
    """Median of `column` over the successful runs, by command name."""
    names = dict.fromkeys(r["name"] for r in runs)
    return {n: benchlib.median([r[column] for r in runs if r["name"] == n and r["returncode"] == 0]) for n in names}


def ratios(meds: dict[str, float | None]) -> dict[str, float | None]:
    """Median of each of our commands divided by the course's median."""
    course = meds.get(COURSE)
    return {
        n: (round(m / course, 3) if m and course else None)
        for n, m in meds.items()
        if n not in (COURSE, IMPORT, SMALLEST) and not n.endswith(ONE_ROUND)
    }


def print_table(runs: list[dict], meds: dict, rats: dict) -> None:
    """Every run, then medians and the ratios ours/course against the target."""
    names = list(meds)
    print(f"\n{'rep':>3}  " + "".join(f"{n:>24}" for n in names))
    for rep in sorted({r["repetition"] for r in runs}):
        cells = {r["name"]: r for r in runs if r["repetition"] == rep}
        print(f"{rep:>3}  " + "".join(f"{_cell(cells.get(n)):>24}" for n in names))
    print("med  " + "".join(f"{_fmt(meds[n]):>24}" for n in names))
    for name, ratio in rats.items():
        verdict = "n/a" if ratio is None else ("meets" if ratio <= TARGET_RATIO else "MISSES")
        print(f"ratio {name}/course = {_fmt(ratio, '', 3)}  (target <= {TARGET_RATIO}: {verdict})")


def _cell(row: dict | None) -> str:
    """A table cell: wall seconds, or the failure."""
    if row is None:
        return "-"
    return f"{row['wall_seconds']:.2f} s" if row["returncode"] == 0 else f"exit {row['returncode']}"


def _fmt(value: float | None, unit: str = " s", digits: int = 2) -> str:
    """A number with its unit, or 'n/a'."""
    return "n/a" if value is None else f"{value:.{digits}f}{unit}"


def main(argv: list[str] | None = None) -> int:
    """Time the commands, print the table, write the JSON."""
    args = parse_args(argv)
    use_cli = benchlib.cli_works()
    cmds = commands(args, use_cli)
    facts = benchlib.machine_facts()
    print(
        f"{facts['logical_cores']} cores, load {facts['load_average_1_5_15']}, "
        f"flwr {facts['versions']['flwr']}, torch {facts['versions']['torch']}; "
        f"our path via {'the CLI' if use_cli else 'the Python snippet'}"
    )
    for name, cmd in cmds.items():
        print(f"  {name}: {' '.join(cmd)}" if "-c" not in cmd else f"  {name}: python -c <snippet>")
    runs = run_all(cmds, args.repeat, args.quiet_below, args.timeout)
    meds, rats = medians(runs), ratios(medians(runs))
    cpu_meds = medians(runs, "cpu_seconds")
    print_table(runs, meds, rats)
    print(
        "median CPU seconds of the process tree (less sensitive to a busy machine): "
        + ", ".join(f"{n} {_fmt(m)}" for n, m in cpu_meds.items())
    )
    fixed = fixed_seconds(meds, args.rounds)
    for name, seconds in fixed.items():
        verdict = "meets" if seconds <= STARTUP_TARGET_SECONDS else "MISSES"
        print(f"fixed cost {name} = {seconds:.2f} s (target <= {STARTUP_TARGET_SECONDS} s: {verdict})")
    nbytes = round_bytes(args.supernodes)
    floor = copy_floor_seconds(nbytes)
    print(f"floor: copying one round's {nbytes:,} B once with numpy takes {floor:.3f} s")
    per_round = floor_ratios(meds, args.rounds, floor)
    for name, row in per_round.items():
        verdict = "meets" if row["ratio"] <= FLOOR_TARGET else "MISSES"
        print(f"marginal round {name} = {row['round_seconds']:.3f} s = {row['ratio']:.2f}x the floor "
              f"(target <= {FLOOR_TARGET}: {verdict})")  # fmt: skip
    smallest = meds.get(SMALLEST) / meds[IMPORT] if meds.get(SMALLEST) and meds.get(IMPORT) else None
    verdict = "n/a" if smallest is None else ("meets" if smallest <= IMPORT_TARGET else "MISSES")
    print(f"{SMALLEST}/{IMPORT} = {_fmt(smallest, '', 2)} (target <= {IMPORT_TARGET}: {verdict})")
    facts["load_average_after"] = benchlib.machine_facts()["load_average_1_5_15"]
    path = benchlib.write_json(
        args.output,
        {
            **facts,
            "supernodes": args.supernodes,
            "rounds": args.rounds,
            "repeat": args.repeat,
            "commands": {n: " ".join(c) if "-c" not in c else "python -c <OURS_SNIPPET>" for n, c in cmds.items()},
            "our_path": "cli" if use_cli else "snippet",
            "runs": runs,
            "median_seconds": meds,
            "ratio_to_course": rats,
            "median_cpu_seconds": cpu_meds,
            "cpu_ratio_to_course": ratios(cpu_meds),
            "target_ratio": TARGET_RATIO,
            "fixed_seconds": fixed,
            "fixed_target_seconds": STARTUP_TARGET_SECONDS,
            "round_bytes": nbytes,
            "copy_floor_seconds": floor,
            "marginal_round": per_round,
            "floor_target": FLOOR_TARGET,
            "smallest_over_import": round(smallest, 3) if smallest else None,
            "import_target": IMPORT_TARGET,
        },
    )
    print(f"wrote {path.relative_to(benchlib.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
