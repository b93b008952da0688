"""The model a training run starts from, and the tensors that travel: all the weights, or only LoRA adapters.

Every party (server and clients) builds the same starting model: pythia-14m's architecture with a seeded
init, the warm-start checkpoint loaded over it if the run has one, and seeded LoRA adapters on top if the
run trains adapters. Messages then carry either the full state dict or only the adapters (lora.py).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..adapters import travels
from . import lora, task, warm


def start_model(cfg):
    """The model every party starts from: seeded init or the warm start, with adapters if the run has them."""
    model = task.build_model(cfg.seed)
    if cfg.warm_start:
        task.load_arrays(model, warm.checkpoint(cfg.pretraining))
    return model if cfg.lora_spec is None else lora.with_adapters(model, cfg.lora_spec, cfg.seed)


def sent_arrays(cfg, model) -> dict[str, np.ndarray]:
    """What a message carries of `model`: its whole state dict, or the adapters that travel."""
    if cfg.lora_spec is not None:
        return lora.adapter_arrays(model, cfg.lora_rule)
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def load_sent(cfg, model, arrays: dict[str, np.ndarray]) -> None:
    """Copy what a message carried into `model` (tensors not sent keep their values)."""
    if cfg.lora_spec is not None:
        lora.load_adapters(model, arrays)
    else:
        task.load_arrays(model, arrays)


def trainable(cfg, up_codec):
    """Which parameters train: the adapters that travel, or the tensors the uplink codec sends."""
    if cfg.lora_spec is not None:
        return lambda name: travels(name, cfg.lora_rule)
    return up_codec.selects


@lru_cache(maxsize=16)
def sent_shapes(cfg) -> dict[str, tuple]:
    """Name -> shape of every tensor a message carries (no weights built; ConfigError on bad adapter targets)."""
    if cfg.lora_spec is not None:
        return lora.adapter_shapes(cfg.lora_spec, cfg.lora_rule)
    return task.model_shapes()
