"""The pythia models: their architecture from a shipped config, and loading with an offline fallback.

Bandwidth depends only on tensor names, shapes and dtypes, so the architecture built from
``configs/<name>.json`` gives the exact bytes of the real checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("fedbandwidth")

CONFIG_DIR = Path(__file__).parent / "configs"
HUB_ORG = "EleutherAI"
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one tensor of a state dict."""

    name: str  # state-dict key, e.g. "gpt_neox.embed_in.weight"
    shape: tuple[int, ...]  # tensor shape
    dtype: str = "float32"  # numpy dtype name

    @property
    def numel(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Raw tensor bytes (numel x itemsize)."""
        return self.numel * np.dtype(self.dtype).itemsize


def known_models() -> list[str]:
    """The GPTNeoX configs (pythia and the toy tiny-gptneox), whose tensor specs are computed here without
    torch (catalog.py lists every config)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if json.loads(p.read_text())["model_type"] == "gpt_neox")


def load_config(name: str = "pythia-14m") -> dict:
    """Read the shipped config.json of a known model."""
    path = CONFIG_DIR / f"{name}.json"
    if not path.exists():
        raise ValueError(f"unknown model {name!r}; known: {', '.join(known_models())}")
    return json.loads(path.read_text())


def _layer_specs(i: int, hidden: int, inner: int) -> list[TensorSpec]:
    """The 12 tensors of one GPTNeoX layer, in state-dict order."""
    p = f"gpt_neox.layers.{i}."
    shapes = [
        ("input_layernorm.weight", (hidden,)),
        ("input_layernorm.bias", (hidden,)),
        ("post_attention_layernorm.weight", (hidden,)),
        ("post_attention_layernorm.bias", (hidden,)),
        ("attention.query_key_value.weight", (3 * hidden, hidden)),
        ("attention.query_key_value.bias", (3 * hidden,)),
        ("attention.dense.weight", (hidden, hidden)),
        ("attention.dense.bias", (hidden,)),
        ("mlp.dense_h_to_4h.weight", (inner, hidden)),
        ("mlp.dense_h_to_4h.bias", (inner,)),
        ("mlp.dense_4h_to_h.weight", (hidden, inner)),
        ("mlp.dense_4h_to_h.bias", (hidden,)),
    ]
    return [TensorSpec(p + n, s) for n, s in shapes]


def tensor_specs(name: str = "pythia-14m") -> list[TensorSpec]:
    """The float32 state-dict tensors of a GPTNeoX model, computed from its config (no torch)."""
    cfg = load_config(name)
    vocab, hidden = cfg["vocab_size"], cfg["hidden_size"]
    specs = [TensorSpec("gpt_neox.embed_in.weight", (vocab, hidden))]
    for i in range(cfg["num_hidden_layers"]):
        specs += _layer_specs(i, hidden, cfg["intermediate_size"])
    specs += [
        TensorSpec("gpt_neox.final_layer_norm.weight", (hidden,)),
        TensorSpec("gpt_neox.final_layer_norm.bias", (hidden,)),
    ]
    if not cfg.get("tie_word_embeddings", False):
        specs.append(TensorSpec("lm_head.weight", (vocab, hidden)))
    return specs


def iter_random_arrays(name: str = "pythia-14m", seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """(name, array) pairs of freshly initialised float32 arrays, made one at a time (no torch)."""
    rng = np.random.default_rng(seed)
    for spec in tensor_specs(name):
        yield spec.name, rng.standard_normal(spec.shape, dtype=np.float32) * np.float32(0.02)


def random_arrays(name: str = "pythia-14m", seed: int = 0) -> dict[str, np.ndarray]:
    """Freshly initialised float32 arrays with the model's exact names and shapes (no torch)."""
    return dict(iter_random_arrays(name, seed))


def hub_reachable(timeout: float = 1.0) -> bool:
    """True if the Hugging Face hub answers a TCP connect within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout)  # DNS look-ups ignore socket timeouts; the join bounds them
    return bool(result and result[0])


def build_from_config(name: str = "pythia-14m"):
    """Build the model's exact architecture (random weights, float32) from the shipped config."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig.from_json_file(str(CONFIG_DIR / f"{name}.json"))
    return GPTNeoXForCausalLM(config).float()


@contextmanager
def hub_offline():
    """Make huggingface_hub behave as with HF_HUB_OFFLINE=1, even if it was imported without it."""
    from huggingface_hub import constants

    saved, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def in_hub_cache(repo: str, cache_dir: str | None = None) -> bool:
    """True if the repo's config.json is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "config.json", cache_dir=cache_dir), str)


def load_pythia(name: str = "pythia-14m", cache_dir: str | None = None):
    """Load EleutherAI/<name> in float32 from the cache or the hub; else build it from its config."""
    load_config(name)  # fail early, clearly, on an unknown name
    repo = f"{HUB_ORG}/{name}"
    online = hub_reachable()
    reason = "is not in the local cache and the hub is unreachable"
    if online or in_hub_cache(repo, cache_dir):
        import torch
        from transformers import AutoModelForCausalLM

        try:
            with nullcontext() if online else hub_offline():
                return AutoModelForCausalLM.from_pretrained(
                    repo, cache_dir=cache_dir, dtype=torch.float32, local_files_only=not online
                )
        except OSError as err:
            reason = f"could not be loaded ({err})"
    log.warning(
        "%s %s: built the same architecture from configs/%s.json (random weights; shapes and bytes are exact).",
        repo,
        reason,
        name,
    )
    return build_from_config(name)


def state_dict_arrays(model) -> dict[str, np.ndarray]:
    """The model's state dict as numpy arrays (views on the CPU tensors, no copy)."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
