"""Adapters in federated training: clients fine-tune LoRA adapters (peft) of the warm start and send only them.

The global model is the warm-start checkpoint (every party has it) plus adapters; the server sends the
adapters down, the clients train them and send them back, FedAvg averages them. How the average is
formed is the aggregation rule:

- ``ffa`` (FFA-LoRA, Sun et al. 2024): every A stays at its seeded random init on every party; only B
  trains and travels. The update B A is linear in B, so the average of the clients' B gives exactly the
  average of their updates. Half of the adapter bytes, and exact.
- ``fedit`` (FedIT, Zhang et al. 2024; Flower's FlowerTune): A and B both train and travel and are
  averaged separately. The average of products is not the product of averages: inexact.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..adapters import LoraSpec, adapter_tensors, apply_lora, travels
from . import task

DEFAULT_TARGETS = "query_key_value,dense,dense_h_to_4h,dense_4h_to_h"  # every linear layer of the blocks
PEFT_ADAPTER = ".default"  # the adapter's name peft puts in a parameter's name


def wire_name(parameter: str) -> str:
    """An adapter's name in a message, as peft saves it and FlowerTune clients send it (`adapter_state`'s keys)."""
    return parameter.replace(PEFT_ADAPTER + ".", ".")


def with_adapters(model, spec: LoraSpec, seed: int):
    """`model` wrapped with peft LoRA adapters; A's random init is seeded, so every party builds the same A."""
    import torch

    with task.INIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' renamed gradient-checkpointing flag, via peft
        torch.manual_seed(seed)
        return apply_lora(model, spec)


def adapter_arrays(model, rule: str) -> dict[str, np.ndarray]:
    """The adapter tensors that travel under `rule`, by wire name, as float32 arrays (copies)."""
    return {
        wire_name(name): p.detach().numpy().copy() for name, p in adapter_tensors(model).items() if travels(name, rule)
    }


def load_adapters(model, arrays: dict[str, np.ndarray]) -> None:
    """Copy adapters given by wire name into a peft model."""
    names = {wire_name(name): name for name in adapter_tensors(model)}
    task.load_arrays(model, {names[k]: v for k, v in arrays.items()})


def meta_model():
    """pythia-14m's architecture on torch's meta device: module names and shapes, no weights, no memory."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from ..model import CONFIG_DIR

    with torch.device("meta"):
        return GPTNeoXForCausalLM(GPTNeoXConfig.from_json_file(str(CONFIG_DIR / f"{task.MODEL}.json")))


def adapter_shapes(spec: LoraSpec, rule: str) -> dict[str, tuple]:
    """Wire name -> shape of every adapter that travels (on a meta-device model; ConfigError on bad targets)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        adapted = apply_lora(meta_model(), spec)
    return {wire_name(n): tuple(p.shape) for n, p in adapter_tensors(adapted).items() if travels(n, rule)}
