"""A warm start: a checkpoint pre-trained centrally on a quarter of the corpus, cached under build/.

Federated fine-tuning of language models (Flower's FlowerTune, most of the literature) starts from a
pre-trained model. Here pythia-14m's architecture pre-trains on the "pretrain" topics (task.PARTS) and the
clients fine-tune on the other topics. The checkpoint is deterministic (seed 0, seeded batches, a fixed
thread count), stored as .npz under build/warm-start/ and rebuilt whenever the file is missing.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import task

log = logging.getLogger("fedbandwidth")

WARM_DIR = Path("build") / "warm-start"  # checkpoints, relative to the working directory
BUILD_LOCK = threading.Lock()  # one build at a time when threads ask for the same checkpoint
THREADS = 2  # torch threads while pre-training: a fixed count keeps the floating-point sums identical


@dataclass(frozen=True)
class Pretraining:
    """Central pre-training of the warm-start checkpoint on the pre-training topics."""

    steps: int  # AdamW steps
    seq_len: int = 32  # tokens per sequence
    batch_size: int = 16  # sequences per step
    lr: float = 4e-3  # peak learning rate: linear warm-up, then cosine decay to 0
    warmup: int = 20  # steps of linear warm-up
    seed: int = 0  # model init and batches: one checkpoint for every run, whatever its seed

    @property
    def path(self) -> Path:
        """Where the checkpoint is cached."""
        model = f"{task.MODEL}-v{task.VOCAB_SIZE}"
        name = f"{model}-{self.steps}steps-seq{self.seq_len}-batch{self.batch_size}-lr{self.lr:g}-seed{self.seed}"
        return WARM_DIR / f"{name}.npz"

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at `step` (0-based): warm-up, then half a cosine."""
        warm = min(1.0, (step + 1) / self.warmup)
        return warm * 0.5 * (1 + math.cos(math.pi * step / self.steps))


def pretrain(spec: Pretraining) -> dict[str, np.ndarray]:
    """Pre-train the seeded model on the pre-training topics; its weights as name -> float32 array."""
    import torch

    model = task.build_model(spec.seed)
    data = np.stack(task.cut_sequences("train", spec.seq_len, "pretrain")["input_ids"])
    batches = task.sample_batches(data, spec.steps, spec.batch_size, (spec.seed,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, spec.lr_factor)
    threads, _ = torch.get_num_threads(), torch.set_num_threads(THREADS)
    try:
        model.train()
        for batch in batches:
            ids = torch.from_numpy(batch)
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@lru_cache(maxsize=2)
def checkpoint(spec: Pretraining) -> dict[str, np.ndarray]:
    """The warm-start weights: read from the cache, or pre-trained and cached first (once per process)."""
    with BUILD_LOCK:
        if not spec.path.exists():
            log.warning("pre-training the warm start (%d steps, once): %s", spec.steps, spec.path)
            spec.path.parent.mkdir(parents=True, exist_ok=True)
            partial = spec.path.with_suffix(".partial.npz")
            np.savez(partial, **pretrain(spec))
            partial.replace(spec.path)  # a killed build leaves no checkpoint that looks complete
        with np.load(spec.path) as saved:
            return {k: saved[k] for k in saved.files}
