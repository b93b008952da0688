"""The training task: pythia-14m's architecture with a vocabulary fitted to the data, offline, on CPU.

Text: the docstrings of pinned packages (corpus.py, 8.3 MB, checked by sha256), split by document into
train / validation / test. Tokens: a byte-level BPE fitted on the training split (tokenizer.py), whose
VOCAB_SIZE rows are nearly all used, so no message carries dead rows. The model is pythia-14m's config with
vocab_size replaced. Sequences are cut per document; the server evaluates on fixed validation and test
sequences (the same for every run and seed). Training documents are partitioned across clients with Flower
Datasets: IID, or non-IID by a seeded Dirichlet (alpha 0.5) over document groups; the run's seed changes
both. For a warm start the training documents are split in two: half pre-trains centrally (warm.py), the
clients fine-tune on the other half.
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache

import numpy as np

from . import corpus, tokenizer

MODEL = "pythia-14m"  # architecture, built from fedbandwidth/configs with vocab_size = VOCAB_SIZE (random init)
VOCAB_SIZE = tokenizer.VOCAB_SIZE  # the fitted tokenizer's rows
PARTITIONINGS = ("iid", "dirichlet")  # IID sequences, or a seeded Dirichlet over document groups
DIRICHLET_ALPHA = 0.5  # concentration of the non-IID partitions (smaller: more skewed)
PARTS = ("all", "pretrain", "finetune")  # training documents: all, the pre-training half, the other half
INIT_LOCK = threading.Lock()  # serializes seeded model builds across threads
EVAL_BATCH = 16  # sequences per evaluation forward
PRETRAIN_SHARE = 0.5  # of the training documents, pre-training the warm start (the rest fine-tune)


def part_of(path: str) -> str:
    """Which half of the training documents a document is in ("pretrain" or "finetune"), from its path's hash."""
    u = int.from_bytes(hashlib.sha256(b"part:" + path.encode("utf-8")).digest()[:8], "big") / 2**64
    return "pretrain" if u < PRETRAIN_SHARE else "finetune"


@lru_cache(maxsize=3)
def token_ids(split: str) -> dict[str, np.ndarray]:
    """path -> token ids of every document of a split (train, validation or test)."""
    docs = corpus.split_documents(split)
    return dict(zip(docs, tokenizer.encode(tokenizer.tokenizer(), list(docs.values())), strict=True))


@lru_cache(maxsize=8)
def cut_sequences(split: str, seq_len: int, part: str = "all") -> dict[str, list]:
    """Non-overlapping windows of `seq_len` tokens per document of a split: columns input_ids, doc, group."""
    ids, docs, groups = [], [], []
    for path, tokens in token_ids(split).items():
        if part != "all" and part_of(path) != part:
            continue
        for start in range(0, len(tokens) - seq_len + 1, seq_len):
            ids.append(tokens[start : start + seq_len])
            docs.append(path)
            groups.append(corpus.group_of(path))
    return {"input_ids": ids, "doc": docs, "group": groups}


@lru_cache(maxsize=4)
def train_dataset(seq_len: int, part: str = "all"):
    """The training sequences of a part as a Hugging Face Dataset (columns input_ids, doc, group)."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    cut = cut_sequences("train", seq_len, part)
    return Dataset.from_dict({**cut, "input_ids": np.stack(cut["input_ids"])})


@lru_cache(maxsize=8)
def partitioner(num_partitions: int, partitioning: str, seq_len: int, part: str = "all", seed: int = 0):
    """A Flower Datasets partitioner over a part's training sequences: IID (seeded shuffle) or seeded Dirichlet."""
    from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner

    data = train_dataset(seq_len, part)
    if partitioning == "iid":
        result, data = IidPartitioner(num_partitions), data.shuffle(seed=seed).flatten_indices()
    else:
        result = DirichletPartitioner(num_partitions, "group", DIRICHLET_ALPHA, min_partition_size=1, seed=seed)
    result.dataset = data
    return result


@lru_cache(maxsize=16)
def partition(partition_id: int, num_partitions: int, partitioning: str, seq_len: int, part="all", seed=0):
    """One client's training sequences (int64, rows x seq_len)."""
    rows = partitioner(num_partitions, partitioning, seq_len, part, seed).load_partition(partition_id)
    return np.asarray(rows["input_ids"], dtype=np.int64)


