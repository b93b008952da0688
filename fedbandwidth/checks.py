"""Checks of run parameters, before anything starts: each failure is a ConfigError naming the parameter."""

from __future__ import annotations

import numbers
import tempfile
from pathlib import Path


class ConfigError(ValueError):
    """A run parameter with a bad value; the message names the parameter."""


def check_count(name: str, value, minimum: int = 1) -> int:
    """Return `value` as an int if it is a whole number >= minimum, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(name: str, value, allow_zero: bool = False) -> float:
    """Return `value` as a float if it lies in (0, 1] (or [0, 1] with allow_zero), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"{name} must lie in {interval}, got {value}")
    return float(value)


def check_choice(name: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise ConfigError."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_writable(folder: Path, name: str = "--out") -> Path:
    """Create `folder` if needed and prove a file can be written in it; raise ConfigError if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ConfigError(f"{name} {str(folder)!r} is not writable: {err.strerror or err}") from None
    return folder
