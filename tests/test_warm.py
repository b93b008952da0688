"""The warm start: a deterministic central pre-training on the pre-training topics, cached under build/."""

import numpy as np
import pytest

from fedbandwidth.compress import warm


def test_schedule_warms_up_then_decays_to_zero():
    spec = warm.Pretraining(steps=100, warmup=10)
    assert spec.lr_factor(0) == pytest.approx(0.1, abs=1e-3) and spec.lr_factor(9) == pytest.approx(0.980, abs=1e-3)
    assert spec.lr_factor(50) == pytest.approx(0.5) and spec.lr_factor(99) == pytest.approx(0.00025, abs=1e-4)
    assert spec.path.name == "pythia-14m-v4096-100steps-seq32-batch16-lr0.004-seed0.npz"


def test_checkpoint_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(warm, "WARM_DIR", tmp_path)
    spec = warm.Pretraining(steps=2, batch_size=2)
    first = warm.pretrain(spec)
    assert all(np.array_equal(first[k], v) for k, v in warm.pretrain(spec).items())  # same bits twice
    cached = warm.checkpoint(spec)
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.path.name]  # no partial file left
    assert all(np.array_equal(first[k], cached[k]) for k in first)
    before = spec.path.stat().st_mtime_ns
    warm.checkpoint.cache_clear()
    assert all(np.array_equal(first[k], v) for k, v in warm.checkpoint(spec).items())
    assert spec.path.stat().st_mtime_ns == before  # read back, not rebuilt
