"""The SecAgg+ options `simulate` and `predict` share, and `simulate --secagg` itself (a run, metered at the Grid)."""

from __future__ import annotations

import argparse
import json
import logging
import time

from ..checks import ConfigError, check_count, check_writable
from .args import typed

SECAGG_DEFAULTS = {"shares": 3, "threshold": 2, "clipping": 8.0, "quantization": 2**22, "modulus": 2**32}  # Flower's


def add_secagg_arguments(parser: argparse.ArgumentParser) -> None:
    """--secagg and its settings (Flower's SecAggPlusWorkflow defaults), and --secagg-pack."""
    d = SECAGG_DEFAULTS
    parser.add_argument(
        "--secagg", action="store_true", help="secure aggregation: Flower's SecAgg+ (legacy API), bytes per stage"
    )
    parser.add_argument(
        "--secagg-shares", type=typed(check_count), default=d["shares"], help="SecAgg+ num_shares (default 3)"
    )
    parser.add_argument(
        "--secagg-threshold",
        type=typed(check_count),
        default=d["threshold"],
        help="reconstruction_threshold (default 2)",
    )
    parser.add_argument(
        "--secagg-clipping-range", type=float, default=d["clipping"], help="clipping_range (default 8.0)"
    )
    parser.add_argument(
        "--secagg-quantization-range", type=int, default=d["quantization"], help="quantization_range (default 2**22)"
    )
    parser.add_argument("--secagg-modulus-range", type=int, default=d["modulus"], help="modulus_range (default 2**32)")
    parser.add_argument(
        "--secagg-pack", action="store_true", help="with --secagg: the masked vector in the bytes its modulus needs"
    )


def secagg_config(args: argparse.Namespace):
    """The SecAggConfig the arguments ask for (None without --secagg); ConfigError names a bad one."""
    from ..privacy.secagg import SecAggConfig

    if args.secagg_pack and not args.secagg:
        raise ConfigError("--secagg-pack needs --secagg")
    if not args.secagg:
        return None
    if args.fraction != 1.0 or args.fraction_evaluate != 0.0:
        raise ConfigError("--fraction must be 1.0 and --fraction-evaluate 0.0 with --secagg (every node aggregates)")
    return SecAggConfig(
        args.supernodes,
        args.rounds,
        args.secagg_shares,
        args.secagg_threshold,
        args.secagg_clipping_range,
        args.secagg_quantization_range,
        args.secagg_modulus_range,
        args.secagg_pack,
        api=args.api,
    )


def with_secagg(report: dict, cfg, specs) -> dict:
    """`predict --secagg`: the forecast with SecAgg+'s stages, its totals and the 2 GiB ceiling added."""
    from ..privacy.forecast import secagg_forecast

    secagg = secagg_forecast(cfg, specs)
    stages = secagg.pop("stages")
    secagg["total_bytes"] = secagg["down_bytes"] + secagg["up_bytes"]
    return {**report, "secagg": secagg, "stages": stages}


def render_secagg(report: dict) -> str:
    """Text lines for a report's SecAgg+ part (stages, totals, the ceiling)."""
    from ..privacy.stages import render_stages
    from ..units import format_bytes

    s = report["secagg"]
    verdict = "over it: a run is refused" if s["over_ceiling"] else "under it"
    return "\n".join(
        [
            f"SecAgg+ (shares {s['secagg']['shares']}, threshold {s['secagg']['threshold']}, "
            f"modulus {s['secagg']['modulus_range']:,}{', packed' if s['secagg']['pack'] else ''}):",
            *render_stages(report["stages"]),
            f"down  {format_bytes(s['down_bytes'])}",
            f"up    {format_bytes(s['up_bytes'])}",
            f"one masked upload {format_bytes(s['upload_message_bytes'])}; Flower's gRPC ceiling "
            f"{format_bytes(s['ceiling_bytes'])}: {verdict}",
        ]
    )


def run_secagg_simulation(args: argparse.Namespace, cfg) -> int:
    """`simulate --secagg`: check the ceiling, run, write ledger.csv and summary.json, print stages or JSON."""
    from ..architecture import model_specs, zero_arrays
    from ..ledger import Ledger
    from ..logs import setup_logging
    from ..model import known_models, random_arrays
    from ..privacy.forecast import check_ceiling, secagg_settings
    from ..privacy.secagg import run_secagg, run_stages, secagg_plan
    from ..report import ledger_summary, write_summary

    specs = model_specs(args.model)
    check_ceiling(secagg_plan(cfg, specs))
    out = check_writable(args.out)
    setup_logging(logging.INFO if args.verbose else logging.ERROR)
    ledger = Ledger(csv_path=out / "ledger.csv")
    arrays = random_arrays(args.model) if args.model in known_models() else zero_arrays(specs)
    started = time.perf_counter()
    ledger, _ = run_secagg(cfg, arrays, ledger)
    stages = run_stages(cfg, ledger, specs)
    config = {"supernodes": cfg.supernodes, "rounds": cfg.rounds, "api": cfg.api, "secagg": secagg_settings(cfg)}
    summary = ledger_summary(ledger, time.perf_counter() - started, {"ledger_csv": ledger.csv_path})
    report = write_summary({"model": {"name": args.model}, "config": config, "stages": stages, **summary}, out)
    print(json.dumps(report) if args.json else render_measured(report))
    return 0


def render_measured(report: dict) -> str:
    """`simulate --secagg` as text: the stages measured next to the formula, then the totals."""
    from ..privacy.stages import render_stages
    from ..units import format_bytes

    exact = all(r["bytes"] == r["predicted_bytes"] for r in report["stages"])
    return "\n".join(
        [
            *render_stages(report["stages"]),
            f"down  {format_bytes(report['down_bytes'])}",
            f"up    {format_bytes(report['up_bytes'])}",
            f"measured {'=' if exact else '!='} the formula, every stage; ledger: {report['files']['ledger_csv']}",
        ]
    )
