"""``fedbandwidth predict``: the exact bytes of a federated run, for any model and LoRA adapter, without running it."""

from __future__ import annotations

import argparse
import json
import sys

from ..adapters import RULES
from ..checks import ConfigError, check_count
from .args import add_phase_arguments, add_size_arguments, typed
from .privacy_args import add_secagg_arguments, render_secagg, secagg_config, with_secagg

HELP = "the exact bytes of a federated run for any model and adapter, without running it"
DTYPE_CHOICES = ("float32", "bfloat16", "float16")  # fedbandwidth.architecture.DTYPES (not imported: no torch here)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `predict` options."""
    parser.add_argument(
        "--model",
        default="pythia-14m",
        help="a shipped model (pythia-*, llama-*, mistral-*, qwen2.5-*, smollm2-*), a hub id "
        "(e.g. EleutherAI/pythia-14m, from the local Hugging Face cache offline) or a path to a "
        "config.json (default pythia-14m)",
    )
    add_size_arguments(parser, "SuperNodes (clients)")
    add_phase_arguments(parser, "fraction sampled for evaluation, in [0, 1]; the model goes down again (default 0.0)")
    parser.add_argument(
        "--lora-rank",
        type=typed(check_count),
        default=None,
        help="LoRA rank: only the adapters travel (default: the whole model)",
    )
    parser.add_argument(
        "--lora-targets",
        default=None,
        help="modules that get adapters, e.g. q_proj,v_proj (default: peft's for the architecture)",
    )
    parser.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    parser.add_argument(
        "--dora",
        action="store_true",
        help="DoRA (peft's use_dora): a magnitude vector per adapted layer trains and travels too (needs --lora-rank)",
    )
    parser.add_argument(
        "--lora-rule",
        choices=RULES,
        default="fedit",
        help="which adapters travel: fedit, A and B (as FlowerTune; default), or ffa, only B (as train's default)",
    )
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="float32", help="dtype the arrays travel in")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    add_secagg_arguments(parser)


def lora_spec(args: argparse.Namespace, source):
    """The LoraSpec the arguments ask for (None without --lora-rank); targets default to peft's."""
    from ..adapters import LoraSpec, parse_targets
    from ..shapes import default_targets

    if args.lora_rank is None:
        for given, option in ((args.lora_targets is not None, "--lora-targets"), (args.dora, "--dora")):
            if given:
                raise ConfigError(f"{option} needs --lora-rank")
        return None
    targets = parse_targets(args.lora_targets) if args.lora_targets is not None else default_targets(source.name)
    if not targets:
        raise ConfigError(f"--lora-targets: peft knows no default modules for {source.model_type!r}; name them")
    return LoraSpec(args.lora_rank, targets, args.lora_alpha, args.dora)


def run(args: argparse.Namespace) -> int:
    """Resolve the model, build it on the meta device, print the forecast (text or JSON)."""
    import time

    from ..catalog import resolve
    from ..forecast import ForecastConfig, forecast, message_specs, render_forecast
    from ..wire.links import forecast_links

    started = time.perf_counter()
    source = resolve(args.model, "--model")
    cfg = ForecastConfig(
        args.model,
        args.supernodes,
        args.rounds,
        args.fraction,
        args.fraction_evaluate,
        lora_spec(args, source),
        args.dtype,
        args.api,
        args.lora_rule,
    )
    secagg = secagg_config(args)
    report = forecast(cfg)
    report = with_secagg(report, secagg, message_specs(cfg)) if secagg else report
    report["links"] = forecast_links(report)
    report["wall_seconds"] = round(time.perf_counter() - started, 2)
    if args.json and (unmatched := report.get("adapter", {}).get("unmatched_targets")):
        print(
            f"fedbandwidth predict: warning: --lora-targets {', '.join(unmatched)} matched no module", file=sys.stderr
        )
    text = "\n".join([render_forecast(report), *([render_secagg(report)] if secagg else [])])
    print(json.dumps(report) if args.json else text)
    return 0
