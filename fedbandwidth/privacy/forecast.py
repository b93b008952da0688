"""SecAgg+ for any model before it runs: bytes per stage, and Flower's 2 GiB message ceiling.

The masked vector goes up in one ConfigRecord, one object that Flower does not cut into chunks (ArrayRecords
are cut into 5 MiB chunks, ConfigRecords are not), so the gRPC message limit binds on it: about 268M
parameters at 8 B each. A run whose upload would cross it is refused before it starts.
"""

from __future__ import annotations

from flwr.supercore.grpc import GRPC_MAX_MESSAGE_LENGTH

from ..checks import ConfigError
from ..units import format_bytes
from .formula import SecAggPlan, upload_bytes
from .secagg import SecAggConfig, secagg_plan
from .stages import predicted_stages

CEILING_BYTES = GRPC_MAX_MESSAGE_LENGTH  # Flower's gRPC limit on one message: 2 GiB - 1 B


def check_ceiling(plan: SecAggPlan, name: str = "--model") -> int:
    """Raise ConfigError if one masked upload would exceed Flower's 2 GiB message ceiling; return its bytes."""
    size = upload_bytes(plan)
    if size > CEILING_BYTES:
        lever = "" if plan.pack else "; --secagg-pack halves it"
        raise ConfigError(
            f"{name}: one SecAgg+ masked upload would be {format_bytes(size)}, over Flower's 2 GiB gRPC message "
            f"ceiling ({CEILING_BYTES:,} B): the masked vector travels as one unchunked object{lever}"
        )
    return size


def secagg_settings(cfg: SecAggConfig) -> dict:
    """The SecAgg+ settings of a run, for its summary."""
    return {
        "shares": cfg.shares,
        "threshold": cfg.threshold,
        "clipping_range": cfg.clipping_range,
        "quantization_range": cfg.quantization_range,
        "modulus_range": cfg.modulus_range,
        "pack": cfg.pack,
    }


def secagg_forecast(cfg: SecAggConfig, specs) -> dict:
    """SecAgg+'s predicted stages for `cfg` on a model of `specs` (ids at their longest), with the ceiling."""
    stages = predicted_stages(lambda r: secagg_plan(cfg, specs, r), cfg.rounds)
    upload = upload_bytes(secagg_plan(cfg, specs))
    return {
        "secagg": secagg_settings(cfg),
        "stages": stages,
        "upload_message_bytes": upload,
        "ceiling_bytes": CEILING_BYTES,
        "over_ceiling": upload > CEILING_BYTES,
        "down_bytes": sum(s["bytes"] for s in stages if s["direction"] == "down"),
        "up_bytes": sum(s["bytes"] for s in stages if s["direction"] == "up"),
    }
