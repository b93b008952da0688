"""``fedbandwidth deploy``: run the Flower App on a local Deployment Engine and put wire bytes next to payload bytes.

Every argument (executables, port, certificates, --out) is checked before any process starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..checks import check_count, check_writable
from .args import add_output_arguments, add_size_arguments, typed

HELP = "run on a local Deployment Engine and measure wire bytes"
FAILED = 1  # exit code of a deployment that ran but did not complete


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fedbandwidth deploy` options."""
    add_size_arguments(parser, "SuperNode processes")
    parser.add_argument(
        "--tls", action="store_true", help="TLS with a throw-away CA and server certificate made for this run"
    )
    parser.add_argument(
        "--certs",
        type=Path,
        default=None,
        help="folder with ca.crt, server.pem, server.key to use instead (implies --tls)",
    )
    parser.add_argument(
        "--port",
        type=typed(check_count, minimum=0),
        default=0,
        help="SuperLink port on 127.0.0.1 (default 0: a free port from the OS)",
    )
    parser.add_argument(
        "--round-timeout",
        type=typed(check_count),
        default=120,
        help="seconds the server waits for a round's replies (default 120)",
    )
    parser.add_argument(
        "--flower-bin",
        type=Path,
        default=None,
        help="folder of flower-superlink, flower-supernode, flwr (default: next to Python, then PATH)",
    )
    add_output_arguments(parser, "build/deploy", "ledger.csv, timeline.csv, logs/, certs/, summary.json")


def config_from_args(args: argparse.Namespace):
    """A checked DeployConfig: executables found, port free, certificates readable, --out writable."""
    from ..wire.commands import find_executables
    from ..wire.engine import DeployConfig
    from ..wire.processes import check_port_free
    from ..wire.tls import check_tls_files, tls_files_in

    cfg = DeployConfig(
        supernodes=args.supernodes,
        rounds=args.rounds,
        fraction=args.fraction,
        tls=args.tls,
        out=args.out,
        port=args.port,
        certs=args.certs,
        flower_bin=args.flower_bin,
        round_timeout=args.round_timeout,
    )
    find_executables(cfg.flower_bin)
    check_writable(cfg.out)
    if cfg.port:
        check_port_free(cfg.port)
    if cfg.certs is not None:
        check_tls_files(tls_files_in(cfg.certs))
    return cfg


def run(args: argparse.Namespace) -> int:
    """Check, deploy, print the table or JSON (summary.json is written by the report)."""
    from ..wire.engine import deploy
    from ..wire.processes import DeployError
    from ..wire.report import deploy_summary, render_deploy_text

    cfg = config_from_args(args)
    try:
        report = deploy_summary(deploy(cfg))
    except DeployError as err:
        print(f"fedbandwidth deploy: failed: {err}", file=sys.stderr)
        return FAILED
    print(json.dumps(report) if args.json else render_deploy_text(report))
    return 0 if report["run"]["status"].endswith("completed") else FAILED
