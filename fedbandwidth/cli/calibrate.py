"""``fedbandwidth calibrate``: measure this machine's costs of moving a model through Flower, on loopback.

One small deployment of two SuperNodes (perturbing no-op clients so every byte goes up), rounds 2 and 3 sampling
one node and rounds 1 and 4 both, each model message timed at its relay; transfer.py's schedule solved for the
request time per direction (messages alone) and the SuperLink's share per other node (two at once), per message,
medians kept; then a ClientApp's imports, timed at rest. Written as JSON to --out (default: the user's cache,
where `deploy` looks; calibration.py). Exit codes: 0 written, 1 the deployment failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..checks import ConfigError, check_writable
from ..model import known_models
from ..names import DOWN, UP

HELP = "measure this machine's request and SuperLink costs on loopback, for deploy's time predictions"
FAILED = 1
TURNS = ("pickup", "turnaround", "start", "work")  # what a deployment's rounds give, per round and node
ROUNDS, SOLO = 4, "2,3"  # rounds, and those that sample one node: round 1's downloads also fetch the app
UNTIMED = (1, 2)  # downloads not fitted: the app's (1), and one right after a round of two replies (2), which the
# SuperLink and ServerApp are still putting away (seen here: 2.36-2.51 s where a download after one reply took 1.85)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --model, --flower-bin, --json."""
    from ..wire.calibration import default_path

    parser.add_argument("--out", type=Path, default=default_path(), help=f"calibration file (default {default_path()})")
    parser.add_argument(
        "--model", choices=known_models(), default="pythia-14m", help="model moved (default pythia-14m)"
    )
    parser.add_argument("--flower-bin", type=Path, help="folder of the Flower executables (default: next to Python)")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")


def measured(report: dict, untimed: tuple[int, ...] = UNTIMED) -> list[dict]:
    """The timing rows with a measured time, but the downloads of the `untimed` rounds."""
    rows = [t for t in report["timing"] if t["measured_seconds"] is not None]
    return [t for t in rows if not (t["direction"] == DOWN and t["round"] in untimed)]


def solve_message(model: str, link, row: dict, terms) -> float:
    """The x for which transfer.py predicts `row`'s measured seconds with calibration `terms(x)`."""
    from ..wire.calibration import solve
    from ..wire.transfer import message_seconds

    def seconds(x: float) -> float:
        return message_seconds(model, link, row["direction"], nodes=row["nodes_at_once"], calibration=terms(x))

    return solve(seconds, row["measured_seconds"])


def round_turns(report: dict, timeline: Path) -> tuple[list[float], list[float]]:
    """(pickups, turnarounds) of a deployment, per round and node: the round's models pushed -> its download's
    first byte; its download's last byte -> its upload's first byte (no compute: the ClientApp's own time)."""
    import csv

    with timeline.open(newline="") as f:
        events = list(csv.DictReader(f))
    origin = min(float(e["unix_time"]) for e in events if e["event"] == "round_start")
    sent = {int(e["round"]): float(e["unix_time"]) - origin for e in events if e["event"] == "round_sent"}
    rows = {(t["round"], t["node"], t["direction"]): t for t in report["timing"] if t["start_seconds"] is not None}
    pickups, turnarounds = [], []
    for (r, node, direction), down in rows.items():
        up = rows.get((r, node, UP))
        if direction != DOWN or r not in sent or up is None:
            continue
        pickups.append(max(0.0, down["start_seconds"] - sent[r]))
        turnarounds.append(max(0.0, up["start_seconds"] - down["start_seconds"] - down["measured_seconds"]))
    return pickups, turnarounds


def clientapp_turns(report: dict) -> tuple[list[float], list[float]]:
    """(starts, works) of a deployment's ClientApps from round 2 on: its process started -> its app loaded (its
    imports, slowed by the loopback download they overlap, its pull, the app installed and loaded: kept for the
    record); its app loaded -> its upload's first byte (run, reply, the SuperNode's poll; no compute here)."""
    rows = {(t["round"], t["node"], t["direction"]): t["start_seconds"] for t in report["timing"]}
    starts, works = [], []
    for c in report.get("clientapp", []):
        down, up = rows.get((c["round"], c["node"], DOWN)), rows.get((c["round"], c["node"], UP))
        if c["round"] >= 2 and down is not None and up is not None:
            starts.append(c["loaded"] - c["started"])
            works.append(up - c["loaded"])
    return starts, works


def import_seconds(flower_bin: Path | None = None, runs: int = 2) -> float:
    """What a ClientApp process takes from its start to its first pull, on this machine at rest: the interpreter
    and the modules `flwr-clientapp` imports (the fastest of `runs`; a loaded machine only adds)."""
    import subprocess

    python = flower_bin / "python" if flower_bin and (flower_bin / "python").exists() else Path(sys.executable)
    code = "import flwr.supernode.cli.flwr_clientapp, flwr.supernode.runtime.run_clientapp"
    seconds = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([str(python), "-c", code], check=True)
        seconds.append(time.monotonic() - started)
    return min(seconds)


