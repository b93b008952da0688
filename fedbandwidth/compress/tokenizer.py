"""A byte-level BPE tokenizer fitted offline (Hugging Face `tokenizers`) on the corpus's training split only.

Its alphabet is the bytes that occur in the training documents (not all 256: unused rows would be dead
weight), and VOCAB_SIZE is small enough that >= 95% of its rows occur in the tokenized training split
(a merge absorbed into longer tokens counts against it; `rows_used_fraction` measures it). Training is
deterministic; the tokenizer is cached as JSON under build/tokenizer/ and rebuilt when missing.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import corpus

VOCAB_SIZE = 4096  # rows of the embedding and the output layer (the model's vocab_size)
CACHE_DIR = Path("build") / "tokenizer"  # relative to the working directory
BUILD_LOCK = threading.Lock()


def fit(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts` to `vocab_size` rows (alphabet: the bytes seen)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False, initial_alphabet=[])
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def cache_path(vocab_size: int) -> Path:
    """Where the fitted tokenizer of this size is cached (named after the corpus it was fitted on)."""
    return CACHE_DIR / f"bpe-{vocab_size}-{corpus.CORPUS_SHA256[:12]}.json"


@lru_cache(maxsize=2)
def tokenizer(vocab_size: int = VOCAB_SIZE):
    """The task's tokenizer: read from build/tokenizer/, or fitted on the training split and cached first."""
    from tokenizers import Tokenizer

    path = cache_path(vocab_size)
    with BUILD_LOCK:
        if not path.exists():
            tok = fit(list(corpus.split_documents("train").values()), vocab_size)
            path.parent.mkdir(parents=True, exist_ok=True)
            tok.save(str(path.with_suffix(".partial")))
            path.with_suffix(".partial").replace(path)
    return Tokenizer.from_file(str(path))


def encode(tok, texts: list[str]) -> list[np.ndarray]:
    """Token ids of each text (int64)."""
    return [np.asarray(e.ids, dtype=np.int64) for e in tok.encode_batch(texts)]


def rows_used_fraction(ids: list[np.ndarray], vocab_size: int) -> float:
    """Share of the vocabulary's rows that occur at least once in `ids`."""
    return len(np.unique(np.concatenate(ids))) / vocab_size
