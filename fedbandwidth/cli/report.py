"""``fedbandwidth report LEDGER_CSV``: the per-round table and totals of a ledger a run wrote."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import ConfigError

HELP = "print the per-round table of a ledger CSV written by a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `report` argument: one ledger CSV."""
    parser.add_argument("ledger_csv", type=Path, help="a ledger.csv (from simulate or the notebook)")


def run(args: argparse.Namespace) -> int:
    """Print the per-round table and totals of a ledger CSV."""
    from ..ledger import Ledger
    from ..names import DOWN, UP
    from ..units import format_bytes

    if not args.ledger_csv.is_file():
        raise ConfigError(f"ledger_csv {str(args.ledger_csv)!r} is not a file")
    try:
        ledger = Ledger.from_csv(args.ledger_csv)
    except ValueError as err:
        raise ConfigError(f"ledger_csv {err}") from None
    print(ledger.per_round().to_string(index=False))
    down, up = ledger.total_bytes(DOWN), ledger.total_bytes(UP)
    print(f"down  {format_bytes(down)}\nup    {format_bytes(up)}\ntotal {format_bytes(down + up)}")
    return 0
