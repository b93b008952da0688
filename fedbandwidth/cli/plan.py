"""``fedbandwidth plan``: how long each round takes on a fleet of unequal clients, and the bytes stragglers waste."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..checks import ConfigError
from .args import add_size_arguments

HELP = "round times (median, p90), bytes moved and bytes wasted on stragglers, for a fleet of many clients"
SUMMARY = Path("benchmarks/results/compression_summary.json")  # the committed study summary (--study-setting)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `plan` options."""
    parser.add_argument("--fleet", help="a fleet CSV (a row a client) or a mix of profiles, e.g. '4G:0.5,Wi-Fi:0.5'")
    parser.add_argument("--links", help="one link per client, as deploy takes them (an exact fleet)")
    add_size_arguments(parser, "clients in the fleet (for a mix)", supernodes=100)
    parser.add_argument("--model", default="pythia-14m", help="any model predict takes (default pythia-14m)")
    parser.add_argument("--lora-rank", type=int, default=None, help="only LoRA adapters of this rank travel")
    parser.add_argument("--lora-rule", choices=("fedit", "ffa"), default="fedit", help="which adapters travel")
    parser.add_argument("--up-codec", default=None, help="uplink codec chain as train takes it, e.g. delta+int4:64")
    parser.add_argument("--down-codec", default=None, help="downlink codec chain as train takes it, e.g. fp16")
    parser.add_argument("--local-steps", type=int, default=1, help="local steps a client computes a round")
    parser.add_argument("--step-seconds", type=float, default=0.1, help="compute seconds of a local step (default)")
    parser.add_argument("--over-commit", type=float, default=1.0, help="sample x times the clients a round needs")
    parser.add_argument("--deadline", type=float, default=None, help="close a round after S seconds")
    parser.add_argument("--server-link", default=None, help="the server's own link, shared by every client")
    parser.add_argument("--time-model", choices=("objects", "formula"), default="objects",
                        help="objects: how Flower moves a message, object by object (transfer.py, calibrated); "
                             "formula: the course's latency + 8 x bytes / rate (default objects)")  # fmt: skip
    parser.add_argument("--calibration", type=Path, default=None, help="the server machine's calibration file")
    parser.add_argument("--study-setting", default=None, help="plan the study setting's rounds to L* (its summary)")
    parser.add_argument("--trials", type=int, default=200, help="Monte Carlo draws of each round (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--plot", type=Path, default=None, help="write a plot of the rounds to this PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")


