"""``fedbandwidth deploy``: run the Flower App on a local Deployment Engine and put wire bytes next to payload bytes.

With ``--links`` each SuperNode runs on an emulated host of its own, its link shaped to a profile, and the
report puts the time each model message took next to the time the link model predicts. Every argument
(executables, port, certificates, --out, links and the right to emulate them) is checked before any process
starts. Exit codes: 0 completed, 1 failed, 2 bad input, 3 timed out (torn down; the ledger is kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..app_rounds import check_at_least
from ..checks import ConfigError, check_count, check_writable
from ..model import known_models
from ..names import CLIENTS
from .args import add_output_arguments, add_size_arguments, typed
from .privacy_args import add_secagg_arguments

HELP = "run on a local Deployment Engine and measure wire bytes (and, on emulated links, time)"
FAILED = 1  # exit code of a deployment that ran but did not complete
TIMED_OUT = 3  # exit code of a deployment torn down after --timeout seconds


LINKS_HELP = (
    "emulate a network: each SuperNode on a host of its own, links given in turn, comma-separated: a profile "
    "(3G, 4G, 5G, 'home broadband', Wi-Fi, datacenter) or DOWN/UP/LATENCY in Mbit/s and ms (e.g. 100/20/15); "
    "needs root (default: all on 127.0.0.1, no shaping)"
)
CLIENT_HELP = (
    "the ClientApp: 'perturb' changes every array so every byte goes up; 'echo' sends the model back as it came, "
    "and the SuperLink skips objects it still holds (default perturb)"
)
OPTIONS = [  # flag, argparse keywords: the options besides size and output
    ("--tls", {"action": "store_true", "help": "TLS with a throw-away CA and server certificate made for this run"}),
    ("--certs", {"type": Path, "help": "folder with ca.crt, server.pem, server.key to use instead (implies --tls)"}),
    (
        "--port",
        {
            "type": typed(check_count, minimum=0),
            "default": 0,
            "help": "SuperLink port on 127.0.0.1 (default 0: a free port from the OS)",
        },
    ),
    (
        "--round-timeout",
        {
            "type": typed(check_count),
            "default": 120,
            "help": "seconds the server waits for a round's replies (default 120)",
        },
    ),
    ("--links", {"help": LINKS_HELP}),
    (
        "--server-link",
        {
            "help": "the SuperLink's own link, shared by every node (a profile or DOWN/UP/LATENCY, as --links; "
            "shaped in the relays, so on loopback too)"
        },
    ),
    (
        "--timeout",
        {
            "type": typed(check_count),
            "default": 3600,
            "help": "seconds before the whole run is torn down, exit code 3, ledger kept (default 3600)",
        },
    ),
    ("--client", {"choices": CLIENTS, "default": "perturb", "help": CLIENT_HELP}),
    (
        "--model",
        {
            "choices": known_models(),
            "default": "pythia-14m",
            "help": "architecture whose exact arrays are sent (default pythia-14m)",
        },
    ),
    (
        "--calibration",
        {
            "type": Path,
            "help": "this machine's calibration file for the time predictions (default: where "
            "`fedbandwidth calibrate` writes; without one, the built-in constants)",
        },
    ),
    (
        "--flower-bin",
        {
            "type": Path,
            "help": "folder of flower-superlink, flower-supernode, flwr (default: next to Python, then PATH)",
        },
    ),
]


STRAGGLER_OPTIONS = [  # over-commit, close early, slow nodes: late replies and wasted bytes
    (
        "--over-commit",
        {
            "type": typed(check_at_least, minimum=1.0),
            "default": 1.0,
            "metavar": "X",
            "help": "sample ceil(X * K) nodes a round, K from --fraction (Flower's minimum 2); the round closes at "
            "the K-th reply, later replies are late, their bytes wasted (default 1: no over-commit)",
        },
    ),
    (
        "--close-at",
        {"type": typed(check_count), "metavar": "N", "help": "close each round at this many replies (default: K)"},
    ),
    (
        "--deadline",
        {
            "type": typed(check_at_least, minimum=0.001),
            "metavar": "S",
            "help": "close each round this many seconds after its models went out, whatever came back "
            "(at most --round-timeout; default: none)",
        },
    ),
    (
        "--compute-seconds",
        {
            "metavar": "S1,S2,...",
            "help": "seconds each node's client waits before replying, in turn (e.g. 0,0,8: node 2 straggles)",
        },
    ),
]


AUTH_OPTIONS = [  # who may join
    (
        "--auth",
        {
            "action": "store_true",
            "help": "SuperNode authentication: a key pair per SuperNode, registered with `flwr supernode register`; "
            "the SuperLink lets in no other (needs --tls or --certs)",
        },
    ),
    (
        "--unregistered",
        {
            "type": typed(check_count, minimum=0),
            "default": 0,
            "metavar": "N",
            "help": "also start N SuperNodes with a key nobody registered (with --auth, Flower refuses them)",
        },
    ),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fedbandwidth deploy` options."""
    add_size_arguments(parser, "SuperNode processes")
    for flag, keywords in OPTIONS:
        parser.add_argument(flag, **keywords)
    for flag, keywords in STRAGGLER_OPTIONS:
        parser.add_argument(flag, **keywords)
    for flag, keywords in AUTH_OPTIONS:
        parser.add_argument(flag, **keywords)
    add_secagg_arguments(parser)
    add_output_arguments(parser, "build/deploy", "ledger.csv, timeline.csv, logs/, certs/, summary.json")


