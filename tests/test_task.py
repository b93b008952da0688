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


def test_held_out_split_is_fixed_and_parts_hold_apart_whole_topics():
    """Every run is evaluated on the same bytes; the warm start's pre-training topics are nobody's fine-tuning data."""
    pretrain, finetune = task.part_topics("pretrain", 32), task.part_topics("finetune", 32)
    assert pretrain.isdisjoint(finetune) and pretrain | finetune == task.part_topics("all", 32) == set(task.corpus())
    sizes = {name: len(data) for name, data in task.corpus().items()}
    share = sum(sizes[t] for t in pretrain) / sum(sizes.values())
    assert len(pretrain) == 19 and share == pytest.approx(0.25, abs=0.01)  # one of 4 balanced topic shards
    _, held_all = task.split(32)
    _, held_fine = task.split(32, "finetune")
    assert len(held_all) == 1453 and len(held_fine) == 1087 >= 1024  # 1,024 x 32 = 32,768 evaluation bytes
    fine_rows = {tuple(r) for r in held_fine["input_ids"]}
    assert fine_rows <= {tuple(r) for r in held_all["input_ids"]}  # the same split, restricted to the part
    assert set(task.split(32, "pretrain")[0]["topic"]) == pretrain


def test_evaluation_batch_size_does_not_change_the_loss():
    model = task.build_model(0)
    data = task.held_out(32, 12)
    assert task.evaluate(model, data, batch_size=4) == pytest.approx(
        task.evaluate(model, data, batch_size=12), abs=1e-6
    )


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