@lru_cache(maxsize=4)
def held_out(seq_len: int, sequences: int, split: str = "validation") -> np.ndarray:
    """`sequences` fixed sequences of the validation or test split, spread evenly over it (same for every run)."""
    ids = cut_sequences(split, seq_len)["input_ids"]
    rows = np.linspace(0, len(ids) - 1, min(sequences, len(ids))).round().astype(int)
    return np.stack([ids[i] for i in rows]).astype(np.int64)


def model_config() -> dict:
    """pythia-14m's shipped config with vocab_size = the fitted tokenizer's."""
    from ..model import load_config

    return {**load_config(MODEL), "vocab_size": VOCAB_SIZE}


def build_model(seed: int = 0):
    """pythia-14m's architecture on the fitted vocabulary, seeded random init: every party builds the same."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    with INIT_LOCK:  # torch's seed is global: clients in threads (inprocess backend) take turns
        torch.manual_seed(seed)
        return GPTNeoXForCausalLM(GPTNeoXConfig(**model_config())).float()


def tensor_specs() -> list:
    """The model's float32 state-dict tensors (pythia-14m's, embeddings resized to VOCAB_SIZE rows; no torch)."""
    from dataclasses import replace

    from ..model import tensor_specs as pythia_specs

    resized = ("gpt_neox.embed_in.weight", "lm_head.weight")
    return [replace(s, shape=(VOCAB_SIZE, *s.shape[1:])) if s.name in resized else s for s in pythia_specs(MODEL)]


def model_shapes() -> dict[str, tuple]:
    """Name -> shape of every tensor the model sends (no torch)."""
    return {s.name: s.shape for s in tensor_specs()}


def sample_batches(data: np.ndarray, steps: int, batch_size: int, seed: tuple) -> list[np.ndarray]:
    """`steps` batches of rows drawn at random (without replacement within a batch)."""
    rng = np.random.default_rng(list(seed))
    size = min(batch_size, len(data))
    return [data[rng.choice(len(data), size=size, replace=False)] for _ in range(steps)]


def train_steps(model, batches: list[np.ndarray], lr: float, trainable=lambda name: True) -> float:
    """Train on each batch once with AdamW (tensors where `trainable(name)` is False stay frozen); mean loss.

    AdamW is torch's fused CPU kernel: the same update as the default loop, 4x faster on 14M parameters.
    """
    import torch

    for name, param in model.named_parameters():
        param.requires_grad_(trainable(name))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)
    model.train()
    losses = []
    for batch in batches:
        ids = torch.from_numpy(batch)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return float(np.mean(losses))


def evaluate(model, data: np.ndarray, batch_size: int = EVAL_BATCH) -> float:
    """Mean next-token cross-entropy (nats per token) of the model on `data`."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            ids = torch.from_numpy(data[start : start + batch_size])
            total += model(input_ids=ids, labels=ids).loss.item() * len(ids)
            count += len(ids)
    return total / count


def load_arrays(model, arrays: dict[str, np.ndarray]) -> None:
    """Copy named arrays into the model; tensors not given keep their current values."""
    import torch

    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in arrays.items()}
    model.load_state_dict(state, strict=False)


def task_record() -> dict:
    """The summary's "task" block: corpus, tokenizer, model and one float32 message, computed from the data."""
    from ..payload import predicted_payload_bytes

    specs = tensor_specs()
    train = list(token_ids("train").values())
    payload = predicted_payload_bytes(specs, [s.name for s in specs])
    embeddings = sum(s.nbytes for s in specs if s.name in ("gpt_neox.embed_in.weight", "lm_head.weight"))
    return {
        "corpus_bytes": corpus.CORPUS_BYTES,
        "corpus_sha256": corpus.CORPUS_SHA256,
        "vocab_size": VOCAB_SIZE,
        "train_tokens": int(sum(len(t) for t in train)),
        "distinct_train_tokens": int(len(np.unique(np.concatenate(train)))),
        "rows_used_fraction": tokenizer.rows_used_fraction(train, VOCAB_SIZE),
        "parameters": int(sum(s.numel for s in specs)),
        "message_payload_bytes": payload,
        "embedding_share": embeddings / payload,
    }
