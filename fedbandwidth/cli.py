"""Command line: ``fedbandwidth simulate --supernodes N --rounds R`` prints and saves what a run moves.

Every argument is checked before Ray starts; a bad one gives a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from .config import BACKENDS, ConfigError, SimulationConfig, check_count, check_fraction
from .model import known_models
from .theory import APIS
from .units import format_bytes

USAGE_ERROR = 2

# Further subcommands, each in its own module with `add_arguments(parser)` and `run(args) -> int`
# (both must check every argument before starting any work, raising ConfigError otherwise).
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("fedbandwidth.train_cli", "train a real model federatedly, with codecs"),
    "deploy": ("fedbandwidth.deploy", "run on a local Deployment Engine and measure wire bytes"),
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit code 2, no traceback."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _typed(check, **kwargs):
    """Turn a config check into an argparse `type=` that parses the string first."""
    parse = int if check is check_count else float

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            kind = "a whole number" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check("value", value, **kwargs)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return convert


def build_parser() -> argparse.ArgumentParser:
    """The `fedbandwidth` argument parser and its `simulate` subcommand."""
    parser = OneLineParser(prog="fedbandwidth", description="Measure, predict and plot the bytes "
                           "federated learning moves (Flower course, lesson 5).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    sim = sub.add_parser("simulate", help="run no-op FedAvg clients and measure every model message")
    sim.add_argument("--supernodes", type=_typed(check_count), default=2, help="simulated clients (default 2)")
    sim.add_argument("--rounds", type=_typed(check_count), default=1, help="federated rounds (default 1)")
    sim.add_argument("--fraction", type=_typed(check_fraction), default=1.0,
                     help="fraction of nodes sampled for training each round, in (0, 1] (default 1.0)")
    sim.add_argument("--fraction-evaluate", type=_typed(check_fraction, allow_zero=True), default=0.0,
                     help="fraction sampled for evaluation, in [0, 1]; the course uses 0.0 (default)")
    sim.add_argument("--api", choices=APIS, default="legacy",
                     help="legacy: NumPyClient + FedAvg as in the course; message: Flower's Message API")
    sim.add_argument("--model", choices=known_models(), default="pythia-14m", help="model architecture")
    sim.add_argument("--backend", choices=BACKENDS, default="inprocess",
                     help="Simulation Engine backend: inprocess (ClientApps in threads, no Ray; default) "
                          "or ray (a Ray actor per worker, as the course); the bytes are the same")
    sim.add_argument("--out", type=Path, default=Path("build/simulate"),
                     help="folder for ledger.csv and bandwidth_per_round.png (default build/simulate)")
    sim.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    sim.add_argument("--verbose", action="store_true", help="show Flower's own log lines")
    rep = sub.add_parser("report", help="print the per-round table of a ledger CSV written by a run")
    rep.add_argument("ledger_csv", type=Path, help="a ledger.csv (from simulate or the notebook)")
    for name, (module, help_text) in EXTRA_COMMANDS.items():
        add_arguments = getattr(importlib.import_module(module), "add_arguments")
        add_arguments(sub.add_parser(name, help=help_text))
    return parser


def check_writable(folder: Path) -> Path:
    """Create `folder` if needed and prove a file can be written in it; raise ConfigError if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(f"--out {str(folder)!r} is not writable: {err.strerror or err}") from None
    return folder


