"""A fleet's round time, measured on emulated hosts, next to `plan`'s prediction for that exact fleet.

Six SuperNodes of tiny-gptneox on mixed links (two on 3G, 4G, home broadband, Wi-Fi, 5G), each behind its own
shaped link and all behind one shaped server link; the no-op clients wait a compute delay before replying (the
slowest one longer than any round); a round needs K = 3 replies and samples ceil(1.5 K) = 5 nodes (over-commit
1.5), closing at the 3rd reply or the deadline. Each round: the seconds from its models pushed to its close
(deploy's `rounds[].seconds`) next to the time wire/plan.py predicts for the nodes it sampled (their links,
compute, the server link shared, transfer.py's object model with this machine's calibration); the bytes the
ledger calls wasted (downloads without an in-time reply, late uploads) next to what those nodes' relays carried.
Needs root (network namespaces). Results: results/fleet_validation.json (a run is appended; --report prints).

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/fleet_validation.py [--rounds 4]
    .venv/bin/python benchmarks/fleet_validation.py --report
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "fleet_validation.json"
WORK = BENCH_DIR.parent / "build" / "bench_fleet"
MODEL = "tiny-gptneox"
LINKS = "3G,3G,4G,home broadband,Wi-Fi,5G"
COMPUTE = (1.0, 0.5, 2.0, 1.5, 3.0, 90.0)  # seconds node i waits before replying (node 5: always late)
SERVER_LINK = "20/20/5"
FRACTION, OVER_COMMIT, DEADLINE = 0.5, 1.5, 100.0  # K = 3 of 6, 5 sampled; no round lasts 100 s


def deployed(rounds: int) -> tuple[dict, object]:
    """The emulated deployment's summary and its config."""
    from fedbandwidth.wire.engine import DeployConfig, deploy
    from fedbandwidth.wire.links import parse_link, parse_links
    from fedbandwidth.wire.report import deploy_summary

    shutil.rmtree(WORK, ignore_errors=True)
    cfg = DeployConfig(
        supernodes=6,
        rounds=rounds,
        fraction=FRACTION,
        out=WORK,
        model=MODEL,
        links=parse_links(LINKS),
        over_commit=OVER_COMMIT,
        deadline=DEADLINE,
        compute_seconds=COMPUTE,
        round_timeout=300,
        server_link=parse_link(SERVER_LINK),
    )
    report = deploy_summary(deploy(cfg))
    if not report["run"]["status"].endswith("completed"):
        raise RuntimeError(f"the deployment ended {report['run']['status']}")
    return report, cfg


def last_deployment() -> tuple[dict, object]:
    """The last deployment's summary (build/bench_fleet) and the config it ran with."""
    from fedbandwidth.wire.engine import DeployConfig
    from fedbandwidth.wire.links import parse_link, parse_links

    cfg = DeployConfig(supernodes=6, links=parse_links(LINKS), server_link=parse_link(SERVER_LINK), model=MODEL)
    return json.loads((WORK / "summary.json").read_text()), cfg


def predicting_calibration(cfg) -> str:
    """The calibration file the predictions use (--again: today's, which may not be the run's own)."""
    from fedbandwidth.wire.calibration import load

    return load(cfg.calibration).source


def sharing_cores(calibration, clientapps: int):
    """The calibration with a ClientApp's imports slowed as on this host: the sampled nodes' ClientApps start
    together and share its cores (a fleet's devices would each import on their own)."""
    from dataclasses import replace

    if calibration.clientapp_start_seconds is None:
        return calibration
    slower = max(1.0, clientapps / (os.cpu_count() or 1))
    return replace(calibration, clientapp_start_seconds=calibration.clientapp_start_seconds * slower)


def fleet_of(cfg):
    """The deployment's nodes as a plan.py Fleet: their links, and each one's compute delay as its one step."""
    from dataclasses import replace

    import numpy as np

    from fedbandwidth.wire.fleet import fleet_from_links

    links = [cfg.link_of(i) for i in range(cfg.supernodes)]
    return replace(fleet_from_links(links, 0.0), step_seconds=np.array(COMPUTE, dtype=float))


