"""The tokenizer: byte-level BPE fitted on the training split only, deterministic, its rows nearly all used."""

import json
import os
import subprocess
import sys

import numpy as np

from fedbandwidth.compress import corpus, task, tokenizer

TEXTS = ["the federated model sends its weights", "bytes to a target loss", "the the weights weights"] * 20
FIT = "import sys; from fedbandwidth.compress import tokenizer; print(tokenizer.fit({t!r}, 300).to_str())"


def test_fit_is_deterministic_whatever_the_threads():
    first = tokenizer.fit(TEXTS, 300).to_str()
    assert tokenizer.fit(TEXTS, 300).to_str() == first
    env = {**os.environ, "RAYON_RS_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    one = subprocess.run([sys.executable, "-c", FIT.format(t=TEXTS)], env=env, capture_output=True, text=True)
    assert one.stdout.strip() == first
    alphabet = {c for c in json.loads(first)["model"]["vocab"] if len(c) == 1}
    assert alphabet == set("".join(TEXTS).replace(" ", "Ġ"))  # only the bytes seen: no unused byte rows


def test_trainer_sees_the_training_split_only(tmp_path, monkeypatch):
    seen = []
    real_fit = tokenizer.fit
    monkeypatch.setattr(tokenizer, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(tokenizer, "fit", lambda texts, size: seen.append(texts) or real_fit(texts[:50], size))
    tokenizer.tokenizer.cache_clear()
    try:
        tok = tokenizer.tokenizer(300)
    finally:
        tokenizer.tokenizer.cache_clear()
    assert seen == [list(corpus.split_documents("train").values())]
    assert tok.get_vocab_size() == 300 and tokenizer.cache_path(300).exists()


def test_rows_used_fraction_is_counted_from_the_data():
    assert tokenizer.rows_used_fraction([np.array([0, 1, 1]), np.array([3])], 8) == 3 / 8
    train = list(task.token_ids("train").values())
    used = len(set(np.concatenate(train).tolist()))
    assert tokenizer.tokenizer().get_vocab_size() == tokenizer.VOCAB_SIZE == 4096
    assert tokenizer.rows_used_fraction(train, tokenizer.VOCAB_SIZE) == used / 4096 >= 0.95
