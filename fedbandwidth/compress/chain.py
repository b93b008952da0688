"""A codec chain: what shrinks a federated message, written as text and parsed into stages.

A codec is a chain of stages written left to right with ``+``, e.g. ``delta+topk:0.01+int8``:

- ``delta``: send the update (local - global) instead of the weights (uplink only);
- ``layers:<glob>[,<glob>...]``: send only the tensors whose name matches (``-<glob>`` excludes);
- ``topk:<fraction>[:noef]`` / ``threshold:<tau>[:noef]``: keep the largest entries of the update;
  what is not sent is kept as a residual and added to the next update (error feedback) unless ``noef``;
- ``lowrank:<rank>[:noef]``: send each matrix of the update as two thin factors P (m x r) and Q (n x r)
  with P Q^T its best rank-r approximation (truncated SVD; Konecny et al. 2016, PowerSGD); vectors and
  matrices too small to gain are sent whole; error feedback as for top-k;
- ``fp16``, ``bf16``, ``int8[:<block>]``, ``int4[:<block>]``: store the values in fewer bits
  (affine quantization per tensor, or per block of ``block`` values; int4 packs two values a byte).

Each stage is implemented in its own module (values, sparse, lowrank); encoding.py applies a chain.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from itertools import pairwise

from ..checks import ConfigError

SEP = "#"  # separates a tensor name from the part of its encoding
DELTA, LAYERS, SPARSIFY, VALUES = range(4)  # the order stages must come in
NO_ERROR_FEEDBACK = "noef"  # option of topk/threshold/lowrank: drop the residual instead of keeping it


@dataclass(frozen=True)
class Stage:
    """One step of a codec chain: its kind and its parsed parameters."""

    name: str  # "delta", "layers", "topk", "threshold", "lowrank", "fp16", "bf16", "int8" or "int4"
    param: float | None = None  # fraction (topk), tau (threshold), rank (lowrank) or block size (int8/int4)
    patterns: tuple[str, ...] = ()  # globs of `layers`; a leading "-" excludes
    error_feedback: bool = True  # topk/threshold/lowrank: keep what was not sent for the next round

    @property
    def order(self) -> int:
        """Position class: delta, then layers, then a sparsifier (or lowrank), then a value codec."""
        return {"delta": DELTA, "layers": LAYERS, "topk": SPARSIFY, "threshold": SPARSIFY, "lowrank": SPARSIFY}.get(
            self.name, VALUES
        )

    def __str__(self) -> str:
        if self.name == "layers":
            return f"layers:{','.join(self.patterns)}"
        text = self.name if self.param is None else f"{self.name}:{self.param:g}"
        return text if self.error_feedback else f"{text}:{NO_ERROR_FEEDBACK}"


@dataclass(frozen=True)
class Codec:
    """A chain of stages; the empty chain sends float32 weights unchanged."""

    stages: tuple[Stage, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.stages) or "none"

    def stage(self, name_or_order) -> Stage | None:
        """The stage with this name (or order class), if the chain has one."""
        return next((s for s in self.stages if name_or_order in (s.name, s.order)), None)

    @property
    def sparsifier(self) -> Stage | None:
        """The topk/threshold/lowrank stage, if any: the one that drops part of the update."""
        return self.stage(SPARSIFY)

    def selects(self, name: str) -> bool:
        """True if the tensor `name` is sent (no `layers` stage, or it matches)."""
        layers = self.stage("layers")
        return layers is None or layer_selected(name, layers.patterns)


VALUE_CODECS = ("fp16", "bf16", "int8", "int4")
KNOWN = ("none", "delta", "layers", "topk", "threshold", "lowrank") + VALUE_CODECS


def _number(what: str, text: str, low: float, high: float, low_open: bool = True) -> float:
    """Parse a float in (low, high] (or [low, high]); raise ConfigError naming `what`."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
    if not (value > low if low_open else value >= low) or value > high or math.isnan(value):
        raise ConfigError(f"{what} must lie in {'(' if low_open else '['}{low:g}, {high:g}], got {text}")
    return value


