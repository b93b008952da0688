"""``fedbandwidth calibrate``: measure this machine's costs of moving a model through Flower, on loopback.

Two small deployments (one SuperNode, then two at once; perturbing no-op clients so every byte goes up),
each model message timed at its relay; transfer.py's schedule solved for the request time (one node) and the
SuperLink's share per other node (two), per message, medians kept. Written as JSON to --out (default: the
user's cache, where `deploy` looks; calibration.py). Exit codes: 0 written, 1 a deployment failed, 2 bad input.
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
ROUNDS = 2  # per deployment: round 2's download is a node's second (no app fetched with it)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --model, --flower-bin, --json."""
    from ..wire.calibration import default_path

    parser.add_argument("--out", type=Path, default=default_path(), help=f"calibration file (default {default_path()})")
    parser.add_argument(
        "--model", choices=known_models(), default="pythia-14m", help="model moved (default pythia-14m)"
    )
    parser.add_argument("--flower-bin", type=Path, help="folder of the Flower executables (default: next to Python)")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")


def measured(report: dict, skip_first_download: bool = True) -> list[dict]:
    """The timing rows with a measured time (a node's first download, which also fetches the app, left out)."""
    rows = [t for t in report["timing"] if t["measured_seconds"] is not None]
    return [t for t in rows if not (skip_first_download and t["direction"] == DOWN and t["round"] == 1)]


def solve_message(model: str, link, row: dict, terms) -> float:
    """The x for which transfer.py predicts `row`'s measured seconds with calibration `terms(x)`."""
    from ..wire.calibration import solve
    from ..wire.transfer import message_seconds

    def seconds(x: float) -> float:
        return message_seconds(model, link, row["direction"], nodes=row["nodes_at_once"], calibration=terms(x))

    return solve(seconds, row["measured_seconds"])


def fit(model: str, one: list[dict], two: list[dict], loopback: float, made: dict):
    """The Calibration whose schedule reproduces the measured messages: request time from the one-node run,
    the SuperLink's share per direction from the two-node run (medians of per-message solutions)."""
    from ..wire.calibration import Calibration
    from ..wire.links import LinkProfile

    link = LinkProfile("loopback", loopback, loopback, 0.0)
    if not one or not {t["direction"] for t in two} >= {DOWN, UP}:
        raise RuntimeError("the deployments left too few timed messages to fit")
    request = statistics.median(solve_message(model, link, t, lambda x: Calibration(x, 0, 0)) for t in one)
    at_once = lambda x: Calibration(request, x, x)  # noqa: E731
    share = {d: statistics.median(solve_message(model, link, t, at_once) for t in two if t["direction"] == d)
             for d in (DOWN, UP)}  # fmt: skip
    return Calibration(request, share[DOWN], share[UP], loopback, made=made)


def deployed(model: str, nodes: int, out: Path, flower_bin: Path | None) -> dict:
    """A loopback deployment of `nodes` SuperNodes, ROUNDS rounds, perturbing clients: its summary."""
    from ..wire.engine import DeployConfig, deploy
    from ..wire.report import deploy_summary

    cfg = DeployConfig(supernodes=nodes, rounds=ROUNDS, out=out, model=model, client="perturb", flower_bin=flower_bin)
    report = deploy_summary(deploy(cfg))
    if not report["run"]["status"].endswith("completed"):
        raise RuntimeError(f"the {nodes}-node deployment ended {report['run']['status']}")
    return report


def calibrate(model: str, flower_bin: Path | None = None, progress=print):
    """Measure loopback, deploy one node then two, fit; the Calibration (with what it measured in `made`)."""
    from ..wire.calibration import loopback_rate, machine

    started = time.monotonic()
    rate = loopback_rate()
    progress(f"loopback through a relay: {rate / 1e9:.2f} Gbit/s; deploying 1 SuperNode, then 2 ...")
    with tempfile.TemporaryDirectory(prefix="fedbandwidth-calibrate-") as tmp:
        one = measured(deployed(model, 1, Path(tmp) / "one", flower_bin))
        progress(f"1 SuperNode: {len(one)} messages timed; deploying 2 ...")
        two = measured(deployed(model, 2, Path(tmp) / "two", flower_bin))
    made = {**machine(), "model": model, "seconds": round(time.monotonic() - started, 1),
            "messages": {"one_node": [(t["direction"], t["measured_seconds"]) for t in one],
                         "two_nodes": [(t["direction"], t["measured_seconds"]) for t in two]}}  # fmt: skip
    return fit(model, one, two, rate, made)


def run(args: argparse.Namespace) -> int:
    """Calibrate, write the file, print what was measured."""
    from ..wire.calibration import save
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
    terms = {k: getattr(result, k) for k in ("request_seconds", "superlink_down_seconds", "superlink_up_seconds")}
    if args.json:
        print(json.dumps({"path": str(path), **terms, "made": result.made}))
    else:
        ms = {k: f"{1000 * v:.2f} ms" for k, v in terms.items()}
        print(f"request {ms['request_seconds']}, SuperLink share {ms['superlink_down_seconds']} down / "
              f"{ms['superlink_up_seconds']} up per other node; {result.made['seconds']} s; {path}")  # fmt: skip
    return 0
