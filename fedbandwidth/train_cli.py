"""``fedbandwidth train``: train the real task federatedly, with codecs, and report bytes and held-out loss.

Every argument is checked (TrainConfig) before Ray starts; a bad one is a one-line error, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from .units import format_bytes

# Presets: "ci" is small enough for a test; "study" is one run of benchmarks/compression_study.py.
PRESETS = {
    "ci": {"supernodes": 2, "rounds": 2, "local_steps": 2},
    "study": {"supernodes": 5, "rounds": 6, "local_steps": 3},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` subcommand's arguments (numbers are checked by TrainConfig, before any work)."""
    from .cli import _typed
    from .config import BACKENDS, check_count, check_fraction

    parser.add_argument("--preset", choices=PRESETS, default="ci", help="defaults for the sizes below")
    parser.add_argument("--supernodes", type=_typed(check_count), help="simulated clients")
    parser.add_argument("--rounds", type=_typed(check_count), help="federated rounds")
    parser.add_argument("--local-steps", type=_typed(check_count), help="optimizer steps a client takes a round")
    parser.add_argument("--up-codec", default="none", help="uplink codec chain, e.g. delta+topk:0.01+int8")
    parser.add_argument("--down-codec", default="none", help="downlink codec chain, e.g. fp16")
    parser.add_argument("--fraction", type=_typed(check_fraction), default=1.0,
                        help="fraction of nodes sampled for training each round, in (0, 1]")
    parser.add_argument("--partitioning", choices=("iid", "topic"), default="iid",
                        help="iid sequences, or whole topics per client (non-IID)")
    parser.add_argument("--backend", choices=BACKENDS, default="inprocess",
                        help="Simulation Engine backend: inprocess (threads, default) or ray")
    parser.add_argument("--out", type=Path, default=Path("build/train"), help="folder for ledger.csv, summary.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    parser.add_argument("--verbose", action="store_true", help="show Flower's own log lines")


def config_from_args(args: argparse.Namespace):
    """A checked TrainConfig from the arguments and the preset (ConfigError if any is bad)."""
    from .train_app import TrainConfig

    sizes = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in PRESETS[args.preset].items()}
    return TrainConfig(up_codec=args.up_codec, down_codec=args.down_codec, fraction=args.fraction,
                       partitioning=args.partitioning, backend=args.backend, **sizes)


def train_summary(result, seconds: float, files: dict) -> dict:
    """The run as a JSON-ready dict: the keys of `simulate`'s summary plus held-out losses."""
    from .train_app import uncompressed_message_bytes

    table = result.ledger.per_round()
    rounds = [{**{k: int(row[k]) for k in ("round", "nodes", "down_bytes", "up_bytes", "total_bytes")},
               "eval_loss": result.eval_loss.get(int(row["round"]))} for _, row in table.iterrows()]
    config = asdict(result.config)
    uncompressed = uncompressed_message_bytes() * sum(r["nodes"] for r in rounds)
    up = result.ledger.total_bytes("up")
    return {"model": {"name": "pythia-14m", "uncompressed_message_bytes": uncompressed_message_bytes()},
            "config": config, "rounds": rounds,
            "down_bytes": result.ledger.total_bytes("down"), "up_bytes": up,
            "total_bytes": result.ledger.total_bytes(), "uncompressed_up_bytes": uncompressed,
            "up_compression": round(uncompressed / up, 2) if up else None,
            "initial_eval_loss": result.eval_loss.get(0), "final_eval_loss": result.final_eval_loss,
            "wall_seconds": round(seconds, 2), "files": {k: str(v) for k, v in files.items()}}


def render_text(report: dict) -> str:
    """One line per round (bytes down/up, held-out loss), then totals."""
    lines = [f"{'round':>5} {'nodes':>5} {'down bytes':>14} {'up bytes':>14} {'eval loss':>10}"]
    for r in report["rounds"]:
        lines.append(f"{r['round']:>5} {r['nodes']:>5} {r['down_bytes']:>14,} {r['up_bytes']:>14,} "
                     f"{r['eval_loss']:>10.4f}")
    lines += [f"down {format_bytes(report['down_bytes'])}",
              f"up   {format_bytes(report['up_bytes'])}  ({report['up_compression']}x fewer than float32)",
              f"held-out loss {report['initial_eval_loss']:.4f} -> {report['final_eval_loss']:.4f}; "
              f"wall time {report['wall_seconds']:.1f} s"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Check everything, train, print the table or JSON, write ledger.csv and summary.json."""
    from .cli import check_writable
    from .ledger import Ledger
    from .logs import setup_logging

    cfg = config_from_args(args)
    out = check_writable(args.out)
    setup_logging(logging.INFO if args.verbose else logging.ERROR)
    from .train_app import train

    started = time.perf_counter()
    result = train(cfg, Ledger(csv_path=out / "ledger.csv"))
    report = train_summary(result, time.perf_counter() - started, {"ledger_csv": out / "ledger.csv"})
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report) if args.json else render_text(report))
    return 0
