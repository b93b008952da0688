"""LoRA adapters (Hugging Face peft): which modules get a low-rank adapter, checked before anything is built.

A LoRA of rank r on a linear layer W (out x in) adds A (r x in) and B (out x r); only A and B train and
travel, W stays frozen. peft matches a target against module names: equal, or ending in ".<target>".
The same helpers serve a real model (training) and a model on torch's `meta` device (exact sizes, no memory).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .checks import ConfigError, check_count

log = logging.getLogger("fedbandwidth")

LORA_MARKER = "lora_"  # peft names adapter tensors "...lora_A..." / "...lora_B..." / "...lora_magnitude_vector"
MAGNITUDE = "lora_magnitude_vector"  # DoRA's magnitude vector (one value per output feature): it trains too
RULES = ("ffa", "fedit")  # what travels: FFA-LoRA (A frozen at a shared seeded init, only B) or FedIT (A and B)


def travels(name: str, rule: str) -> bool:
    """True if the adapter tensor `name` trains and travels under `rule` (ffa: B and DoRA's magnitude; fedit: all)."""
    return (LORA_MARKER + "B" in name or MAGNITUDE in name) if rule == "ffa" else LORA_MARKER in name


def parse_targets(text: str) -> tuple[str, ...]:
    """Module names from 'a,b,c' (spaces ignored); ConfigError if none is given."""
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    if not targets:
        raise ConfigError(f"lora-targets must name at least one module, got {text!r}")
    return targets


@dataclass(frozen=True)
class LoraSpec:
    """Adapters of rank `rank` on the modules named in `targets`; invalid values raise ConfigError."""

    rank: int  # r: adapters' inner dimension (A is r x in, B is out x r)
    targets: tuple[str, ...]  # module names (or their last parts), e.g. ("query_key_value", "dense")
    alpha: float | None = None  # lora_alpha: updates are scaled by alpha / rank; None = rank (scale 1)
    dora: bool = False  # DoRA (peft's use_dora): a magnitude vector per adapted layer trains and travels too

    def __post_init__(self) -> None:
        check_count("lora-rank", self.rank)
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise ConfigError(f"lora-targets must be non-empty module names, got {self.targets!r}")


def matches(module_name: str, target: str) -> bool:
    """peft's rule: a target names a module if it equals its name or its name ends in '.<target>'."""
    return module_name == target or module_name.endswith("." + target)


def unmatched_targets(names: list[str], spec: LoraSpec) -> list[str]:
    """The targets naming no module in `names`, as peft goes on without them; ConfigError if none names any."""
    unmatched = [t for t in spec.targets if not any(matches(name, t) for name in names)]
    if len(unmatched) == len(spec.targets):
        leaves = sorted({name.rsplit(".", 1)[-1] for name in names} - {""} - set(map(str, range(len(names)))))
        quoted = ", ".join(map(repr, unmatched))
        raise ConfigError(
            f"lora-targets: {quoted} {'matches' if len(unmatched) == 1 else 'match'} no module of the model; "
            f"module names end in: {', '.join(leaves)}"
        )
    return unmatched


def check_targets(model, spec: LoraSpec) -> list[str]:
    """The targets naming no module of `model` (logged, as peft goes on); ConfigError if none names any."""
    unmatched = unmatched_targets([name for name, _ in model.named_modules()], spec)
    if unmatched:
        log.warning("lora-targets: %s matched no module of the model (peft goes on without)", ", ".join(unmatched))
    return unmatched


def lora_config(spec: LoraSpec):
    """The peft LoraConfig of `spec` (no dropout, no bias training)."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha or spec.rank,
        target_modules=list(spec.targets),
        lora_dropout=0.0,
        bias="none",
        use_dora=spec.dora,
    )


def apply_lora(model, spec: LoraSpec, warn: bool = True):
    """Wrap `model` with peft LoRA adapters (base weights frozen); ConfigError if peft refuses a target."""
    from peft import get_peft_model

    if warn:
        check_targets(model, spec)
    else:
        unmatched_targets([name for name, _ in model.named_modules()], spec)
    try:
        return get_peft_model(model, lora_config(spec))
    except ValueError as err:  # e.g. a target that is a LayerNorm, which LoRA does not support
        raise ConfigError("lora-targets: " + " ".join(str(err).split())) from None


def adapter_tensors(model) -> dict:
    """The adapter parameters of a peft model, by name (the only tensors that train and travel)."""
    return {name: p for name, p in model.named_parameters() if LORA_MARKER in name}


def adapter_state(model) -> dict:
    """The adapters as peft saves and FlowerTune clients send them (get_peft_model_state_dict: no adapter name)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, save_embedding_layers=False)  # "auto" may look the model up on the hub