def _block(where: str, name: str, args: list[str]) -> float | None:
    """Parse the optional block size of int8/int4 (a whole number >= 2)."""
    if not args:
        return None
    if len(args) > 1 or not args[0].isdigit() or int(args[0]) < 2:
        raise ConfigError(f"{where}: {name} block size must be a whole number >= 2, got {':'.join(args)!r}")
    return float(int(args[0]))


def parse_stage(text: str, where: str = "codec") -> Stage:
    """Parse one stage such as 'topk:0.01' or 'int8:256'; raise ConfigError if malformed."""
    name, *args = text.strip().split(":")
    if name not in KNOWN or name == "none":
        raise ConfigError(f"{where}: unknown codec {name!r}; known: {', '.join(KNOWN)}")
    if name in ("delta", "fp16", "bf16") and args:
        raise ConfigError(f"{where}: {name} takes no parameter, got {text!r}")
    if name == "layers":
        patterns = tuple(p for p in ":".join(args).split(",") if p)
        if not patterns:
            raise ConfigError(f"{where}: layers needs a pattern, e.g. 'layers:-*embed_in*,-lm_head*'")
        return Stage(name, patterns=patterns)
    if name in ("topk", "threshold", "lowrank"):
        if not args or len(args) > 2 or (len(args) == 2 and args[1] != NO_ERROR_FEEDBACK):
            raise ConfigError(f"{where}: {name} needs a value and optionally ':noef', got {text!r}")
        if name == "lowrank" and (not args[0].isdigit() or int(args[0]) < 1):
            raise ConfigError(f"{where}: lowrank rank must be a whole number >= 1, got {args[0]!r}")
        value = (
            _number(f"{where}: topk fraction", args[0], 0, 1)
            if name == "topk"
            else float(args[0])
            if name == "lowrank"
            else _number(f"{where}: threshold tau", args[0], 0, math.inf, low_open=False)
        )
        return Stage(name, value, error_feedback=len(args) == 1)
    return Stage(name, _block(where, name, args) if name in ("int8", "int4") else None)


def check_order(stages: tuple[Stage, ...], where: str) -> None:
    """Stages must come in the order delta, layers, sparsifier, value codec, each at most once."""
    for before, after in pairwise(stages):
        if after.order <= before.order:
            raise ConfigError(
                f"{where}: {after.name!r} cannot follow {before.name!r} "
                "(order: delta, layers, topk|threshold|lowrank, fp16|bf16|int8|int4; each once)"
            )
    sparsifier = next((s for s in stages if s.order == SPARSIFY), None)
    if sparsifier and not any(s.name == "delta" for s in stages):
        raise ConfigError(f"{where}: {sparsifier.name} needs 'delta' before it (compress the update, not the weights)")


def parse_codec(text: str | None, where: str = "codec") -> Codec:
    """Parse a chain like 'delta+topk:0.01+int8' ('' or 'none': no compression)."""
    if text is None or text.strip() in ("", "none"):
        return Codec()
    stages = tuple(parse_stage(part, where) for part in text.split("+"))
    check_order(stages, where)
    return Codec(stages)


def check_downlink(codec: Codec, where: str = "down-codec") -> Codec:
    """Clients keep no previous global model, so the downlink can't send deltas or sparsify them."""
    for stage in codec.stages:
        if stage.order in (DELTA, SPARSIFY):
            raise ConfigError(
                f"{where}: {stage.name} applies to the uplink only "
                "(a client holds no previous global model to add a delta to)"
            )
    return codec


def check_layers(codec: Codec, names: list[str], where: str = "codec") -> Codec:
    """A `layers` stage must select at least one of the model's tensors."""
    if codec.stage("layers") and not any(codec.selects(n) for n in names):
        raise ConfigError(f"{where}: {codec.stage('layers')} selects none of the model's tensors")
    return codec


def layer_selected(name: str, patterns: tuple[str, ...]) -> bool:
    """True if `name` matches an including glob (all, if there are none) and no '-' glob."""
    includes = [p for p in patterns if not p.startswith("-")]
    excludes = [p[1:] for p in patterns if p.startswith("-")]
    included = not includes or any(fnmatch.fnmatchcase(name, p) for p in includes)
    return included and not any(fnmatch.fnmatchcase(name, p) for p in excludes)
