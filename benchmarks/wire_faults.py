"""A deployment never waits forever: multi-round runs on an emulated network, put through faults.

- ``kill``: 3 SuperNodes, 3 rounds, the toy tiny-gptneox on 4G links (a round takes seconds; a round that
  lost a node waits its 20 s timeout); one node SIGKILLed halfway through its model download in round 1, 2
  or 3 (the node and round change from run to run). Five runs.
- ``rejoin``: the same, the killed node started again 5 s later: it registers as a new node and is sampled.
- ``link-down``: one node's link taken down for 10 s halfway through its round-2 download.

For each run: did every round finish, which node the ServerApp saw lost in which round, the faults with their
round, and what was left behind (processes, namespaces, veths, qdiscs: none expected). Appends to
results/wire_faults.json as each run finishes (a rerun skips what is there). Under the CPU lock:

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/wire_faults.py [--scenarios kill,rejoin,link-down]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "wire_faults.json"
WORK = BENCH_DIR.parent / "build" / "bench_faults"
LINKS = "4G"  # 30 Mbit/s down, 10 up, 50 ms: a round of the toy model takes about 6 s
MODEL = "tiny-gptneox"  # 1.85 MB a message
ROUNDS, NODES, ROUND_TIMEOUT = 3, 3, 20
RUNS = {"kill": 5, "rejoin": 1, "link-down": 1}


def fault_for(scenario: str, k: int, message_wire: int):
    """The fault of run `k` of a scenario: node k % 3, halfway through its download of round k % 3 + 1."""
    from fedbandwidth.wire.faults import LinkFault, NodeFault

    node, rnd = k % NODES, k % ROUNDS + 1
    if scenario == "link-down":
        return LinkFault(partition=node, after_down_bytes=message_wire + message_wire // 2, down_seconds=10.0), 2
    restart = 5.0 if scenario == "rejoin" else None
    after = (rnd - 1) * message_wire + message_wire // 2
    return NodeFault(partition=node, after_down_bytes=after, restart_after=restart), rnd


def message_bytes() -> int:
    """Payload bytes of one model message of MODEL (its wire bytes are a little more)."""
    from fedbandwidth.model import tensor_specs
    from fedbandwidth.theory import predict

    return predict(tensor_specs(MODEL), 1, 1, api="message").message_payload_bytes


def run_one(scenario: str, k: int) -> dict:
    """One faulty run; what finished, what was lost when, what was left."""
    from fedbandwidth.wire.engine import DeployConfig, deploy
    from fedbandwidth.wire.links import parse_links
    from fedbandwidth.wire.network import leftovers
    from fedbandwidth.wire.report import deploy_summary

    out = WORK / f"{scenario}-{k}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = DeployConfig(
        NODES, ROUNDS, model=MODEL, links=parse_links(LINKS), round_timeout=ROUND_TIMEOUT, out=out, run_timeout=900
    )
    fault, rnd = fault_for(scenario, k, message_wire=message_bytes())
    started = time.monotonic()
    run = deploy(cfg, faults=[fault])
    report = deploy_summary(run)
    with (out / "timeline.csv").open(newline="") as f:
        finished = sorted({int(r["round"]) for r in csv.DictReader(f) if r["event"] == "round_start"})
    return {
        "scenario": scenario,
        "run": k,
        "fault": {"partition": fault.partition, "round": rnd, "kind": type(fault).__name__},
        "status": run.status,
        "rounds_started": finished,
        "all_rounds": finished == list(range(1, ROUNDS + 1)) and run.status.endswith("completed"),
        "lost": [{k: r[k] for k in ("round", "node", "node_id")} for r in report["lost"]],
        "events": [{k: e[k] for k in ("partition", "event", "round")} for e in report["events"]],
        "rejoined_sampled": rejoined_sampled(run, out),
        "left_processes": run.leftovers(),
        "left_network": leftovers(run.network),
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def rejoined_sampled(run, out: Path) -> list[int]:
    """Rounds in which a restarted node's new id sent a model up."""
    new_ids = {n for ids in run.rejoined_ids.values() for n in ids}
    with (out / "ledger.csv").open(newline="") as f:
        return sorted(
            {int(r["round"]) for r in csv.DictReader(f) if int(r["node_id"]) in new_ids and r["direction"] == "up"}
        )


def load() -> list[dict]:
    """Runs recorded so far."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def summary(runs: list[dict]) -> str:
    """One line per run, then survivals per scenario."""
    lines = []
    for r in runs:
        clean = not r["left_processes"] and not any(r["left_network"].values())
        fault, lost = r["fault"], [(x["round"], x["node"]) for x in r["lost"]]
        lines.append(
            f"{r['scenario']:>9} #{r['run']} {fault['kind']} node {fault['partition']} round {fault['round']}: "
            f"rounds {r['rounds_started']} {r['status']}; lost (round, node) {lost}; "
            f"rejoined sampled in {r['rejoined_sampled']}; clean {clean}; {r['wall_seconds']} s"
        )
    for scenario in RUNS:
        mine = [r for r in runs if r["scenario"] == scenario]
        ok = [r for r in mine if r["all_rounds"] and not r["left_processes"] and not any(r["left_network"].values())]
        lines.append(f"{scenario}: {len(ok)} of {len(mine)} runs finished every round and left nothing behind")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the missing runs of the chosen scenarios; print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(RUNS))
    args = parser.parse_args(argv)
    runs = load()
    for scenario in args.scenarios.split(","):
        for k in range(RUNS[scenario]):
            if any(r["scenario"] == scenario and r["run"] == k for r in runs):
                continue
            runs.append(run_one(scenario, k))
            RESULTS.write_text(json.dumps(runs, indent=1) + "\n")
            print(summary(runs[-1:]), flush=True)
    print(summary(runs))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent))
    sys.exit(main())
