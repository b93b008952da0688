"""Tensor names, shapes and dtypes of any architecture, from its real code on PyTorch's meta device.

A model built on the ``meta`` device has no weights and takes no memory: a 7B model in a fraction of a
second, with the exact state-dict names and shapes of the real checkpoint. peft adds LoRA adapters to it
just as to a real model, so adapter sizes are exact too. The pythia family keeps its torch-free specs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .adapters import LoraSpec, adapter_state, apply_lora, unmatched_targets
from .catalog import ModelSource, resolve
from .model import TensorSpec, known_models, tensor_specs

DTYPES = ("float32", "bfloat16", "float16")  # dtypes a message's floating-point arrays can travel in
NPY_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "int16"}  # Flower's Array refuses
# torch.bfloat16 (numpy has no such dtype): its bits travel as 2-byte integers, e.g. tensor.view(torch.int16)


def build_meta(source: ModelSource):
    """The config's model on the meta device, float32: AutoModelForCausalLM, else AutoModel."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    settings = {k: v for k, v in source.config.items() if k != "model_type" and not k.startswith("_")}
    config = AutoConfig.for_model(source.model_type, **settings)
    with torch.device("meta"):
        try:
            return AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        except ValueError:  # not a causal LM (e.g. an encoder): its bare model
            return AutoModel.from_config(config, dtype=torch.float32)


@lru_cache(maxsize=32)
def meta_model(name: str):
    """The meta-device model `name` resolves to (cached: a name means the same config all session)."""
    return build_meta(resolve(name))


def lora_on_meta(model, lora: LoraSpec):
    """`model` (on the meta device) wrapped with peft LoRA adapters `lora`."""
    import warnings

    import torch

    with torch.device("meta"), warnings.catch_warnings():  # on meta: no real adapter tensors (slow for 7B)
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers method deprecated in v5
        return apply_lora(model, lora, warn=False)  # the forecast names unmatched targets itself


@lru_cache(maxsize=64)
def lora_meta_model(name: str, lora: LoraSpec):
    """A meta-device model of `name` wrapped with peft LoRA adapters `lora` (cached)."""
    return lora_on_meta(build_meta(resolve(name)), lora)


def state_rows(state: dict) -> list[list]:
    """A state dict as JSON-ready rows: [name, shape, is floating point, torch dtype name]."""
    return [[k, list(t.shape), t.is_floating_point(), str(t.dtype).removeprefix("torch.")] for k, t in state.items()]


def specs_from(rows: list[list], dtype: str = "float32") -> list[TensorSpec]:
    """TensorSpecs of state rows: floating-point tensors travel in `dtype`, the others as they are."""
    npy = NPY_DTYPES[dtype]
    return [TensorSpec(name, tuple(shape), npy if floating else kind) for name, shape, floating, kind in rows]


def specs_of(state: dict, dtype: str = "float32") -> list[TensorSpec]:
    """TensorSpecs of a state dict: floating-point tensors travel in `dtype`, the others as they are."""
    return specs_from(state_rows(state), dtype)


def facts_of(model) -> dict:
    """What a forecast needs of a (meta-device) model, JSON-ready; "modules" holds nn.Linear's [in, out], else None."""
    from torch import nn

    return {
        "architecture": type(model).__name__,
        "state": state_rows(model.state_dict()),
        "parameters": unique_parameters(model),
        "tied_keys": tied_keys(model),
        "modules": {
            name: [m.in_features, m.out_features] if type(m) is nn.Linear else None
            for name, m in model.named_modules()
            if name
        },
    }


def adapter_facts_of(model, lora: LoraSpec) -> dict:
    """What a forecast needs of `lora` on a meta-device `model`, from peft itself: adapter rows, peft's count."""
    unmatched = unmatched_targets([name for name, _ in model.named_modules()], lora)
    adapted = lora_on_meta(model, lora)
    return {
        "state": state_rows(adapter_state(adapted)),
        "peft_trainable_parameters": adapted.get_nb_trainable_parameters()[0],
        "unmatched_targets": unmatched,
    }


def tied_keys(model) -> list[str]:
    """State-dict keys that hold a parameter already present under another key (tied weights)."""
    every = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    return sorted(every - {name for name, _ in model.named_parameters()})


def unique_parameters(model) -> int:
    """Parameters of the model, a tied tensor counted once (as transformers and peft count them)."""
    return sum(p.numel() for p in model.parameters())


def default_lora_targets(model_type: str) -> tuple[str, ...]:
    """peft's default LoRA targets for an architecture (e.g. llama: q_proj, v_proj); () if it has none."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    return tuple(DEFAULTS.get(model_type, ()))


def model_specs(name: str) -> list[TensorSpec]:
    """The float32 state-dict specs of any model name: pythia's without torch, others from their facts (`shapes`)."""
    from .shapes import model_facts

    return tensor_specs(name) if name in known_models() else specs_from(model_facts(name)["state"])


def zero_arrays(specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays of zeros with the specs' names, shapes and dtypes (bytes depend on nothing else)."""
    return {s.name: np.zeros(s.shape, s.dtype) for s in specs}
