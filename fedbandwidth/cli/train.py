"""``fedbandwidth train``: train the real task federatedly, with codecs, and report bytes and held-out loss.

Every argument is checked (TrainConfig) before the simulation starts; a bad one is a one-line error, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from ..adapters import RULES
from ..checks import check_count, check_writable
from ..compress.task import PARTITIONINGS
from ..compress.training import PRESETS
from ..names import BACKENDS
from .args import add_output_arguments, add_size_arguments, typed

HELP = "train a real model federatedly, with codecs"
# Arguments that default to the preset's value (or TrainConfig's) when not given.
OPTIONAL_KEYS = ("supernodes", "rounds", "local_steps", "lr", "warm_start", "partitioning", "lora_targets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` subcommand's arguments (numbers are checked by TrainConfig, before any work)."""
    parser.add_argument("--preset", choices=PRESETS, default="ci", help="defaults for the sizes below (default ci)")
    add_size_arguments(parser, "simulated clients", supernodes=None, rounds=None)
    parser.add_argument("--local-steps", type=typed(check_count), help="optimizer steps a client takes a round")
    parser.add_argument("--lr", type=float, help="AdamW learning rate of the clients")
    parser.add_argument("--seed", type=typed(check_count, minimum=0), default=0, help="model init, batches (default 0)")
    parser.add_argument(
        "--up-codec",
        default="none",
        help="uplink codec chain, e.g. delta+topk:0.01+int8 or delta+dgc:0.001 (Deep Gradient Compression)",
    )
    parser.add_argument(
        "--down-codec",
        default="none",
        help="downlink codec chain, e.g. fp16, or delta+int8 (the update from the model a client holds)",
    )
    parser.add_argument(
        "--partitioning",
        choices=PARTITIONINGS,
        help="iid sequences, or dirichlet: each client a seeded Dirichlet (alpha 0.5) share of the document groups",
    )
    parser.add_argument(
        "--warm-start", type=typed(check_count, minimum=0), help="pre-train the start until flattened, at most N steps"
    )
    parser.add_argument("--lora-rank", type=typed(check_count), help="train and send LoRA adapters of this rank")
    parser.add_argument("--lora-targets", help="modules that get adapters, e.g. query_key_value,dense")
    parser.add_argument("--lora-rule", choices=RULES, default="ffa", help="adapter averaging: ffa (exact) or fedit")
    parser.add_argument("--target-loss", type=float, help="after --rounds, go on until the held-out loss is this")
    parser.add_argument("--max-rounds", type=typed(check_count), help="rounds at most when chasing --target-loss")
    parser.add_argument(
        "--zeroth-seeds",
        type=typed(check_count),
        help="zeroth-order lever (FedKSeed): K shared seeds; each message carries K scalars (set a small --lr)",
    )
    parser.add_argument("--zeroth-eps", type=float, default=1e-3, help="zeroth-order perturbation scale (default 1e-3)")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="inprocess",
        help="Simulation Engine backend: inprocess (threads, default) or ray",
    )
    add_output_arguments(parser, "build/train", "ledger.csv, summary.json")
    parser.add_argument("--verbose", action="store_true", help="show Flower's own log lines")


def config_from_args(args: argparse.Namespace):
    """A checked TrainConfig from the arguments and the preset (ConfigError if any is bad)."""
    from ..compress.training import TrainConfig

    given = {k: getattr(args, k) for k in OPTIONAL_KEYS if getattr(args, k) is not None}
    return TrainConfig(
        **{**PRESETS[args.preset], **given},
        up_codec=args.up_codec,
        down_codec=args.down_codec,
        fraction=args.fraction,
        seed=args.seed,
        backend=args.backend,
        lora_rank=args.lora_rank,
        lora_rule=args.lora_rule,
        target_loss=args.target_loss,
        max_rounds=args.max_rounds,
        zeroth_seeds=args.zeroth_seeds,
        zeroth_eps=args.zeroth_eps,
    )


def run(args: argparse.Namespace) -> int:
    """Check everything, train, print the table or JSON, write ledger.csv and summary.json."""
    from ..compress.train_report import render_train, train_summary
    from ..compress.training import train
    from ..ledger import Ledger
    from ..logs import setup_logging
    from ..report import write_summary

    cfg = config_from_args(args)
    out = check_writable(args.out)
    setup_logging(logging.INFO if args.verbose else logging.ERROR)
    started = time.perf_counter()
    result = train(cfg, Ledger(csv_path=out / "ledger.csv"))
    files = {"ledger_csv": out / "ledger.csv"}
    report = write_summary(train_summary(result, time.perf_counter() - started, files), out)
    print(json.dumps(report) if args.json else render_train(report))
    return 0