def progress_bar(total: int, ledger) -> None:
    """Attach a tqdm bar over rounds to the ledger, shown only on a terminal."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="round", desc="rounds", disable=not sys.stderr.isatty())
    ledger.round_listeners.append(lambda _round: bar.update(1))


def summary(cfg: SimulationConfig, ledger, prediction, seconds: float, files: dict) -> dict:
    """The run as a JSON-ready dict: model, config, per-round bytes, totals, prediction, files."""
    from .theory import course_formula_bytes

    table = ledger.per_round()
    rounds = [{k: int(row[k]) for k in ("round", "nodes", "down_bytes", "up_bytes", "total_bytes")}
              for _, row in table.iterrows()]
    from .model import tensor_specs

    tensor_bytes = prediction.message_tensor_bytes
    parameters = sum(s.numel for s in tensor_specs(cfg.model))
    return {
        "model": {"name": cfg.model, "parameters": parameters, "tensor_bytes": tensor_bytes,
                  "message_payload_bytes": prediction.message_payload_bytes},
        "config": {"supernodes": cfg.supernodes, "rounds": cfg.rounds, "fraction": cfg.fraction,
                   "fraction_evaluate": cfg.fraction_evaluate, "api": cfg.api,
                   "backend": cfg.backend},
        "rounds": rounds,
        "down_bytes": ledger.total_bytes("down"),
        "up_bytes": ledger.total_bytes("up"),
        "total_bytes": ledger.total_bytes(),
        "predicted_bytes": prediction.total_bytes,
        "course_formula_bytes": course_formula_bytes(tensor_bytes, cfg.supernodes, cfg.fraction, cfg.rounds),
        "wall_seconds": round(seconds, 2),
        "files": {k: str(v) for k, v in files.items()},
    }


def render_text(report: dict) -> str:
    """A human-readable table of the run: one line per round, then totals in bytes and MiB."""
    lines = [f"{report['model']['name']}: {report['model']['parameters']:,} parameters, "
             f"one model message = {format_bytes(report['model']['message_payload_bytes'])}",
             f"{'round':>5} {'nodes':>5} {'down bytes':>16} {'up bytes':>16} {'round total':>16}"]
    for r in report["rounds"]:
        lines.append(f"{r['round']:>5} {r['nodes']:>5} {r['down_bytes']:>16,} {r['up_bytes']:>16,} "
                     f"{r['total_bytes']:>16,}")
    lines += [f"total     {format_bytes(report['total_bytes'])}",
              f"predicted {format_bytes(report['predicted_bytes'])}"
              f"  ({'equal' if report['total_bytes'] == report['predicted_bytes'] else 'DIFFERENT'})",
              f"wall time {report['wall_seconds']:.1f} s; files: "
              + ", ".join(report["files"].values())]
    return "\n".join(lines)


def save_plot(ledger, predicted_total: int, path: Path) -> Path:
    """Draw the two-panel per-round figure into `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import lesson_figure

    fig = lesson_figure(ledger.per_round(), predicted_total=predicted_total)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_simulate(args: argparse.Namespace) -> int:
    """Validate, run the simulation, print the table or JSON, write CSV and PNG."""
    from .ledger import Ledger
    from .logs import setup_logging
    from .model import random_arrays, tensor_specs
    from .theory import predict

    cfg = SimulationConfig(args.supernodes, args.rounds, args.fraction, args.fraction_evaluate,
                           args.api, args.model, args.backend)
    out = check_writable(args.out)
    setup_logging(logging.INFO if args.verbose else logging.ERROR)
    prediction = predict(tensor_specs(cfg.model), cfg.supernodes, cfg.rounds, cfg.fraction,
                         cfg.fraction_evaluate, cfg.api)
    ledger = Ledger(csv_path=out / "ledger.csv")
    progress_bar(cfg.rounds, ledger)
    started = time.perf_counter()
    from .simulation import simulate

    simulate(cfg, random_arrays(cfg.model), ledger)
    files = {"ledger_csv": ledger.csv_path,
             "plot_png": save_plot(ledger, prediction.total_bytes, out / "bandwidth_per_round.png")}
    report = summary(cfg, ledger, prediction, time.perf_counter() - started, files)
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report) if args.json else render_text(report))
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Print the per-round table and totals of a ledger CSV."""
    import pandas as pd

    from .ledger import COLUMNS, per_round

    if not args.ledger_csv.is_file():
        raise ConfigError(f"ledger_csv {str(args.ledger_csv)!r} is not a file")
    frame = pd.read_csv(args.ledger_csv)
    if list(frame.columns) != COLUMNS:
        raise ConfigError(f"ledger_csv {str(args.ledger_csv)!r} has columns {list(frame.columns)}, "
                          f"expected {COLUMNS}")
    print(per_round(frame).to_string(index=False))
    down, up = (int(frame[frame.direction == d].payload_bytes.sum()) for d in ("down", "up"))
    print(f"down  {format_bytes(down)}\nup    {format_bytes(up)}\ntotal {format_bytes(down + up)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fedbandwidth` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in EXTRA_COMMANDS:
            return importlib.import_module(EXTRA_COMMANDS[args.command][0]).run(args)
        return run_simulate(args) if args.command == "simulate" else run_report(args)
    except ConfigError as err:
        parser.exit(USAGE_ERROR, f"fedbandwidth {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        print("interrupted: the ledger CSV keeps the messages recorded so far", file=sys.stderr)
        return 130
