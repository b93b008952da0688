"""How much of a request's processing its round trip hides: transfer.OVERLAP chosen on the kept sweeps.

Every message of sweeps F-K (results/wire_timing.json, measurements unchanged) predicted again by the model as it
is now with transfer.OVERLAP set to each candidate, each sweep's calibration refitted to its own loopback messages
by that model (as `wire_timing.py --refit` does): per candidate, one node and two, the mean |error|, its 90th
percentile and the messages within 10% (datacenter apart: its goal is 25%). Writes results/turn_model_choice.json.
`--as-is` scores the checkout's model untouched (e.g. an older commit's, this script copied into its worktree).

    .venv/bin/python benchmarks/turn_model_choice.py [--overlaps 0.5,0.6,0.7,0.8,0.9,1.0] [--sweeps FGHIK] [--as-is]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "turn_model_choice.json"


def summary(errors: list[float]) -> dict:
    """Mean |error|, its 90th percentile and how many of them are within 10%."""
    sizes = sorted(abs(e) for e in errors)
    return {
        "messages": len(sizes),
        "mean_abs_error": round(statistics.mean(sizes), 4),
        "p90_abs_error": round(sizes[int(0.9 * len(sizes))], 4),
        "within_10_percent": sum(e <= 0.1 for e in sizes),
    }


def scored(overlap: float | None, sweeps: str) -> dict:
    """The error summaries of the chosen sweeps' messages with transfer.OVERLAP = `overlap` (None: as it is)."""
    import wire_timing

    from fedbandwidth.wire import transfer

    if overlap is not None:
        transfer.OVERLAP = overlap
    entries = wire_timing.repredict(*wire_timing.measured_and_refitted(sweeps))
    groups = {
        "one node": lambda e: e.get("nodes", 1) == 1 and e["profile"] != "datacenter",
        "two nodes": lambda e: e.get("nodes", 1) == 2,
        "datacenter": lambda e: e["profile"] == "datacenter",
    }
    return {name: summary([wire_timing.error(e) for e in entries if its(e)]) for name, its in groups.items()}


def main(argv=None) -> int:
    """Score every candidate overlap, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlaps", default="0.5,0.6,0.7,0.8,0.9,1.0", help="comma-separated candidates")
    parser.add_argument("--sweeps", default="FGHIK", help="the sweeps to score on, one letter each")
    parser.add_argument("--as-is", action="store_true", help="score the model as this checkout has it, no overlap set")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    from fedbandwidth.wire import transfer

    chosen, table = getattr(transfer, "OVERLAP", None), {}
    for overlap in [None] if args.as_is else [float(a) for a in args.overlaps.split(",")]:
        label = "as is" if overlap is None else str(overlap)  # (an overlap of 0.0 is a candidate, not "as is")
        table[label] = scored(overlap, args.sweeps)
        print(label, json.dumps(table[label]), flush=True)
    if chosen is not None:
        transfer.OVERLAP = chosen
    what = f"sweeps {', '.join(args.sweeps)} predicted with transfer.OVERLAP = each candidate (kept: {chosen})"
    RESULTS.write_text(json.dumps({"what": what, "command": "benchmarks/turn_model_choice.py " + " ".join(argv or
                        sys.argv[1:]), "unix_time": round(time.time()), "scores": table}, indent=1) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent))
    sys.exit(main())