def straggler_settings(args: argparse.Namespace) -> dict:
    """DeployConfig's over-commit, close-at, deadline and compute seconds from the flags (ConfigError if bad)."""
    seconds = ()
    if args.compute_seconds:
        try:
            seconds = tuple(float(x) for x in args.compute_seconds.split(","))
        except ValueError:
            raise ConfigError(
                f"--compute-seconds must be comma-separated numbers, got {args.compute_seconds!r}"
            ) from None
    return {
        "over_commit": args.over_commit,
        "close_at": args.close_at or 0,
        "deadline": args.deadline or 0.0,
        "compute_seconds": seconds,
    }


def secagg_run_config(args: argparse.Namespace) -> tuple[tuple[str, object], ...]:
    """The app's SecAgg+ run-config keys from --secagg and its settings, checked as `simulate` checks them."""
    from ..privacy.secagg import SecAggConfig

    if args.secagg_pack and not args.secagg:
        raise ConfigError("--secagg-pack needs --secagg")
    if not args.secagg:
        return ()
    if args.fraction != 1.0:
        raise ConfigError("--fraction must be 1.0 with --secagg (every node aggregates)")
    if args.over_commit != 1.0 or args.close_at or args.deadline or args.compute_seconds:
        raise ConfigError("--secagg: SecAgg+ rounds wait for every node's stages; drop --over-commit, --close-at, "
                          "--deadline and --compute-seconds")  # fmt: skip
    d = SecAggConfig(args.supernodes, args.rounds, args.secagg_shares, args.secagg_threshold,
                     args.secagg_clipping_range, args.secagg_quantization_range, args.secagg_modulus_range,
                     args.secagg_pack)  # fmt: skip
    return (("secagg", True), ("secagg-shares", d.shares), ("secagg-threshold", d.threshold),
            ("secagg-clipping-range", d.clipping_range), ("secagg-quantization-range", d.quantization_range),
            ("secagg-modulus-range", d.modulus_range), ("secagg-pack", d.pack))  # fmt: skip


def secagg_of(cfg):
    """The SecAggConfig a DeployConfig's run config asks for (None without secagg)."""
    from ..privacy.secagg import SecAggConfig

    keys = dict(cfg.app_config)
    if not keys.get("secagg"):
        return None
    fields = ("shares", "threshold", "clipping_range", "quantization_range", "modulus_range", "pack")
    values = [keys[f"secagg-{f.replace('_', '-')}"] for f in fields]
    return SecAggConfig(cfg.supernodes, cfg.rounds, **dict(zip(fields, values, strict=True)))