def predicted(cfg, sampled: list[int], needed: int, message: int, waits=None, trials: int = 400) -> float:
    """wire/plan.py's median close time of a round that sampled these partitions (the draw that happened; the
    ClientApps' retries played `trials` times); `waits`: partition -> seconds it is still busy with an earlier
    message (busy_seconds), after which its round starts alone."""
    import numpy as np

    from fedbandwidth.wire.calibration import load
    from fedbandwidth.wire.plan import PlanConfig, close_seconds, reply_seconds

    waits, fleet, rng = waits or {}, fleet_of(cfg), np.random.default_rng(0)
    ready = [p for p in sampled if p not in waits]
    calibration = sharing_cores(load(cfg.calibration), len(ready))
    plan = PlanConfig(message, message, 1, server_link=cfg.server_link, model=MODEL, calibration=calibration)
    replies = [reply_seconds(fleet, np.tile(ready, (trials, 1)), plan, rng)] if ready else []
    replies += [wait + reply_seconds(fleet, np.full((trials, 1), p), plan, rng) for p, wait in waits.items()]
    return float(np.median(close_seconds(np.hstack(replies), needed, DEADLINE)))


def sent_seconds(timeline: Path) -> dict[int, float]:
    """Round -> when its models went out, in seconds since round 1 started (the zero of the summary's times)."""
    import csv

    with timeline.open(newline="") as f:
        events = list(csv.DictReader(f))
    origin = min(float(e["unix_time"]) for e in events if e["event"] == "round_start")
    return {int(e["round"]): float(e["unix_time"]) - origin for e in events if e["event"] == "round_sent"}


def busy_seconds(report: dict, sampled: dict[int, list[int]], r: int, sent: float) -> dict[int, float]:
    """Round r's sampled partitions still busy with an earlier round's message when its models went out, and for
    how many seconds more: Flower's SuperNode takes one message at a time (it pushes a reply before it pulls the
    next message). A message is done at its upload's end as measured, else at its ClientApp's exit plus its
    upload's predicted seconds; unknown: busy for good (inf)."""
    up_rows = [t for t in report["timing"] if t["direction"] == "up"]
    ups = {(t["round"], t["node"]): t["start_seconds"] + t["measured_seconds"] for t in up_rows
           if t["start_seconds"] is not None and t["measured_seconds"] is not None}  # fmt: skip
    upload = {(t["round"], t["node"]): t.get("predicted_seconds") or 0.0 for t in up_rows}
    left = {(c["round"], c["node"]): c["left"] + upload.get((c["round"], c["node"]), 0.0)
            for c in report.get("clientapp", [])}  # fmt: skip
    done = lambda key: ups.get(key, left.get(key, float("inf")))  # noqa: E731
    free = {p: max([done((e, p)) for e in sampled if e < r and p in sampled[e]], default=-math.inf) for p in sampled[r]}
    return {p: at - sent for p, at in free.items() if at > sent}


