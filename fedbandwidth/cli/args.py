"""Argument types: the package's checks as argparse `type=` converters, so bad values fail while parsing."""

from __future__ import annotations

import argparse

from ..checks import ConfigError, check_count


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
