"""Tensor names, shapes and dtypes of any architecture, from its real code on PyTorch's meta device.

A model built on the ``meta`` device has no weights and takes no memory: a 7B model in a fraction of a
second, with the exact state-dict names and shapes of the real checkpoint. peft adds LoRA adapters to it
just as to a real model, so adapter sizes are exact too. The pythia family keeps its torch-free specs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .adapters import LoraSpec, apply_lora
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


@lru_cache(maxsize=64)
def lora_meta_model(name: str, lora: LoraSpec):
    """A meta-device model of `name` wrapped with peft LoRA adapters `lora` (cached)."""
    import warnings

    import torch

    with torch.device("meta"), warnings.catch_warnings():  # on meta: no real adapter tensors (slow for 7B)
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers method deprecated in v5
        return apply_lora(build_meta(resolve(name)), lora)


def specs_of(state: dict, dtype: str = "float32") -> list[TensorSpec]:
    """TensorSpecs of a state dict: floating-point tensors travel in `dtype`, the others as they are."""
    npy = NPY_DTYPES[dtype]
    return [
        TensorSpec(name, tuple(t.shape), npy if t.is_floating_point() else str(t.dtype).removeprefix("torch."))
        for name, t in state.items()
    ]


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
    """The float32 state-dict specs of any model name: pythia's without torch, others from the meta device."""
    return tensor_specs(name) if name in known_models() else specs_of(meta_model(name).state_dict())


def zero_arrays(specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Arrays of zeros with the specs' names, shapes and dtypes (bytes depend on nothing else)."""
    return {s.name: np.zeros(s.shape, s.dtype) for s in specs}