def round_rows(report: dict, cfg) -> list[dict]:
    """Per round: sampled partitions, the late ones, measured and predicted seconds (closing at the replies that
    came in time, as the round did), wasted download bytes in the ledger and what those nodes' relays carried
    for those downloads (each one's whole burst, wire bytes: HTTP and object framing on top of the payload)."""
    ids = {n["node_id"]: n["partition"] for n in report["nodes"]}
    from fedbandwidth.ledger import Ledger

    ledger = Ledger.from_csv(WORK / "ledger.csv").transfers
    bursts = {(t["round"], t["node"], t["direction"]): t["bytes"] for t in report["timing"] if t["bytes"]}
    message, sent = report["model"]["message_payload_bytes"], sent_seconds(WORK / "timeline.csv")
    by_round = {r["round"]: sorted(ids[t.node_id] for t in ledger if t.round == r["round"] and t.direction == "down")
                for r in report["rounds"]}  # fmt: skip
    rows = []
    for r in report["rounds"]:
        sampled = by_round[r["round"]]
        in_time = {ids[t.node_id] for t in ledger if t.round == r["round"] and t.direction == "up" and not t.late}
        late = [p for p in sampled if p not in in_time]
        busy = busy_seconds(report, by_round, r["round"], sent[r["round"]])
        guess = predicted(cfg, sampled, max(len(in_time), 1), message, busy)
        relays = sum(bursts.get((r["round"], p, "down"), 0) for p in late)  # each whole burst, past the close too
        rows.append(
            {
                "round": r["round"],
                "sampled": sampled,
                "late": late,
                "busy_seconds": {str(p): round(w, 3) for p, w in busy.items()},
                "measured_seconds": r["seconds"],
                "predicted_seconds": round(guess, 3),
                "ratio": round(r["seconds"] / guess, 4),
                "wasted_down_bytes_ledger": message * len(late),
                "late_downloads_relay_bytes": relays,
                "relay_per_ledger": round(relays / (message * len(late)), 4) if late else None,
            }
        )
    return rows


def turnaround_rows(report: dict, cfg) -> list[dict]:
    """Per round and node: its download's last byte to its upload's first, less its compute delay (the
    ClientApp's own turnaround, which plan.py plays from the calibration), with the node's link latency."""
    rows = {(t["round"], t["node"], t["direction"]): t for t in report["timing"] if t["start_seconds"] is not None}
    out = []
    for (r, node, direction), down in sorted(rows.items()):
        up = rows.get((r, node, "up"))
        if direction != "down" or up is None or down["measured_seconds"] is None:
            continue
        seconds = up["start_seconds"] - down["start_seconds"] - down["measured_seconds"] - COMPUTE[node]
        link = cfg.link_of(node)
        out.append({"round": r, "partition": node, "link": link.name, "latency_ms": 1000 * link.latency_seconds,
                    "seconds": round(seconds, 3)})  # fmt: skip
    return out


def main() -> None:
    """Run (or --report) the validation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the deployment (default 4)")
    parser.add_argument("--report", action="store_true", help="print the results file's runs and exit")
    parser.add_argument("--again", action="store_true", help="analyse the last deployment (build/) again, no run")
    args = parser.parse_args()
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    if not args.report:
        started = time.time()
        report, cfg = last_deployment() if args.again else deployed(args.rounds)
        when = {"unix_time": round(started), "load": os.getloadavg()[0]}  # (--again: the run's own, kept)
        if args.again:
            when, runs = {k: runs[-1][k] for k in when}, runs[:-1]
        rows = round_rows(report, cfg)
        ratios = [r["ratio"] for r in rows if r["round"] > 1]  # round 1 also fetches the app, starts processes
        runs.append(
            {
                **when,
                "links": LINKS,
                "server_link": SERVER_LINK,
                "compute_seconds": COMPUTE,
                "calibration": predicting_calibration(cfg),
                "wasted_bytes": report["wasted_bytes"],
                "rounds": rows,
                "turnarounds": turnaround_rows(report, cfg),
                "median_ratio_from_round_2": statistics.median(ratios) if ratios else None,
            }
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(runs, indent=2) + "\n")
    for run in runs:
        print(
            f"run at {time.strftime('%Y-%m-%d %H:%M', time.gmtime(run['unix_time']))} (load {run['load']:.1f}), "
            f"calibration: {run['calibration']}; median measured/predicted from round 2: "
            f"{run['median_ratio_from_round_2']}; wasted (ledger) {run['wasted_bytes']}"
        )
        for r in run["rounds"]:
            print(
                f"  round {r['round']}: sampled {r['sampled']}, late {r['late']}: {r['measured_seconds']} s measured, "
                f"{r['predicted_seconds']} s predicted; late downloads {r['wasted_down_bytes_ledger']:,} B, "
                f"their relays {r['late_downloads_relay_bytes']:,} B"
                + (f" (x{r['relay_per_ledger']})" if r.get("relay_per_ledger") else "")
            )


if __name__ == "__main__":
    main()
