"""What one local AdamW step costs on the new task (4,096-row vocabulary) vs the old (pythia-14m's 50,304 rows).

Same batch shape for both (batch x seq_len tokens), same thread count, measured in one run; prints the ratio.
Run: flock /work/coord/cpu.lock nice -n 10 .venv/bin/python benchmarks/bench_task.py
"""

import time

import numpy as np
import torch

from fedbandwidth.compress import task
from fedbandwidth.model import build_from_config

BATCH, SEQ_LEN, STEPS, REPEATS = 4, 128, 10, 3


def step_seconds(model, vocab: int) -> float:
    """Best-of-REPEATS mean seconds of one AdamW step on random tokens below `vocab`."""
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, vocab, (BATCH, SEQ_LEN)) for _ in range(STEPS)]
    task.train_steps(model, batches[:2], 1e-3)  # warm-up
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        task.train_steps(model, batches, 1e-3)
        best = min(best, (time.perf_counter() - start) / STEPS)
    return best


def main() -> None:
    """Time both models and print seconds per step and their ratio."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    old = step_seconds(build_from_config("pythia-14m"), 50_304)
    new = step_seconds(task.build_model(0), task.VOCAB_SIZE)
    print(f"batch {BATCH} x {SEQ_LEN} tokens, 1 thread, best of {REPEATS} x {STEPS} steps")
    print(f"old (50,304 rows): {old * 1e3:.1f} ms/step; new ({task.VOCAB_SIZE:,} rows): {new * 1e3:.1f} ms/step")
    print(f"new / old step cost: {new / old:.3f} ({old / new:.2f}x cheaper)")


if __name__ == "__main__":
    main()