def fit(model: str, one: list[dict], two: list[dict], loopback: float, made: dict):
    """The Calibration whose schedule reproduces the measured messages: the request time per direction from the
    one-node run, the SuperLink's share per direction from the two-node run (medians of per-message solutions)."""
    from ..wire.calibration import Calibration
    from ..wire.links import LinkProfile

    link = LinkProfile("loopback", loopback, loopback, 0.0)
    if not {t["direction"] for t in one} >= {DOWN, UP} or not {t["direction"] for t in two} >= {DOWN, UP}:
        raise RuntimeError("the deployments left too few timed messages to fit")
    alone = lambda x: Calibration(x, 0, 0)  # noqa: E731  (request(direction) is x both ways)
    request = {d: statistics.median(solve_message(model, link, t, alone) for t in one if t["direction"] == d)
               for d in (DOWN, UP)}  # fmt: skip
    at_once = lambda x: Calibration(request[DOWN], x, x, request_up_seconds=request[UP])  # noqa: E731
    share = {d: statistics.median(solve_message(model, link, t, at_once) for t in two if t["direction"] == d)
             for d in (DOWN, UP)}  # fmt: skip
    turns = made.get("turns", {"pickup": [Calibration.pickup_seconds], "turnaround": [Calibration.turnaround_seconds]})
    work = statistics.median(turns["work"]) if turns.get("work") else None  # files made before: not measured
    return Calibration(request[DOWN], share[DOWN], share[UP], loopback, statistics.median(turns["pickup"]),
                       statistics.median(turns["turnaround"]), request_up_seconds=request[UP],
                       clientapp_start_seconds=made.get("clientapp_import"), clientapp_work_seconds=work,
                       made=made)  # fmt: skip


def deployed(model: str, out: Path, flower_bin: Path | None) -> tuple[dict, tuple]:
    """A loopback deployment of 2 SuperNodes, ROUNDS rounds (SOLO ones sampling one), perturbing clients: (its
    summary, its pickups, turnarounds, ClientApp starts and works)."""
    from ..wire.engine import DeployConfig, deploy
    from ..wire.report import deploy_summary

    cfg = DeployConfig(supernodes=2, rounds=ROUNDS, out=out, model=model, client="perturb", flower_bin=flower_bin,
                       app_config=(("solo-rounds", SOLO),))  # fmt: skip
    report = deploy_summary(deploy(cfg))
    if not report["run"]["status"].endswith("completed"):
        raise RuntimeError(f"the deployment ended {report['run']['status']}")
    return report, {k: list(v) for k, v in zip(TURNS, (*round_turns(report, out / "timeline.csv"),
                                                        *clientapp_turns(report)), strict=True)}  # fmt: skip


def calibrate(model: str, flower_bin: Path | None = None, progress=print):
    """Measure loopback, deploy, time a ClientApp's imports, fit; the Calibration (what it measured in `made`)."""
    from ..wire.calibration import loopback_rate, machine

    started = time.monotonic()
    rate = loopback_rate()
    progress(f"loopback through a relay: {rate / 1e9:.2f} Gbit/s; deploying 2 SuperNodes, {ROUNDS} rounds ...")
    with tempfile.TemporaryDirectory(prefix="fedbandwidth-calibrate-") as tmp:
        report, turns = deployed(model, Path(tmp) / "deploy", flower_bin)
    timed = measured(report)
    one, two = ([t for t in timed if t["nodes_at_once"] == n] for n in (1, 2))
    progress(f"{len(one)} messages alone, {len(two)} two at once; timing a ClientApp's imports ...")
    imports = import_seconds(flower_bin)
    made = {**machine(), "model": model, "seconds": round(time.monotonic() - started, 1), "clientapp_import": imports,
            "messages": {"one_node": [(t["direction"], t["measured_seconds"]) for t in one],
                         "two_nodes": [(t["direction"], t["measured_seconds"]) for t in two]},
            "turns": turns}  # fmt: skip
    return fit(model, one, two, rate, made)


def run(args: argparse.Namespace) -> int:
    """Calibrate, write the file, print what was measured."""
    from ..wire.calibration import CLIENTAPP_TERMS, ROUND_TERMS, TERMS, save
    from ..wire.commands import find_executables

    if args.out.exists() and args.out.is_dir():
        raise ConfigError(f"--out must be a file, got the folder {args.out}")
    check_writable(args.out.parent)
    find_executables(args.flower_bin)
    quiet = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        result = calibrate(args.model, args.flower_bin, quiet)
    except RuntimeError as err:
        print(f"fedbandwidth calibrate: failed: {err}", file=sys.stderr)
        return FAILED
    path = save(result, args.out)
    terms = {k: getattr(result, k) for k in (*TERMS, "request_up_seconds", *ROUND_TERMS, *CLIENTAPP_TERMS)}
    if args.json:
        print(json.dumps({"path": str(path), **terms, "made": result.made}))
    else:
        ms = {k: "not measured" if v is None else f"{1000 * v:.2f} ms" for k, v in terms.items()}
        print(f"request {ms['request_seconds']} down / {ms['request_up_seconds']} up, SuperLink share "
              f"{ms['superlink_down_seconds']} down / "
              f"{ms['superlink_up_seconds']} up per other node, pickup {ms['pickup_seconds']}, ClientApp turnaround "
              f"{ms['turnaround_seconds']} (start {ms['clientapp_start_seconds']}, "
              f"work {ms['clientapp_work_seconds']}); {result.made['seconds']} s; {path}")  # fmt: skip
    return 0
