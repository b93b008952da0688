"""Argument types: the package's checks as argparse `type=` converters, so bad values fail while parsing."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import ConfigError, check_count, check_fraction
from ..names import APIS


def typed(check, **kwargs):
    """Turn a check (check_count, check_fraction, ...) into an argparse `type=` that parses the string first."""
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


def with_default(text: str, default) -> str:
    """Help text, with '(default X)' appended when there is a default."""
    return text if default is None else f"{text} (default {default})"


def add_size_arguments(parser: argparse.ArgumentParser, nodes: str, supernodes=2, rounds=1) -> None:
    """--supernodes (described as `nodes`), --rounds and --fraction: a run's size, checked while parsing."""
    parser.add_argument(
        "--supernodes", type=typed(check_count), default=supernodes, help=with_default(nodes, supernodes)
    )
    parser.add_argument(
        "--rounds", type=typed(check_count), default=rounds, help=with_default("federated rounds", rounds)
    )
    parser.add_argument(
        "--fraction",
        type=typed(check_fraction),
        default=1.0,
        help="fraction of nodes sampled for training each round, in (0, 1] (default 1.0)",
    )


def add_output_arguments(parser: argparse.ArgumentParser, out: str, files: str) -> None:
    """--out (the folder `files` are written to, default `out`) and --json."""
    parser.add_argument("--out", type=Path, default=Path(out), help=f"folder for {files} (default {out})")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")


def add_phase_arguments(parser: argparse.ArgumentParser, evaluate_help: str) -> None:
    """--fraction-evaluate (in [0, 1], default 0.0, described by `evaluate_help`) and --api (legacy or message)."""
    parser.add_argument(
        "--fraction-evaluate", type=typed(check_fraction, allow_zero=True), default=0.0, help=evaluate_help
    )
    parser.add_argument(
        "--api",
        choices=APIS,
        default="legacy",
        help='legacy: NumPyClient + FedAvg as in the course (keys "0".."N-1"); '
        "message: Flower's Message API (state-dict names as keys)",
    )
