"""How repeatable a model message's time is on this host: each message of the kept sweeps against its condition's mean.

A condition is one sweep's profile, TLS mode, nodes at once, direction and model: the same message moved the same
way, minutes apart, on one calibration (2 or 4 messages). Each message's measured / predicted time (the model, each
sweep's calibration refitted as `wire_timing.py --refit` does, so round 1's app download is allowed for) is set
against its condition's mean of it: what is left once any per-condition correction is made, so the share of messages
within 10% is a ceiling for a per-message prediction that is the same for a condition's messages, and an optimistic
one (with 2-4 messages a condition, the mean is pulled toward each of them). Next to it, per profile and nodes: the
model's own score, and its score with the SuperLink's share the median of every scored sweep's (in-sample: it says
how much of the error is that term moving between calibrations, not a model to ship).
Writes results/wire_repeatability.json.

    .venv/bin/python benchmarks/wire_repeatability.py [--sweeps FGKLM]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "wire_repeatability.json"
SHARES = ("superlink_down_seconds", "superlink_up_seconds")


def condition(entry: dict) -> tuple:
    """The (sweep, profile, TLS, nodes, direction, model) a message was moved under."""
    return entry["sweep"], entry["profile"], entry["tls"], entry.get("nodes", 1), entry["direction"], entry["model"]


def deviations(entries: list[dict]) -> list[tuple[dict, float]]:
    """Each predicted message (of a condition with two or more) and its measured / predicted time over its
    condition's mean of that, less 1."""
    groups: dict[tuple, list[dict]] = {}
    for e in entries:
        groups.setdefault(condition(e), []).append(e)
    pairs = []
    for members in (m for m in groups.values() if len(m) > 1):
        ratios = [e["measured_seconds"] / e["predicted_seconds"] for e in members]
        mean = statistics.mean(ratios)
        pairs += [(e, r / mean - 1) for e, r in zip(members, ratios, strict=True)]
    return pairs


def by_group(pairs: list[tuple[dict, float]]) -> dict[str, dict]:
    """turn_model_choice's summary (mean, p90 |error|, within 10%) per profile and nodes at once."""
    from turn_model_choice import summary

    groups: dict[str, list[float]] = {}
    for e, error in pairs:
        groups.setdefault(f"{e['profile']}, {e.get('nodes', 1)} node(s)", []).append(error)
    return {name: summary(errors) for name, errors in sorted(groups.items())}


def pooled_shares(calibrations: dict) -> dict:
    """Every calibration with its SuperLink shares set to the median of all of theirs."""
    median = {k: statistics.median(c[k] for c in calibrations.values()) for k in SHARES}
    return {sweep: {**c, **median} for sweep, c in calibrations.items()}


def scores(sweeps: str) -> dict:
    """Per profile and nodes: the condition-mean ceiling, the model refitted, and the model with pooled shares."""
    import wire_timing

    entries, refit = wire_timing.measured_and_refitted(sweeps)
    own, pooled = (wire_timing.repredict([dict(e) for e in entries], c) for c in (refit, pooled_shares(refit)))
    return {
        "condition mean (ceiling)": by_group(deviations(own)),
        "model, own calibration": by_group([(e, wire_timing.error(e)) for e in own]),
        "model, shares pooled": by_group([(e, wire_timing.error(e)) for e in pooled]),
    }


def main(argv=None) -> int:
    """Score the chosen sweeps, print the table and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", default="FGKLM", help="the sweeps to score, one letter each")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BENCH_DIR))
    table = scores(args.sweeps)
    for group in table["condition mean (ceiling)"]:
        cells = [f"{name}: {t[group]['within_10_percent']}/{t[group]['messages']} within 10%, "
                 f"p90 |e| {t[group]['p90_abs_error']:.1%}" for name, t in table.items()]  # fmt: skip
        print(f"{group:>28} | " + " | ".join(cells))
    what = f"sweeps {', '.join(args.sweeps)} of results/wire_timing.json, each message against its condition's mean"
    command = " ".join(["benchmarks/wire_repeatability.py", *(argv or sys.argv[1:])])
    record = {"what": what, "command": command, "unix_time": round(time.time()), "scores": table}
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent))
    sys.exit(main())
