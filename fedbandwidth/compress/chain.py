"""A codec chain: what shrinks a federated message, written as text and parsed into stages.

A codec is a chain of stages written left to right with ``+``, e.g. ``delta+topk:0.01+int8``:

- ``delta``: send the update instead of the weights: up, local - global; down, global - the model the
  client holds (messages.py);
- ``layers:<glob>[,<glob>...]``: send only the tensors whose name matches (``-<glob>`` excludes);
- ``topk:<fraction>[:noef]`` / ``threshold:<tau>[:noef]``: keep the largest entries of the update;
  what is not sent is kept as a residual and added to the next update (error feedback) unless ``noef``;
- ``lowrank:<rank>[:noef]``: send each matrix of the update as two thin factors P (m x r) and Q (n x r)
  with P Q^T its best rank-r approximation (truncated SVD; Konecny et al. 2016, PowerSGD); vectors and
  matrices too small to gain are sent whole; error feedback as for top-k;
- ``dgc:<density>[:<momentum>[:<clip>]]``: Deep Gradient Compression's top-k of the momentum-corrected,
  clipped, accumulated update, with a density warm-up (uplink only; dgc.py);
- ``fp16``, ``bf16``, ``int8[:<block>]``, ``int4[:<block>]``, ``int2[:<block>]``: store the values in fewer
  bits (affine quantization per tensor, or per block of about ``block`` values; int4 packs two a byte, int2 four).

Each lever is a ``stage.Lever`` in its own module (values, sparse, lowrank; delta and layers here), listed once
in ``LEVERS``; a chain is parsed by looking its names up there, and encoding.py applies it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from itertools import groupby, pairwise

import numpy as np

from ..checks import ConfigError
from . import dgc, lowrank, sparse, values
from .stage import DELTA, LAYERS, SPARSIFY, VALUES, Lever, Stage

__all__ = ["DELTA", "LAYERS", "SPARSIFY", "VALUES", "Codec", "Stage", "parse_codec"]


class Delta(Lever):
    """``delta``: send the update (local - reference) instead of the weights; encoding.py subtracts and adds."""

    name, order = "delta", DELTA


class Layers(Lever):
    """``layers:<glob>[,<glob>...]``: send only the tensors whose name matches (``-<glob>`` excludes)."""

    name, order = "layers", LAYERS

    def parse(self, args: list[str], where: str) -> Stage:
        """One or more comma-separated globs."""
        patterns = tuple(p for p in ":".join(args).split(",") if p)
        if not patterns:
            raise ConfigError(f"{where}: layers needs a pattern, e.g. 'layers:-*embed_in*,-lm_head*'")
        return Stage(self, patterns=patterns)

    def text(self, stage: Stage) -> str:
        """'layers:' and the globs."""
        return f"layers:{','.join(stage.patterns)}"

    def encode(self, stage: Stage, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Only the selected tensors."""
        return {k: v for k, v in arrays.items() if layer_selected(k, stage.patterns)}


# The one registry of levers, in chain order: a new lever is its module and a line here.
LEVERS: tuple[Lever, ...] = (Delta(), Layers(), *sparse.LEVERS, lowrank.LEVER, dgc.LEVER, *values.LEVERS)
REGISTRY = {lever.name: lever for lever in LEVERS}
VALUE_CODECS = tuple(lever.name for lever in LEVERS if lever.order == VALUES)
KNOWN = ("none", *REGISTRY)


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


def parse_stage(text: str, where: str = "codec") -> Stage:
    """Parse one stage such as 'topk:0.01' or 'int8:256'; raise ConfigError if malformed."""
    name, *args = text.strip().split(":")
    if name not in REGISTRY:
        raise ConfigError(f"{where}: unknown codec {name!r}; known: {', '.join(KNOWN)}")
    return REGISTRY[name].parse(args, where)


def order_text() -> str:
    """The order levers must come in, as the error says it: 'delta, layers, topk|threshold|lowrank, ...'."""
    return ", ".join("|".join(lever.name for lever in group) for _, group in groupby(LEVERS, lambda lever: lever.order))


def check_order(stages: tuple[Stage, ...], where: str) -> None:
    """Stages must come in the order delta, layers, sparsifier, value codec, each at most once."""
    for before, after in pairwise(stages):
        if after.order <= before.order:
            raise ConfigError(
                f"{where}: {after.name!r} cannot follow {before.name!r} (order: {order_text()}; each once)"
            )
    needy = next((s for s in stages if s.lever.needs_delta), None)
    if needy and not any(s.order == DELTA for s in stages):
        raise ConfigError(f"{where}: {needy.name} needs 'delta' before it (compress the update, not the weights)")


def parse_codec(text: str | None, where: str = "codec") -> Codec:
    """Parse a chain like 'delta+topk:0.01+int8' ('' or 'none': no compression)."""
    if text is None or text.strip() in ("", "none"):
        return Codec()
    stages = tuple(parse_stage(part, where) for part in text.split("+"))
    check_order(stages, where)
    return Codec(stages)


def check_downlink(codec: Codec, where: str = "down-codec") -> Codec:
    """On the downlink, what a lossy stage drops stays in the next delta; ':noef' would mean nothing there."""
    sparsifier = codec.sparsifier
    if sparsifier is not None and sparsifier.lever.uplink_only:
        raise ConfigError(f"{where}: {sparsifier.name} applies to the uplink only (its state lives on the client)")
    if sparsifier is not None and not sparsifier.error_feedback:
        raise ConfigError(
            f"{where}: {sparsifier.name}:noef means nothing on the downlink "
            "(the next delta is taken from the model the client holds, so nothing is dropped for good)"
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
