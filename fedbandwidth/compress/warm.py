"""A warm start: a checkpoint pre-trained centrally on half of the training documents until it has flattened.

Federated fine-tuning of language models (Flower's FlowerTune, most of the literature) starts from a
pre-trained model. Here pythia-14m's architecture pre-trains on the "pretrain" documents (task.part_of) and
the clients fine-tune on the others. Pre-training runs AdamW at a constant learning rate after a linear
warm-up, evaluates the pre-training documents of the validation split every `eval_every` steps, and stops
once that loss improved by less than 1% over the last quarter of its steps (or at `steps`). The checkpoint
is deterministic (seed 0, seeded batches, a fixed thread count), stored as .npz under build/warm-start/ with
its loss curve beside it (.json), and rebuilt whenever the file is missing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import task
from .study_rows import flattened

log = logging.getLogger("fedbandwidth")

WARM_DIR = Path("build") / "warm-start"  # checkpoints, relative to the working directory
BUILD_LOCK = threading.Lock()  # one build at a time when threads ask for the same checkpoint
THREADS = 2  # torch threads while pre-training: a fixed count keeps the floating-point sums identical


@dataclass(frozen=True)
class Pretraining:
    """Central pre-training of the warm-start checkpoint on the pre-training documents, until it flattens."""

    steps: int  # AdamW steps at most (it stops earlier once the validation loss has flattened)
    seq_len: int = 32  # tokens per sequence
    batch_size: int = 16  # sequences per step
    lr: float = 4e-3  # learning rate after the warm-up (constant: the loss flattens, not the schedule)
    warmup: int = 20  # steps of linear warm-up
    eval_every: int = 100  # steps between evaluations of the validation loss
    eval_sequences: int = 256  # validation sequences of the pre-training documents it evaluates
    seed: int = 0  # model init and batches: one checkpoint for every run, whatever its seed

    @property
    def path(self) -> Path:
        """Where the checkpoint is cached (its curve: the same name, .json)."""
        model = f"{task.MODEL}-v{task.VOCAB_SIZE}"
        name = f"{model}-flat-max{self.steps}-seq{self.seq_len}-batch{self.batch_size}-lr{self.lr:g}-seed{self.seed}"
        return WARM_DIR / f"{name}.npz"

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier at `step` (0-based): linear warm-up, then constant."""
        return min(1.0, (step + 1) / self.warmup)

    def evaluations(self) -> list[int]:
        """The steps after which the validation loss is evaluated (every eval_every, and the last)."""
        return sorted({*range(self.eval_every, self.steps, self.eval_every), self.steps})


def validation_sequences(spec: Pretraining) -> np.ndarray:
    """`eval_sequences` validation sequences of the pre-training documents, spread evenly (int64)."""
    ids = task.cut_sequences("validation", spec.seq_len, "pretrain")["input_ids"]
    rows = np.linspace(0, len(ids) - 1, min(spec.eval_sequences, len(ids))).round().astype(int)
    return np.stack([ids[i] for i in rows]).astype(np.int64)


def pretrain(spec: Pretraining) -> tuple[dict[str, np.ndarray], dict]:
    """Pre-train the seeded model until its validation loss flattens; (name -> float32 array, its curve)."""
    import torch

    model = task.build_model(spec.seed)
    data = np.stack(task.cut_sequences("train", spec.seq_len, "pretrain")["input_ids"])
    held, checks = validation_sequences(spec), set(spec.evaluations())
    batches = task.sample_batches(data, spec.steps, spec.batch_size, (spec.seed,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, spec.lr_factor)
    curve = {"step": [], "train_loss": [], "val_loss": [], "flattened": False}
    threads, _, started = torch.get_num_threads(), torch.set_num_threads(THREADS), time.monotonic()
    try:
        for step, batch in enumerate(batches, start=1):
            model.train()
            ids = torch.from_numpy(batch)
            (loss := model(input_ids=ids, labels=ids).loss).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            schedule.step()
            if step in checks and record(curve, step, loss.item(), task.evaluate(model, held)):
                break
    finally:
        torch.set_num_threads(threads)
    curve["seconds"] = round(time.monotonic() - started, 1)
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, curve


def record(curve: dict, step: int, train_loss: float, val_loss: float) -> bool:
    """Add an evaluation to the curve (logged); True once the validation loss has flattened."""
    curve["step"].append(step)
    curve["train_loss"].append(round(train_loss, 5))
    curve["val_loss"].append(round(val_loss, 5))
    curve["flattened"] = flattened(curve["val_loss"])
    log.info("pre-training step %d: train loss %.4f, validation loss %.4f", step, train_loss, val_loss)
    return curve["flattened"]


def curve(spec: Pretraining) -> dict:
    """The cached checkpoint's pre-training curve (steps, train and validation losses, flattened, seconds)."""
    checkpoint(spec)
    return json.loads(spec.path.with_suffix(".json").read_text())


@lru_cache(maxsize=2)
def checkpoint(spec: Pretraining) -> dict[str, np.ndarray]:
    """The warm-start weights: read from the cache, or pre-trained and cached first (once per process)."""
    with BUILD_LOCK:
        if not spec.path.exists():
            log.warning("pre-training the warm start (%d steps, once): %s", spec.steps, spec.path)
            spec.path.parent.mkdir(parents=True, exist_ok=True)
            partial = spec.path.with_suffix(".partial.npz")
            arrays, losses = pretrain(spec)
            np.savez(partial, **arrays)
            spec.path.with_suffix(".json").write_text(json.dumps(losses) + "\n")
            partial.replace(spec.path)  # a killed build leaves no checkpoint that looks complete
        with np.load(spec.path) as saved:
            return {k: saved[k] for k in saved.files}
