"""The training task: fitted vocabulary, document splits, seeded Flower Datasets partitions, a loss that goes down."""

from collections import Counter

import numpy as np
import pytest

from fedbandwidth.compress import corpus, task
from fedbandwidth.model import tensor_specs
from fedbandwidth.payload import predicted_payload_bytes


def test_sequences_are_cut_per_document_of_one_split():
    cut = task.cut_sequences("validation", 32)
    assert all(len(s) == 32 for s in cut["input_ids"]) and max(s.max() for s in cut["input_ids"]) < task.VOCAB_SIZE
    assert set(cut["doc"]) <= set(corpus.split_documents("validation"))
    pre, fine = (set(task.cut_sequences("train", 32, p)["doc"]) for p in ("pretrain", "finetune"))
    assert not pre & fine and pre | fine == set(task.cut_sequences("train", 32)["doc"])


@pytest.mark.parametrize("partitioning", ["iid", "dirichlet"])
def test_partitions_cover_the_training_sequences_once(partitioning, capfd):
    train = task.cut_sequences("train", 32, "finetune")["input_ids"]
    parts = [task.partition(i, 3, partitioning, 32, "finetune", 7) for i in range(3)]
    assert capfd.readouterr().err == ""
    assert Counter(tuple(r) for p in parts for r in p.tolist()) == Counter(tuple(r.tolist()) for r in train)


def test_a_seed_changes_the_dirichlet_partitions_and_the_same_seed_repeats_them():
    sizes = {s: [len(task.partition(i, 4, "dirichlet", 32, "finetune", s)) for i in range(4)] for s in (0, 1)}
    task.partition.cache_clear()
    task.partitioner.cache_clear()
    assert [len(task.partition(i, 4, "dirichlet", 32, "finetune", 0)) for i in range(4)] == sizes[0] != sizes[1]
    iid = [task.partition(0, 4, "iid", 32, "finetune", s)[0].tolist() for s in (0, 1)]
    assert iid[0] != iid[1]  # the IID shuffle follows the seed too


def test_held_out_sequences_are_fixed():
    val, test = task.held_out(32, 8), task.held_out(32, 8, "test")
    assert val.shape == test.shape == (8, 32) and not np.array_equal(val, test)
    assert np.array_equal(val[0], task.cut_sequences("validation", 32)["input_ids"][0])


def test_model_shapes_use_the_fitted_vocabulary():
    model = task.build_model(0)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == task.model_shapes()
    assert shapes["gpt_neox.embed_in.weight"] == shapes["lm_head.weight"] == (4096, 128)
    pythia = {s.name: s.shape for s in tensor_specs("pythia-14m")}
    assert {k: v for k, v in pythia.items() if "embed_in" not in k and "lm_head" not in k}.items() <= shapes.items()


def test_task_record_is_what_the_data_and_shapes_give():
    record = task.task_record()
    train = np.concatenate(list(task.token_ids("train").values()))
    specs = task.tensor_specs()
    payload = predicted_payload_bytes(specs, [s.name for s in specs])
    assert record == {
        "corpus_bytes": 8_308_449,
        "corpus_sha256": corpus.CORPUS_SHA256,
        "vocab_size": 4096,
        "train_tokens": len(train),
        "distinct_train_tokens": len(set(train.tolist())),
        "rows_used_fraction": len(set(train.tolist())) / 4096,
        "parameters": 14_067_712 - 2 * (50_304 - 4096) * 128,
        "message_payload_bytes": payload,
        "embedding_share": 2 * 4096 * 128 * 4 / payload,
    }


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
    assert before == pytest.approx(np.log(4096), abs=0.3)  # random init: uniform over the vocabulary
    assert after < before - 0.5 and train_loss < before


def test_frozen_tensors_do_not_move():
    model = task.build_model(0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "embed_in" in n}
    batches = task.sample_batches(task.partition(0, 2, "iid", 32), 1, 2, (0, 0, 1))
    task.train_steps(model, batches, 2e-3, trainable=lambda name: "embed_in" not in name)
    assert all(bool((p == frozen[n]).all()) for n, p in model.named_parameters() if n in frozen)
    assert task.build_model(0).state_dict()["lm_head.weight"].equal(task.build_model(0).state_dict()["lm_head.weight"])


def test_the_server_evaluates_validation_and_test_on_fixed_sequences():
    from fedbandwidth.compress import models
    from fedbandwidth.compress.training import TrainConfig, make_evaluate_fn

    cfg = TrainConfig(eval_sequences=4)
    eval_loss, test_loss = {}, {}
    make_evaluate_fn(cfg, eval_loss, test_loss)
    model = models.start_model(cfg)
    assert eval_loss[0] == pytest.approx(task.evaluate(model, task.held_out(32, 4)), abs=1e-6)
    assert test_loss[0] == pytest.approx(task.evaluate(model, task.held_out(32, 4, "test")), abs=1e-6)
