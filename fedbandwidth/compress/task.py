"""The training task: pythia-14m's architecture learning English bytes, offline, on CPU.

Text: ``pydoc_data.topics``, the 79 help topics that ship with every CPython (~465k characters).
Tokens are UTF-8 bytes (ids 0..255; no tokenizer download); the model keeps its real 50,304-wide
vocabulary. Sequences are cut per topic and a fixed held-out split is set aside (the same bytes for
every run and seed). The rest is partitioned across clients with Flower Datasets: IID, or non-IID by
topic (each client gets whole topics). For a warm start the topics are split in two parts: a quarter
of the corpus pre-trains centrally, clients fine-tune on the other topics (see warm.py).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

MODEL = "pythia-14m"  # architecture, built from fedbandwidth/configs (random init)
PARTITIONINGS = ("iid", "topic")  # IID sequences, or whole topics per client
PARTS = ("all", "pretrain", "finetune")  # which topics: all, the pre-training quarter, the other topics
INIT_LOCK = threading.Lock()  # serializes seeded model builds across threads
EVAL_FRACTION = 0.1  # share of sequences held out for server-side evaluation
SPLIT_SEED = 0  # the held-out split never changes with a run's seed: every run is evaluated on the same bytes
PRETRAIN_SHARDS = 4  # topics in 4 balanced shards: shard 0 pre-trains, the other three fine-tune
EVAL_BATCH = 4  # sequences per evaluation forward: 4 x 32 x 50,304 logits stay in the CPU's cache


def corpus() -> dict[str, bytes]:
    """The pydoc topics as topic -> UTF-8 bytes, in sorted topic order."""
    from pydoc_data.topics import topics

    return {name: topics[name].encode("utf-8") for name in sorted(topics)}


def cut_sequences(seq_len: int) -> dict[str, list]:
    """Non-overlapping byte windows of `seq_len` tokens, per topic: columns input_ids, topic."""
    ids, names = [], []
    for name, data in corpus().items():
        tokens = np.frombuffer(data, dtype=np.uint8)
        for start in range(0, len(tokens) - seq_len + 1, seq_len):
            ids.append(tokens[start : start + seq_len].tolist())
            names.append(name)
    return {"input_ids": ids, "topic": names}


def topic_shards(topics: list[str], num_shards: int) -> dict[str, int]:
    """Assign whole topics to shards, largest first to the lightest shard (balanced, deterministic)."""
    names, counts = np.unique(np.asarray(topics), return_counts=True)
    sizes = dict(zip(names.tolist(), counts.tolist(), strict=True))
    load, shard_of = [0] * num_shards, {}
    for topic in sorted(sizes, key=lambda t: (-sizes[t], t)):
        shard_of[topic] = int(np.argmin(load))
        load[shard_of[topic]] += sizes[topic]
    return shard_of


@lru_cache(maxsize=4)
def part_topics(part: str, seq_len: int) -> frozenset[str]:
    """The topics of a part of the corpus: all, the pre-training shard, or every other topic."""
    topics = cut_sequences(seq_len)["topic"]
    shard_of = topic_shards(topics, PRETRAIN_SHARDS)
    keep = {"all": lambda s: True, "pretrain": lambda s: s == 0, "finetune": lambda s: s != 0}[part]
    return frozenset(t for t, s in shard_of.items() if keep(s))


def only_topics(data, topics: frozenset[str]):
    """The rows of a Hugging Face Dataset whose topic is in `topics` (a flat copy)."""
    data = data.flatten_indices()
    mask = np.isin(np.asarray(data.data.column("topic").to_pylist()), list(topics))
    return data.select(np.flatnonzero(mask)).flatten_indices()


@lru_cache(maxsize=8)
def split(seq_len: int, part: str = "all"):
    """(train, held-out) Hugging Face Datasets of byte sequences: a fixed random split, then the part's topics."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()
    data = Dataset.from_dict(cut_sequences(seq_len))
    parts = data.train_test_split(test_size=EVAL_FRACTION, seed=SPLIT_SEED)
    topics = part_topics(part, seq_len)
    return only_topics(parts["train"], topics), only_topics(parts["test"], topics)


def quiet_natural_id_progress() -> None:
    """NaturalIdPartitioner draws a tqdm bar per call (5 lines a run on stderr); build it disabled."""
    from functools import partial

    from flwr_datasets.partitioner import natural_id_partitioner as module
    from tqdm import tqdm

    module.tqdm = partial(tqdm, disable=True)


@lru_cache(maxsize=16)
def partition(partition_id: int, num_partitions: int, partitioning: str, seq_len: int, part: str = "all"):
    """One client's training sequences (uint8 array, rows x seq_len), cut with a Flower Datasets partitioner."""
    from flwr_datasets.partitioner import IidPartitioner, NaturalIdPartitioner

    train, _ = split(seq_len, part)
    if partitioning == "iid":
        partitioner = IidPartitioner(num_partitions)
    else:
        topics = train.data.column("topic").to_pylist()  # Arrow, not row by row
        shard_of = topic_shards(topics, num_partitions)
        train = train.add_column("shard", [shard_of[t] for t in topics])
        partitioner = NaturalIdPartitioner(partition_by="shard")
        quiet_natural_id_progress()
    partitioner.dataset = train
    return np.asarray(partitioner.load_partition(partition_id)["input_ids"], dtype=np.int64)


@lru_cache(maxsize=4)
def held_out(seq_len: int, sequences: int, part: str = "all") -> np.ndarray:
    """The first `sequences` held-out sequences of a part (fixed, so every run is evaluated on the same bytes)."""
    _, test = split(seq_len, part)
    return np.asarray(test["input_ids"][:sequences], dtype=np.int64)


def build_model(seed: int = 0):
    """pythia-14m's architecture with a seeded random init: every party builds the same weights."""
    import torch

    from ..model import build_from_config

    with INIT_LOCK:  # torch's seed is global: clients in threads (inprocess backend) take turns
        torch.manual_seed(seed)
        return build_from_config(MODEL)


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
    """Mean next-byte cross-entropy (nats per token) of the model on `data`."""
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


def model_shapes() -> dict[str, tuple]:
    """Name -> shape of every tensor the model sends (from its config, no torch)."""
    from ..model import tensor_specs

    return {s.name: s.shape for s in tensor_specs(MODEL)}
