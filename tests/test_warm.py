"""The warm start: a deterministic central pre-training on the pre-training topics, cached under build/."""

import numpy as np
import pytest

from fedbandwidth.compress import warm


def test_schedule_warms_up_then_stays_and_evaluations_end_at_the_cap():
    spec = warm.Pretraining(steps=250, warmup=10)
    assert [spec.lr_factor(s) for s in (0, 4, 9, 10, 249)] == [pytest.approx(0.1), pytest.approx(0.5), 1.0, 1.0, 1.0]
    assert spec.evaluations() == [100, 200, 250]
    assert spec.path.name == "pythia-14m-v4096-flat-max250-seq32-batch16-lr0.004-seed0.npz"


def test_pretraining_stops_once_the_validation_loss_has_flattened(monkeypatch):
    """Losses 5, 4, 3.9, 3.89: 0.26% better over the last quarter (< 1%), so it stops after the 4th evaluation."""
    losses = iter([5.0, 4.0, 3.9, 3.89, 3.0, 2.0])
    monkeypatch.setattr(warm.task, "evaluate", lambda model, data: next(losses))
    _, curve = warm.pretrain(warm.Pretraining(steps=10, batch_size=2, eval_every=1, eval_sequences=4))
    assert curve["step"] == [1, 2, 3, 4] and curve["val_loss"] == [5.0, 4.0, 3.9, 3.89] and curve["flattened"]
    assert len(curve["train_loss"]) == 4 and curve["seconds"] >= 0


def test_checkpoint_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "WARM_DIR", tmp_path)
    spec = warm.Pretraining(steps=2, batch_size=2)
    first, curve = warm.pretrain(spec)
    assert all(np.array_equal(first[k], v) for k, v in warm.pretrain(spec)[0].items())  # same bits twice
    cached = warm.checkpoint(spec)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [spec.path.with_suffix(".json").name, spec.path.name]  # its curve beside it, no partial file
    assert warm.curve(spec)["step"] == curve["step"] == [2] and not warm.curve(spec)["flattened"]
    assert all(np.array_equal(first[k], cached[k]) for k in first)
    before = spec.path.stat().st_mtime_ns
    warm.checkpoint.cache_clear()
    assert all(np.array_equal(first[k], v) for k, v in warm.checkpoint(spec).items())
    assert spec.path.stat().st_mtime_ns == before  # read back, not rebuilt
