"""The training task: offline byte-level data, Flower Datasets partitions, and a loss that goes down."""

from collections import Counter

import numpy as np
import pytest

from fedbandwidth.compress import task


def test_corpus_is_the_pydoc_topics_as_bytes():
    topics = task.corpus()
    assert len(topics) == 79
    assert sum(len(b) for b in topics.values()) > 400_000
    cut = task.cut_sequences(32)
    assert all(len(s) == 32 for s in cut["input_ids"][:100])
    assert max(max(s) for s in cut["input_ids"]) < 256


@pytest.mark.parametrize("partitioning", ["iid", "topic"])
def test_partitions_are_disjoint_and_cover_the_train_split(partitioning, capfd):
    train, held_out = task.split(32)
    parts = [task.partition(i, 3, partitioning, 32) for i in range(3)]
    assert capfd.readouterr().err == ""  # no progress bars from the partitioners
    assert sum(len(p) for p in parts) == len(train)
    assert len(held_out) == pytest.approx(0.1 * (len(train) + len(held_out)), abs=1)
    split_rows = Counter(map(tuple, np.asarray(train["input_ids"]).tolist()))
    assert Counter(tuple(r) for p in parts for r in p.tolist()) == split_rows  # each sequence once
    if partitioning == "topic":
        shards = task.topic_shards(train.data.column("topic").to_pylist(), 3)
        assert sorted(set(shards.values())) == [0, 1, 2]  # whole topics, each to one client


def test_local_training_lowers_held_out_loss():
    import torch

    torch.set_num_threads(1)
    model = task.build_model(0)
    data = task.held_out(32, 16)
    before = task.evaluate(model, data)
    batches = task.sample_batches(task.partition(0, 2, "iid", 32), 4, 4, (0, 0, 1))
    train_loss = task.train_steps(model, batches, lr=2e-3)
    after = task.evaluate(model, data)
    assert before == pytest.approx(np.log(50304), abs=0.3)  # random init: uniform over the vocabulary
    assert after < before - 1.0 and train_loss < before


def test_frozen_tensors_do_not_move():
    model = task.build_model(0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "embed_in" in n}
    batches = task.sample_batches(task.partition(0, 2, "iid", 32), 1, 2, (0, 0, 1))
    task.train_steps(model, batches, 2e-3, trainable=lambda name: "embed_in" not in name)
    assert all(bool((p == frozen[n]).all()) for n, p in model.named_parameters() if n in frozen)
    assert task.build_model(0).state_dict()["lm_head.weight"].equal(task.build_model(0).state_dict()["lm_head.weight"])
