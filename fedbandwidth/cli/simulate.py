"""``fedbandwidth simulate``: run no-op FedAvg clients, print and save the bytes every round moved."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from ..checks import check_writable
from ..names import BACKENDS
from .args import add_output_arguments, add_phase_arguments, add_size_arguments
from .privacy_args import add_secagg_arguments, run_secagg_simulation, secagg_config

HELP = "run no-op FedAvg clients and measure every model message"
PLOT_PNG = "bandwidth_per_round.png"  # the figure --plot draws into --out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `simulate` options."""
    add_size_arguments(parser, "simulated clients")
    add_phase_arguments(parser, "fraction sampled for evaluation, in [0, 1]; the course uses 0.0 (default)")
    parser.add_argument(
        "--model",
        default="pythia-14m",
        help="a shipped model, a hub id (local Hugging Face cache) or a path to a config.json; its whole state "
        "dict travels, so it must fit in memory (default pythia-14m)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="inprocess",
        help="Simulation Engine backend: inprocess (ClientApps in threads, no Ray; default) "
        "or ray (a Ray actor per worker, as the course); the bytes are the same",
    )
    add_output_arguments(parser, "build/simulate", "ledger.csv, summary.json (and the --plot PNG)")
    parser.add_argument(
        "--plot",
        action="store_true",
        help=f"also draw {PLOT_PNG}, bytes per round and cumulative (matplotlib: about a second more)",
    )
    parser.add_argument("--verbose", action="store_true", help="show Flower's own log lines")
    add_secagg_arguments(parser)


def progress_bar(total: int, ledger) -> None:
    """Attach a tqdm bar over rounds to the ledger, shown only on a terminal."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="round", desc="rounds", disable=not sys.stderr.isatty())
    ledger.round_listeners.append(lambda _round: bar.update(1))


def save_plot(ledger, predicted_total: int, path: Path) -> Path:
    """Draw the two-panel per-round figure into `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import lesson_figure

    fig = lesson_figure(ledger.per_round(), predicted_total=predicted_total)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_config(cfg) -> dict:
    """The config part of the summary."""
    return {
        "supernodes": cfg.supernodes,
        "rounds": cfg.rounds,
        "fraction": cfg.fraction,
        "fraction_evaluate": cfg.fraction_evaluate,
        "api": cfg.api,
        "backend": cfg.backend,
    }


def memory_advice(cfg) -> str:
    """What to change when a run would not fit: the levers that lower this run's peak."""
    levers = ["a smaller --model"]
    if cfg.backend == "ray":
        levers += ["fewer nodes a round (--fraction)", "--backend inprocess"]
    if cfg.api == "legacy":
        levers.append("--api message")
    return f"try {', '.join(levers)}; fedbandwidth.theory.predict() gives the bytes without running"


def check_memory(cfg, prediction, available: int | None = None) -> None:
    """Refuse (ConfigError, one line) a run whose estimated peak exceeds the memory available now."""
    from ..memory import available_memory_bytes, check_fits, estimate_memory

    sampled = max(prediction.train_nodes, prediction.evaluate_nodes)
    estimate = estimate_memory(prediction.message_payload_bytes, sampled, cfg.api, cfg.backend)
    check_fits(estimate, available_memory_bytes() if available is None else available, memory_advice(cfg))


def run(args: argparse.Namespace) -> int:
    """Validate, run the simulation, print the table or JSON, write the CSV, summary.json (and the PNG if asked)."""
    from ..architecture import model_specs, zero_arrays
    from ..ledger import Ledger
    from ..logs import setup_logging
    from ..model import known_models
    from ..report import prediction_summary, render_prediction, write_summary
    from ..simulation import SimulationConfig, simulate
    from ..theory import predict

    if secagg := secagg_config(args):
        return run_secagg_simulation(args, secagg)
    cfg = SimulationConfig(
        args.supernodes, args.rounds, args.fraction, args.fraction_evaluate, args.api, args.model, args.backend
    )
    specs = model_specs(cfg.model)
    prediction = predict(specs, cfg.supernodes, cfg.rounds, cfg.fraction, cfg.fraction_evaluate, cfg.api)
    check_memory(cfg, prediction)
    out = check_writable(args.out)
    setup_logging(logging.INFO if args.verbose else logging.ERROR)
    ledger = Ledger(csv_path=out / "ledger.csv")
    progress_bar(cfg.rounds, ledger)
    started = time.perf_counter()
    arrays = None if cfg.model in known_models() else zero_arrays(specs)  # pythia's: made one at a time
    simulate(cfg, arrays, ledger=ledger)
    files = {"ledger_csv": ledger.csv_path}
    if args.plot:
        files["plot_png"] = save_plot(ledger, prediction.total_bytes, out / PLOT_PNG)
    report = write_summary(
        prediction_summary(cfg.model, run_config(cfg), ledger, prediction, time.perf_counter() - started, files), out
    )
    print(json.dumps(report) if args.json else render_prediction(report))
    return 0
