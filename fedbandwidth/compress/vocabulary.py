"""Dead vocabulary: how much of a model's message is embedding and output rows no token of the data uses.

A language model's input embedding and (untied) output layer have one row per vocabulary entry. Rows of tokens
the data never holds learn nothing the data taught, yet a float32 message carries them every round; a lever
that skips them (adapters, a frozen embedding) or captures their shared update (low rank) gets that part for
free, and its ratio to such a reference measures the vocabulary, not the lever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..payload import predicted_payload_bytes

EMBEDDING = "gpt_neox.embed_in.weight"  # the input embedding: its first dimension is the vocabulary


@dataclass(frozen=True)
class DeadRows:
    """One model's float32 message next to the rows of its vocabulary tensors that a corpus never uses."""

    vocab_size: int  # rows of the input embedding (and of the output layer)
    used_rows: int  # distinct tokens of the corpus
    message_bytes: int  # payload bytes of one float32 message of every tensor
    dead_bytes: int  # bytes of the unused rows, over every vocabulary-sized tensor

    @property
    def dead_share(self) -> float:
        """The share of the message that is unused rows."""
        return self.dead_bytes / self.message_bytes

    @property
    def live_share(self) -> float:
        """The share of the message the data can teach."""
        return 1.0 - self.dead_share


def byte_tokens_used(corpus: bytes) -> int:
    """Distinct byte values of a corpus: the rows a byte-level model's data uses."""
    return int(np.unique(np.frombuffer(corpus, dtype=np.uint8)).size)


def dead_rows(specs: list, used_rows: int) -> DeadRows:
    """The unused rows of every tensor whose first dimension is the vocabulary (`specs`: TensorSpecs)."""
    vocab = next(s.shape[0] for s in specs if s.name == EMBEDDING)
    rows = [s for s in specs if len(s.shape) == 2 and s.shape[0] == vocab]
    dead = sum((vocab - used_rows) * s.nbytes // vocab for s in rows)
    return DeadRows(vocab, used_rows, predicted_payload_bytes(specs, [s.name for s in specs]), dead)


def ratio_against_live(ratio: float, dead: DeadRows) -> float:
    """A lever's ratio against a reference without the dead rows, for a lever whose message holds none of them
    (same rounds assumed): the reference shrinks to its live share, the lever does not."""
    return ratio * dead.live_share
