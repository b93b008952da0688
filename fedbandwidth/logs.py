"""Readable logs in a notebook or terminal: Flower's lines without colour codes or banners, Ray quiet."""

from __future__ import annotations

import logging
import os

QUIET_RAY = {"logging_level": "ERROR", "log_to_driver": False}  # Ray init_args: no actor spam


class DropDeprecationBanner(logging.Filter):
    """Drop Flower's multi-line 'DEPRECATED FEATURE' banners (run_simulation logs one each run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "DEPRECATED FEATURE" not in str(record.msg)


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Plain Flower logs at `level`, no ANSI colours, no deprecation banners; returns our logger."""
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # silences a Ray FutureWarning
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.common.logger import update_console_handler

    update_console_handler(level=level, timestamps=False, colored=False)
    flower = logging.getLogger("flwr")
    if not any(isinstance(f, DropDeprecationBanner) for f in flower.filters):
        flower.addFilter(DropDeprecationBanner())
    ours = logging.getLogger("fedbandwidth")
    if not ours.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        ours.addHandler(handler)
        ours.propagate = False
    ours.setLevel(level)
    return ours
