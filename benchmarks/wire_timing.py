"""Predicted vs measured time of every model message on every built-in link profile, insecure and TLS.

One emulated deployment per (profile, TLS) with a single SuperNode (so no other node shares this machine's
two cores; ``--nodes 2`` puts two on the profile), 2 rounds, the perturbing client: 4 model messages each.
pythia-14m where the model predicts a message takes at most a minute on the link, else the toy tiny-gptneox
(1.85 MB a message). Each run's timing entries are appended to results/wire_timing.json as it finishes (a
rerun skips what is there), so the sweep can run in chunks, each under the CPU lock. A sweep has a name
(`--sweep`) and is predicted with the calibration it ran under (`--calibration F`, else the default path's,
else the built-in terms; kept in the results file by sweep), so two sweeps an hour apart stand side by side:

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/wire_timing.py --sweep A --calibration F --profiles 4G,5G
    .venv/bin/python benchmarks/wire_timing.py --report      # the table, from the results file
    .venv/bin/python benchmarks/wire_timing.py --refit       # ... each calibration refitted by today's `calibrate`
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "wire_timing.json"
WORK = BENCH_DIR.parent / "build" / "bench_wire"
FIRST_SWEEP = "2026-11 built-in"  # the entries measured before sweeps had names (built-in CPU terms)
MINUTE = 60.0  # a message predicted longer than this on a link gets the smaller model
SMALL_MODEL = "tiny-gptneox"


def model_for(link) -> str:
    """pythia-14m if the model predicts each of its messages takes at most a minute on `link`, else the toy."""
    from fedbandwidth.names import DOWN, UP
    from fedbandwidth.wire.transfer import message_seconds

    slowest = max(message_seconds("pythia-14m", link, d) for d in (DOWN, UP))
    return "pythia-14m" if slowest <= MINUTE else SMALL_MODEL


def run_one(profile: str, tls: bool, rounds: int, repeat: int = 0, nodes: int = 1, sweep: str = "") -> tuple:
    """One emulated deployment, `nodes` SuperNodes on the profile; its timing and kernel entries, tagged."""
    from fedbandwidth.wire.engine import DeployConfig, deploy
    from fedbandwidth.wire.links import PROFILES
    from fedbandwidth.wire.report import deploy_summary

    link = PROFILES[profile]
    model = model_for(link)
    out = WORK / f"{profile.replace(' ', '_')}-{'tls' if tls else 'insecure'}-{nodes}-{repeat}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = DeployConfig(supernodes=nodes, rounds=rounds, tls=tls, out=out, model=model, links=(link,), round_timeout=600)
    report = deploy_summary(deploy(cfg))
    if not report["run"]["status"].endswith("completed"):
        raise RuntimeError(f"{profile} tls={tls}: {report['run']['status']}")
    tags = {
        "sweep": sweep,
        "unix_time": round(time.time()),
        "profile": profile,
        "tls": tls,
        "model": model,
        "nodes": nodes,
        "repeat": repeat,
        "load": os.getloadavg()[0],
    }
    return [{**tags, **t} for t in report["timing"]], [{**tags, **k} for k in report["kernel"]]


def load(key: str = "entries"):
    """The timing entries (or, key="kernel", the kernel-vs-relay entries; "calibrations", each sweep's) so far."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if key == "calibrations":
        return data.get(key, {})
    return [{"sweep": FIRST_SWEEP, **e} for e in data.get(key, [])]


def calibration_of(sweep: str, calibrations: dict):
    """The calibration `sweep` is predicted with: the one kept for it (terms this checkout's model has), else the
    built-in terms."""
    from dataclasses import fields

    from fedbandwidth.wire.calibration import Calibration

    kept, terms = calibrations.get(sweep), {f.name for f in fields(Calibration)} - {"made"}
    return Calibration(**{k: v for k, v in kept.items() if k in terms}) if kept else Calibration()


def refitted(calibrations: dict) -> dict:
    """Each kept calibration refitted by this checkout's `calibrate` fit, from the loopback messages it stored."""
    from dataclasses import asdict

    from fedbandwidth.cli.calibrate import fit

    out = {}
    for sweep, kept in calibrations.items():
        rows = {n: [{"direction": d, "nodes_at_once": n, "measured_seconds": s} for d, s in kept["made"]["messages"][k]]
                for n, k in ((1, "one_node"), (2, "two_nodes"))}  # fmt: skip
        again = fit(kept["made"]["model"], rows[1], rows[2], kept["loopback_bits_per_second"], kept["made"])
        out[sweep] = {k: v for k, v in asdict(again).items() if k != "source"}
    return out


def measured_and_refitted(sweeps: str) -> tuple[list[dict], dict]:
    """The measured entries of `sweeps`, and their kept calibrations refitted by this checkout's fit."""
    kept = load("calibrations")
    entries = [e for e in load() if e["sweep"] in sweeps and e["measured_seconds"] is not None]
    return entries, refitted({s: kept[s] for s in sweeps if s in kept})


def save(entries: list[dict], kernel: list[dict], calibrations: dict) -> None:
    """Write the timing and kernel entries and each sweep's calibration with the machine facts."""
    import flwr

    facts = {
        "cpus": os.cpu_count(),
        "flwr": flwr.__version__,
        "kernel": os.uname().release,
        "conditions": "each run under flock /work/coord/cpu.lock (no other CPU-heavy job on the 2 cores); "
        "load = 1-minute load average as the run ended, its own processes included",
    }
    data = {"machine": facts, "calibrations": calibrations, "entries": entries, "kernel": kernel}
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")


def repredict(entries: list[dict], calibrations: dict) -> list[dict]:
    """Each entry's prediction by the model as it is now, with its sweep's calibration (measurements unchanged)."""
    import tempfile

    from fedbandwidth.names import DOWN
    from fedbandwidth.wire.commands import stage_app
    from fedbandwidth.wire.links import PROFILES
    from fedbandwidth.wire.timing import fab_bytes
    from fedbandwidth.wire.transfer import message_seconds

    with tempfile.TemporaryDirectory() as folder:
        app = fab_bytes(stage_app(Path(folder) / "app"))
    for e in entries:
        first, nodes = e["round"] == 1 and e["direction"] == DOWN, e.get("nodes", 1)
        calibration = calibration_of(e["sweep"], calibrations)
        seconds = message_seconds(e["model"], PROFILES[e["profile"]], e["direction"], first, app, nodes, calibration)
        e.update(predicted_seconds=round(seconds, 4), nodes_at_once=nodes)
    return entries


def error(entry: dict) -> float:
    """measured / predicted - 1."""
    return entry["measured_seconds"] / entry["predicted_seconds"] - 1


def report(entries: list[dict]) -> str:
    """One line per message, then the worst error per profile, TLS mode and number of nodes."""
    lines = [
        f"{'profile':>15} {'tls':>5} {'n':>1} {'model':>12} {'rnd':>3} {'dir':>4} {'bytes':>11} {'formula s':>9} "
        f"{'predicted s':>11} {'measured s':>10} {'error':>7}"
    ]
    groups: dict[tuple, list[float]] = {}
    for e in entries:
        if e["measured_seconds"] is None:  # no burst of this node and direction matched the ledger's message
            lines.append(f"{e['profile']:>15} {str(e['tls']):>5} round {e['round']} {e['direction']}: not measured")
            continue
        lines.append(
            f"{e['profile']:>15} {str(e['tls']):>5} {e.get('nodes', 1):>1} {e['model']:>12} {e['round']:>3} "
            f"{e['direction']:>4} {e['bytes']:>11,} {e['formula_seconds']:>9.2f} {e['predicted_seconds']:>11.2f} "
            f"{e['measured_seconds']:>10.2f} {error(e):>+7.1%}"
        )
        groups.setdefault(group_of(e), []).append(error(e))
    for key, errors in groups.items():
        missed = sum(1 for e in entries if group_of(e) == key and e["measured_seconds"] is None)
        sweep, profile, tls, nodes, model = key
        lines.append(
            f"[{sweep}] {profile} tls={tls} nodes={nodes} {model}: {len(errors)} messages measured"
            f"{f' ({missed} not)' if missed else ''}, error {min(errors):+.1%} .. "
            f"{max(errors):+.1%}{'' if max(map(abs, errors)) <= 0.1 else '  (beyond 10%)'}"
        )
    return "\n".join(lines)


def group_of(entry: dict) -> tuple:
    """The (sweep, profile, TLS, nodes, model) an entry's error range is reported for."""
    return entry["sweep"], entry["profile"], entry["tls"], entry.get("nodes", 1), entry["model"]


def kernel_report(kernel: list[dict]) -> str:
    """The worst gap between the kernel's bytes (less 66 B a frame) and the relay's, over every node and way."""
    if not kernel:
        return "kernel vs relay: nothing measured yet"
    worst = max(kernel, key=lambda k: abs(k["unexplained"]))
    return (
        f"kernel vs relay: {len(kernel)} (run, node, direction) counts; worst unexplained {worst['unexplained']:+.4%} "
        f"({worst['profile']}, tls={worst['tls']}, {worst['direction']}: kernel {worst['kernel_bytes']:,} B in "
        f"{worst['kernel_frames']:,} frames, relay {worst['relay_bytes']:,} B; goal: within 0.5%)"
    )


def turnarounds(entries: list[dict]) -> list[dict]:
    """Per node and round of every sweep that timed both of its messages: its download's seconds and its
    turnaround (download done -> upload starting; these clients compute nothing)."""
    pairs: dict[tuple, dict] = {}
    for e in entries:
        if e.get("start_seconds") is not None and e["measured_seconds"] is not None:
            pairs.setdefault((*group_of(e), e["repeat"], e["round"], e["node"]), {})[e["direction"]] = e
    return [{"group": key[:5], "down_seconds": p["down"]["measured_seconds"],
             "seconds": p["up"]["start_seconds"] - p["down"]["start_seconds"] - p["down"]["measured_seconds"]}
            for key, p in pairs.items() if len(p) == 2]  # fmt: skip


def turnaround_report(entries: list[dict], path: Path, sweeps: tuple[str, ...] = ("F", "G", "H", "I", "K")) -> str:
    """Measured turnarounds per sweep, profile, TLS and nodes, next to what calibration `path` predicts for
    downloads of their length (the ClientApp's retries, turnaround.py) and its constant turnaround."""
    import numpy as np

    from fedbandwidth.wire.calibration import load as load_calibration
    from fedbandwidth.wire.transfer import message_bytes

    calibration, groups = load_calibration(path), {}
    for t in turnarounds(entries):
        groups.setdefault(t["group"], []).append(t)
    lines = [f"turnarounds predicted with {calibration.source} (constant: {calibration.turnaround_seconds:.2f} s)"]
    for (sweep, profile, tls, nodes, model), rows in sorted(groups.items()):
        down, seconds = (np.array([r[k] for r in rows]) for k in ("down_seconds", "seconds"))
        predicted = calibration.turnaround(down, message_bytes=message_bytes(model))
        lines.append(f"[{sweep}] {profile:>14} tls={tls!s:5} nodes={nodes} {model:>12}: downloads "
                     f"{down.mean():6.2f} s, turnaround measured {seconds.mean():5.2f} s (sd {seconds.std():.2f}), "
                     f"predicted {predicted.mean():5.2f} s")  # fmt: skip
    return "\n".join(lines + [turnaround_errors(turnarounds(entries), calibration, sweeps)])


def turnaround_errors(rows: list[dict], calibration, sweeps: tuple[str, ...]) -> str:
    """Mean absolute error per turnaround of `sweeps`, one node and two: the retries model against the best
    constant (the measured median) and the calibration's own constant."""
    import numpy as np

    from fedbandwidth.wire.transfer import message_bytes

    lines = []
    for nodes in (1, 2):
        mine = [r for r in rows if r["group"][0] in sweeps and r["group"][3] == nodes]
        if not mine:
            continue
        down, seconds = (np.array([r[k] for r in mine]) for k in ("down_seconds", "seconds"))
        sizes = np.array([message_bytes(r["group"][4]) for r in mine])
        model = np.array([calibration.turnaround(d, message_bytes=b) for d, b in zip(down, sizes, strict=True)])
        lines.append(f"sweeps {','.join(sweeps)}, {nodes} node(s), {len(mine)} turnarounds: mean |error| "
                     f"{np.abs(model - seconds).mean():.2f} s (retries model), "
                     f"{np.abs(np.median(seconds) - seconds).mean():.2f} s (best constant), "
                     f"{np.abs(calibration.turnaround_seconds - seconds).mean():.2f} s (its constant)")  # fmt: skip
    return "\n".join(lines)


def run_key(entry: dict) -> tuple:
    """The (profile, TLS, nodes, repeat) of the run an entry came from."""
    return entry["profile"], entry["tls"], entry.get("nodes", 1), entry["repeat"]


def keep(path: Path | None) -> dict:
    """The calibration at `path` (or the default path) as the results file keeps it; it must be a real one."""
    from dataclasses import asdict

    from fedbandwidth.wire.calibration import load as load_calibration

    calibration = load_calibration(path)
    if not Path(calibration.source).exists():
        raise SystemExit("wire_timing: no calibration file; run `fedbandwidth calibrate` or name one (--calibration)")
    return {k: v for k, v in asdict(calibration).items()}


def main(argv=None) -> int:
    """Run what is missing for the chosen profiles and TLS modes; print the table."""
    from fedbandwidth.wire.links import PROFILES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated built-in profiles")
    parser.add_argument("--tls", default="off,on", help="off, on, or off,on")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each profile and TLS mode")
    parser.add_argument("--nodes", type=int, default=1, help="SuperNodes, all on the profile (default 1)")
    parser.add_argument("--report", action="store_true", help="only print the table of the results file")
    parser.add_argument("--again", action="store_true", help="measure again what the results file holds")
    parser.add_argument("--refit", action="store_true", help="print the table with each sweep's calibration refitted")
    parser.add_argument("--sweep", default=FIRST_SWEEP, help="this sweep's name (its runs are kept under it)")
    parser.add_argument("--calibration", type=Path, help="the sweep's calibration file (default: the default path's)")
    parser.add_argument("--turnarounds", type=Path, metavar="CALIBRATION",
                        help="print the turnarounds next to this calibration's prediction and exit")  # fmt: skip
    args = parser.parse_args(argv)
    if args.turnarounds:
        print(turnaround_report(load(), args.turnarounds))
        return 0
    calibrations, kernel = load("calibrations"), load("kernel")
    if args.refit:  # the model as it is now, fitted to the loopback messages each calibration stored; nothing saved
        print(report(repredict(load(), refitted(calibrations))))
        return 0
    if not args.report and args.sweep not in calibrations and args.sweep != FIRST_SWEEP:
        calibrations[args.sweep] = keep(args.calibration)
    entries = repredict(load(), calibrations)
    for profile in [] if args.report else args.profiles.split(","):
        for tls in [mode == "on" for mode in args.tls.split(",")]:
            for repeat in range(args.repeats):
                key = (args.sweep, profile, tls, args.nodes, repeat)
                done = [e for e in entries if (e["sweep"], *run_key(e)) == key]
                if done and not args.again:
                    continue
                fresh, counted = run_one(profile, tls, args.rounds, repeat, args.nodes, args.sweep)
                entries = [e for e in entries if e not in done] + repredict(fresh, calibrations)
                kernel = [k for k in kernel if (k.get("sweep", FIRST_SWEEP), *run_key(k)) != key] + counted
                save(entries, kernel, calibrations)
                print(report(fresh), flush=True)
    if not args.report:  # --report only prints (its predictions are today's model's, not stored)
        save(entries, kernel, calibrations)
    print(report(entries))
    print(kernel_report(kernel))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent))
    sys.exit(main())