def study_rounds(name: str, summary: Path = SUMMARY) -> int:
    """Rounds to L* of a setting of the committed study summary (mean over its seeds, rounded up), or ConfigError."""
    data = json.loads(summary.read_text()) if summary.exists() else {}
    found = [s for r in data.get("regimes", {}).values() for s in r.get("settings", []) if s.get("name") == name]
    rounds = found[0].get("rounds_to_target_mean") if found else None
    if rounds is None:
        known = sorted({s.get("name") for r in data.get("regimes", {}).values() for s in r.get("settings", [])})
        listed = ", ".join(known) or "none yet"
        raise ConfigError(f"--study-setting: {name!r} has no rounds to L* in {summary} (settings there: {listed})")
    return int(-(-float(rounds) // 1))


def message_bytes(args: argparse.Namespace) -> tuple[int, tuple[int, ...]]:
    """(payload bytes, objects) of one train message of the model (or its adapters), as predict forecasts it."""
    import numpy as np

    from ..adapters import LoraSpec
    from ..forecast import ForecastConfig, forecast, message_specs
    from ..payload import npy_header_length
    from ..shapes import default_targets
    from ..wire.transfer import array_objects

    lora = None if args.lora_rank is None else LoraSpec(args.lora_rank, default_targets(args.model))
    cfg = ForecastConfig(args.model, lora=lora, api="message", lora_rule=args.lora_rule)
    specs = message_specs(cfg)
    objects = array_objects([npy_header_length(s.shape, s.dtype) + s.numel * np.dtype(s.dtype).itemsize for s in specs])
    return forecast(cfg)["message"]["payload_bytes"], objects


MAX_CODEC_PARAMETERS = 500_000_000  # a codec's bytes are counted on an encoded random model of this size at most


def codec_message(model: str, text: str, where: str) -> tuple[int, tuple[int, ...]]:
    """(payload bytes, objects) of one message of `model` encoded with the codec chain `text` (as train counts
    them), from a random model of its exact shapes (a sparsifier's steady-state density: DGC's warm-up is not
    planned)."""
    import numpy as np

    from ..compress.chain import check_downlink, parse_codec
    from ..compress.encoding import encode, payload_bytes
    from ..model import random_arrays, tensor_specs

    codec = parse_codec(text, where)
    codec = check_downlink(codec, where) if where == "down-codec" else codec
    if sum(s.numel for s in tensor_specs(model)) > MAX_CODEC_PARAMETERS:
        raise ConfigError(f"--{where}: {model} is over {MAX_CODEC_PARAMETERS:,} parameters; plan counts a codec's "
                          "bytes by encoding the model, so give a smaller one")  # fmt: skip
    from ..payload import npy_header_length
    from ..wire.transfer import array_objects

    arrays = random_arrays(model)
    reference = {k: np.zeros_like(v) for k, v in arrays.items()}
    encoded = encode(codec, arrays, reference, server_round=1_000).arrays
    objects = array_objects([npy_header_length(a.shape, a.dtype.str) + a.nbytes for a in encoded.values()])
    return payload_bytes(encoded), objects


def run(args: argparse.Namespace) -> int:
    """Load the fleet, plan every round, print the table or JSON (and write the plot if asked)."""
    from ..wire.calibration import load as load_calibration
    from ..wire.fleet import load_fleet
    from ..wire.links import parse_link
    from ..wire.plan import PlanConfig, plan

    started = time.perf_counter()
    rounds = study_rounds(args.study_setting) if args.study_setting else args.rounds
    fleet = load_fleet(args.fleet, args.links, args.supernodes, args.step_seconds)
    message, objects = message_bytes(args)
    if (args.up_codec or args.down_codec) and args.lora_rank is not None:
        raise ConfigError("--up-codec/--down-codec: plan encodes the whole model; not with --lora-rank")
    down, down_objects = (
        codec_message(args.model, args.down_codec, "down-codec") if args.down_codec else (message, objects)
    )
    up, up_objects = codec_message(args.model, args.up_codec, "up-codec") if args.up_codec else (message, objects)
    server = parse_link(args.server_link) if args.server_link else None
    timed = args.time_model == "objects"
    calibration = load_calibration(args.calibration)
    cfg = PlanConfig(down, up, args.local_steps, args.fraction, args.over_commit, args.deadline, server,
                     rounds, args.trials, args.seed, args.model if timed else None, down_objects, up_objects,
                     calibration)  # fmt: skip
    report = {"model": args.model, "message_payload_bytes": message, "down_bytes": down, "up_bytes": up,
              "up_codec": args.up_codec, "down_codec": args.down_codec,
              "time_model": "objects" if timed else "formula",
              "calibration": calibration.source if timed else None, **plan(fleet, cfg)}  # fmt: skip
    report["wall_seconds"] = round(time.perf_counter() - started, 3)
    if args.plot:
        write_plot(report, args.plot)
    print(json.dumps(report) if args.json else render_plan(report))
    return 0


def write_plot(report: dict, path: Path) -> None:
    """The rounds' plot as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from ..wire.plan import plot_plan

    plot_plan(report).figure.savefig(path, dpi=120, bbox_inches="tight")


def render_plan(report: dict) -> str:
    """The plan as text: a row a round, then the totals."""
    from ..report import render_table
    from ..units import format_bytes

    columns = [
        ("round", 5, lambda r: str(r["round"])),
        ("median s", 10, lambda r: f"{r['seconds_median']:.1f}"),
        ("p90 s", 10, lambda r: f"{r['seconds_p90']:.1f}"),
        ("bytes", 18, lambda r: f"{r['bytes']:,}"),
        ("wasted bytes", 18, lambda r: f"{r['wasted_bytes']:,}"),
    ]
    head = (
        f"{report['clients']:,} clients, {report['model']}: one message {report['message_payload_bytes']:,} B; "
        f"down {report['down_bytes']:,} B ({report['down_codec'] or 'float32'}), "
        f"up {report['up_bytes']:,} B ({report['up_codec'] or 'float32'}); time: "
        + (f"object by object ({report['calibration']})" if report["time_model"] == "objects" else "the formula")
    )
    total = (
        f"in all: {report['seconds_median']:.1f} s (sum of medians), {format_bytes(report['bytes'])} moved, "
        f"{format_bytes(report['wasted_bytes'])} wasted on stragglers"
    )
    return "\n".join([head, *render_table(columns, report["rounds"]), total])
