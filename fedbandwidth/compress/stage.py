"""A lever: one stage of a codec chain that knows its name, position, parameters, encoding and decoding.

A ``Lever`` subclass is the whole of a lever: ``name`` (how a chain spells it), ``order`` (where it may stand:
delta, then layers, then a sparsifier, then a value codec), ``parse`` (its parameters, checked, one-line
ConfigError), ``encode`` (named float32 arrays -> the arrays that travel) and ``decode`` (undo its own key
tags, pass every other key through). chain.py lists the levers in one registry, as a ClientApp lists its
mods; a new lever is one module with its class and a line there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import ConfigError

SEP = "#"  # separates a tensor name from the part of its encoding
DELTA, LAYERS, SPARSIFY, VALUES = range(4)  # the order stages must come in
NO_ERROR_FEEDBACK = "noef"  # option of topk/threshold/lowrank: drop the residual instead of keeping it


@dataclass(frozen=True)
class Stage:
    """One step of a codec chain: its lever and its parsed parameters."""

    lever: Lever  # what the stage does (one object per lever, from the registry)
    param: float | None = None  # fraction (topk), tau (threshold), rank (lowrank) or block size (int8/int4/int2)
    patterns: tuple[str, ...] = ()  # globs of `layers`; a leading "-" excludes
    error_feedback: bool = True  # topk/threshold/lowrank: keep what was not sent for the next round
    extra: tuple[float, ...] = ()  # further parameters (dgc: momentum, clipping norm)

    @property
    def name(self) -> str:
        """The lever's name, as a chain spells it."""
        return self.lever.name

    @property
    def order(self) -> int:
        """Position class: delta, then layers, then a sparsifier (or lowrank), then a value codec."""
        return self.lever.order

    def __str__(self) -> str:
        return self.lever.text(self)


class Lever:
    """A stage kind: no parameter, encodes nothing, decodes nothing (subclasses override what they do)."""

    name = ""  # how a chain spells it
    order = VALUES  # DELTA, LAYERS, SPARSIFY or VALUES
    needs_delta = False  # True: compresses an update, so 'delta' must come before it
    uplink_only = False  # True: keeps client state the server could not keep for the downlink

    def parse(self, args: list[str], where: str) -> Stage:
        """The stage from the text after its name (split at ':'); this one takes no parameter."""
        if args:
            raise ConfigError(f"{where}: {self.name} takes no parameter, got {':'.join([self.name, *args])!r}")
        return Stage(self)

    def text(self, stage: Stage) -> str:
        """The stage written as a chain spells it (parse(text) gives it back)."""
        text = self.name if stage.param is None else f"{self.name}:{stage.param:g}"
        return text if stage.error_feedback else f"{text}:{NO_ERROR_FEEDBACK}"

    def applies(self, key: str) -> bool:
        """True if `encode_tensor` should see this key (others pass through)."""
        return True

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """The parts that carry one array (here: the array itself)."""
        return {key: x}

    def encode(self, stage: Stage, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Encode a whole record, key by key."""
        return {
            part: a
            for key, x in arrays.items()
            for part, a in (self.encode_tensor(stage, key, x) if self.applies(key) else {key: x}).items()
        }

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """Undo this lever's parts in a whole record; other keys pass through (here: all)."""
        return parts

    def prepare(self, stage: Stage, update: dict, state: dict, server_round: int) -> tuple[dict, Stage, dict]:
        """Error feedback, before sending: (update + what was not sent last time, the stage to apply, scratch)."""
        return {k: v + state[k] if k in state else v for k, v in update.items()}, stage, {}

    def keep(self, stage: Stage, sent: dict, received: dict, scratch: dict) -> dict:
        """Error feedback, after sending: the state for next round (what was to be sent minus what arrives)."""
        return {k: v - received[k] for k, v in sent.items()}


def untag(parts: dict[str, np.ndarray], tags: tuple[str, ...], helpers: tuple[str, ...], fn) -> dict[str, np.ndarray]:
    """Replace each `<base>#<tag>` by fn(base, tag, array) under `base`, drop its `<base>#<helper>`, keep the rest."""
    found = {key.rpartition(SEP)[0]: key.rpartition(SEP)[2] for key in parts if key.rpartition(SEP)[2] in tags}
    found.pop("", None)
    done = {base + SEP + h for base in found for h in helpers}
    out = {k: x for k, x in parts.items() if k not in done and k.rpartition(SEP)[0] not in found}
    return out | {base: fn(base, tag, parts[base + SEP + tag]) for base, tag in found.items()}


def number(what: str, text: str, low: float, high: float, low_open: bool = True) -> float:
    """Parse a float in (low, high] (or [low, high]); raise ConfigError naming `what`."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
    if not (value > low if low_open else value >= low) or value > high or math.isnan(value):
        raise ConfigError(f"{what} must lie in {'(' if low_open else '['}{low:g}, {high:g}], got {text}")
    return value


def value_and_feedback(name: str, args: list[str], where: str) -> tuple[str, bool]:
    """(the value, keep error feedback) of a stage written '<name>:<value>[:noef]'."""
    if not args or len(args) > 2 or (len(args) == 2 and args[1] != NO_ERROR_FEEDBACK):
        raise ConfigError(f"{where}: {name} needs a value and optionally ':noef', got {':'.join([name, *args])!r}")
    return args[0], len(args) == 1
