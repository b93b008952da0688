"""The command line, ``fedbandwidth <command>``: the top layer, one module per subcommand; nothing imports it.

Each subcommand module has `HELP`, `add_arguments(parser)` and `run(args) -> int`. Every argument is checked
before any work starts: a bad one is a one-line error naming it, exit code 2, before Flower or Ray start.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..checks import ConfigError

USAGE_ERROR = 2  # exit code of a bad argument
INTERRUPTED = 130  # exit code after Ctrl-C, as a shell reports it
COMMANDS = (
    "simulate",
    "predict",
    "report",
    "train",
    "deploy",
    "plan",
    "calibrate",
)  # each is the module fedbandwidth.cli.<name>


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, exit code 2, no traceback."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def command(name: str):
    """The module of subcommand `name`."""
    return importlib.import_module(f"{__name__}.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The `fedbandwidth` argument parser with every subcommand (or only `only`: nothing else is imported)."""
    parser = OneLineParser(
        prog="fedbandwidth",
        description="Measure, predict and plot the bytes federated learning moves (Flower course, lesson 5).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in (only,) if only in COMMANDS else COMMANDS:
        module = command(name)
        module.add_arguments(sub.add_parser(name, help=module.HELP))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fedbandwidth` command."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return command(args.command).run(args)
    except ConfigError as err:
        parser.exit(USAGE_ERROR, f"fedbandwidth {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        print("interrupted: the ledger CSV keeps the messages recorded so far", file=sys.stderr)
        return INTERRUPTED