def with_secagg_stages(report: dict, cfg) -> dict:
    """A SecAgg+ deployment's summary with its stages, measured at the Grid and predicted (summary.json too)."""
    from ..ledger import Ledger
    from ..model import tensor_specs
    from ..privacy.secagg import run_stages
    from ..report import write_summary
    from ..server_app import GRID_LEDGER_CSV

    secagg = secagg_of(cfg)
    if secagg is None:
        return report
    grid = cfg.out / GRID_LEDGER_CSV
    stages = run_stages(secagg, Ledger.from_csv(grid), tensor_specs(cfg.model)) if grid.exists() else []
    config = {"shares": secagg.shares, "threshold": secagg.threshold, "modulus_range": secagg.modulus_range,
              "pack": secagg.pack}  # fmt: skip
    predicted = sum(s["predicted_bytes"] for s in stages)  # SecAgg+'s stages, not plain FedAvg's one exchange
    return write_summary({**report, "secagg": config, "stages": stages, "predicted_bytes": predicted}, cfg.out)


def render_text(report: dict) -> str:
    """The deployment's text report, with SecAgg+'s stages when it ran under it."""
    from ..privacy.stages import render_stages
    from ..wire.report_text import render_deploy_text

    text = render_deploy_text(report)
    if "stages" not in report:
        return text
    same = all(s["bytes"] == s["predicted_bytes"] for s in report["stages"])
    return "\n".join([text, "", f"SecAgg+ stages (Grid meter; formula {'equal' if same else 'DIFFERENT'}):",
                      *render_stages(report["stages"])])  # fmt: skip


def config_from_args(args: argparse.Namespace):
    """A checked DeployConfig: executables found, port free, certificates readable, --out writable."""
    from ..wire.calibration import load as load_calibration
    from ..wire.commands import find_executables
    from ..wire.engine import DeployConfig
    from ..wire.links import parse_link, parse_links
    from ..wire.network import check_emulation
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
        run_timeout=args.timeout,
        model=args.model,
        links=parse_links(args.links) if args.links else (),
        server_link=parse_link(args.server_link) if args.server_link else None,
        client=args.client,
        **straggler_settings(args),
        auth=args.auth,
        unregistered=args.unregistered,
        app_config=secagg_run_config(args),
        calibration=args.calibration,
    )
    find_executables(cfg.flower_bin)
    check_writable(cfg.out)
    if cfg.port:
        check_port_free(cfg.port)
    if cfg.certs is not None:
        check_tls_files(tls_files_in(cfg.certs))
    if cfg.links:
        check_emulation()
    check_deployment_memory(cfg.model, cfg.supernodes)
    load_calibration(cfg.calibration)  # a named file must exist and be one
    return cfg


def check_deployment_memory(model: str, supernodes: int, available: int | None = None) -> None:
    """Refuse (ConfigError, one line) a deployment whose estimated peak exceeds the memory available now."""
    from ..memory import available_memory_bytes, check_fits, estimate_deployment_memory, largest_deployment
    from ..model import tensor_specs
    from ..theory import predict

    message = predict(tensor_specs(model), 1, 1, api="message").message_payload_bytes
    free = available_memory_bytes() if available is None else available
    most = largest_deployment(message, free)
    advice = (
        f"at most {most} SuperNodes of {model} fit here; try fewer --supernodes, or `fedbandwidth simulate` "
        "(one process for every node) or `fedbandwidth predict` (no process at all)"
    )
    check_fits(estimate_deployment_memory(message, supernodes), free, advice)


def run(args: argparse.Namespace) -> int:
    """Check, deploy, print the table or JSON (summary.json is written by the report)."""
    from ..wire.engine import deploy
    from ..wire.processes import DeployError
    from ..wire.report import deploy_summary

    cfg = config_from_args(args)
    try:
        report = with_secagg_stages(deploy_summary(deploy(cfg)), cfg)
    except DeployError as err:
        print(f"fedbandwidth deploy: failed: {err}", file=sys.stderr)
        return FAILED
    print(json.dumps(report) if args.json else render_text(report))
    status = report["run"]["status"]
    if status.startswith("timed out"):
        print(f"fedbandwidth deploy: {status}; torn down, ledger kept in {cfg.out / 'ledger.csv'}", file=sys.stderr)
        return TIMED_OUT
    return 0 if status.endswith("completed") else FAILED
