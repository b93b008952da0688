"""Peak memory of a large run: summed RSS of `fedbandwidth simulate` and every process under it.

Runs `fedbandwidth simulate --supernodes 100 --fraction 0.1 --rounds 3` and samples, every 0.2 s,
the RSS (and PSS) of the process and all its descendants: Ray's GCS, raylet, agents, workers.
Prints the peak in MiB and GiB against the target (<= 3 GiB) and which processes held it;
writes benchmarks/results/memory.json.
Usage: python benchmarks/bench_memory.py [--supernodes 100] [--fraction 0.1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import benchlib

TARGET_BYTES = 3 * benchlib.GIB  # summed RSS at the peak


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernodes", type=int, default=100, help="simulated clients (default 100)")
    parser.add_argument("--fraction", type=float, default=0.1, help="fraction trained a round (default 0.1)")
    parser.add_argument("--rounds", type=int, default=3, help="federated rounds (default 3)")
    parser.add_argument("--api", choices=("legacy", "message"), default="legacy", help="our API (default legacy)")
    parser.add_argument(
        "--backend",
        choices=("inprocess", "ray"),
        default="inprocess",
        help="Simulation Engine backend (default inprocess)",
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples (default 0.2)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before the run is ended (default 900)")
    parser.add_argument("--output", default="memory.json", help="file name under benchmarks/results/")
    return parser.parse_args(argv)


def by_label(sample: benchlib.MemorySample) -> list[dict]:
    """The processes of one sample grouped by label, largest RSS first."""
    groups: dict[str, list[int]] = defaultdict(list)
    for name, _pid, rss in sample.processes:
        groups[name].append(rss)
    rows = [{"process": n, "count": len(v), "rss_bytes": sum(v)} for n, v in groups.items()]
    return sorted(rows, key=lambda r: r["rss_bytes"], reverse=True)


def mib(num_bytes: int) -> str:
    """Bytes as MiB, for printing."""
    return f"{num_bytes / benchlib.MIB:,.0f} MiB"


def report(result: benchlib.RunResult) -> dict:
    """Print the peak, the target verdict and the processes at the peak; return the JSON figures."""
    peak = max(result.samples, key=lambda s: s.rss_bytes)
    peak_pss = max(s.pss_bytes for s in result.samples)
    verdict = "meets" if peak.rss_bytes <= TARGET_BYTES else "MISSES"
    print(f"exit {result.returncode}, wall {result.wall_seconds:.1f} s, {len(result.samples)} samples")
    print(
        f"peak summed RSS: {peak.rss_bytes:,} B = {mib(peak.rss_bytes)} = "
        f"{peak.rss_bytes / benchlib.GIB:.2f} GiB at t = {peak.t:.1f} s "
        f"(target <= {TARGET_BYTES / benchlib.GIB:.0f} GiB: {verdict})"
    )
    print(f"PSS at that instant: {mib(peak.pss_bytes)}; peak summed PSS: {mib(peak_pss)} (shared pages counted once)")
    groups = by_label(peak)
    print(f"processes at the peak ({len(peak.processes)}):")
    for g in groups:
        print(f"  {g['process']:<28} x{g['count']:<3} {mib(g['rss_bytes']):>12}")
    return {
        "peak_rss_bytes": peak.rss_bytes,
        "peak_rss_gib": round(peak.rss_bytes / benchlib.GIB, 3),
        "peak_at_seconds": round(peak.t, 2),
        "pss_at_peak_bytes": peak.pss_bytes,
        "peak_pss_bytes": peak_pss,
        "target_bytes": TARGET_BYTES,
        "meets_target": verdict == "meets",
        "processes_at_peak": groups,
        "timeline": [(round(s.t, 2), s.rss_bytes, s.pss_bytes) for s in result.samples],
    }


def main(argv: list[str] | None = None) -> int:
    """Run once, sampling memory; print and write the figures."""
    args = parse_args(argv)
    use_cli = benchlib.cli_works()
    scratch = benchlib.scratch_dir()
    cmd = benchlib.ours_command(
        args.supernodes,
        args.rounds,
        args.fraction,
        args.api,
        out=scratch if use_cli else None,
        use_cli=use_cli,
        backend=args.backend,
    )
    facts = benchlib.machine_facts()
    shown = " ".join(cmd) if use_cli else "python -c <OURS_SNIPPET>"
    print(f"{facts['logical_cores']} cores, load {facts['load_average_1_5_15']}; running: {shown}")
    try:
        result = benchlib.run_tracked(cmd, interval=args.interval, memory=True, timeout=args.timeout)
    finally:
        benchlib.remove_dir(scratch)
    if result.returncode != 0:
        print(
            f"run FAILED (exit {result.returncode}); figures below are not a valid measurement:\n{result.stderr_tail}",
            file=sys.stderr,
        )
    figures = report(result)
    if result.leftovers_killed:
        print(f"ended {len(result.leftovers_killed)} leftover process(es): {result.leftovers_killed}")
    output = args.output if result.returncode == 0 else args.output.replace(".json", ".failed.json")
    path = benchlib.write_json(
        output,
        {
            **facts,
            "command": shown,
            "supernodes": args.supernodes,
            "fraction": args.fraction,
            "rounds": args.rounds,
            "api": args.api,
            "backend": args.backend,
            "interval_seconds": args.interval,
            "wall_seconds": round(result.wall_seconds, 2),
            "returncode": result.returncode,
            "processes_seen": result.pids_seen,
            "leftovers_killed": result.leftovers_killed,
            **figures,
        },
    )
    print(f"wrote {path.relative_to(benchlib.ROOT)}")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
