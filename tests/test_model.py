import socket
import time

import pytest

from conftest import PARAMETERS, TENSOR_BYTES
from fedbandwidth import model as model_mod
from fedbandwidth.model import iter_random_arrays, known_models, load_config, random_arrays, tensor_specs


def test_pythia_14m_specs_are_exact(specs):
    assert len(specs) == 76
    assert sum(s.numel for s in specs) == PARAMETERS
    assert sum(s.nbytes for s in specs) == TENSOR_BYTES
    assert specs[0].name == "gpt_neox.embed_in.weight" and specs[0].shape == (50304, 128)
    assert specs[-1].name == "lm_head.weight" and specs[-1].shape == (50304, 128)


def test_embeddings_are_91_5_percent(specs):
    embeddings = sum(s.nbytes for s in specs if "embed_in" in s.name or "lm_head" in s.name)
    assert embeddings == 2 * 50304 * 128 * 4
    assert round(embeddings / TENSOR_BYTES, 3) == 0.915


@pytest.mark.parametrize("name", ["pythia-14m", "pythia-70m"])
def test_specs_match_the_torch_model(name):
    model = model_mod.build_from_config(name)
    state = model.state_dict()
    assert [(s.name, s.shape) for s in tensor_specs(name)] == [(k, tuple(v.shape)) for k, v in state.items()]
    assert all(str(v.dtype) == "torch.float32" for v in state.values())


def test_known_sizes():
    assert {"pythia-14m", "pythia-70m", "pythia-160m"} <= set(known_models())
    assert sum(s.numel for s in tensor_specs("pythia-70m")) == 70_426_624
    assert sum(s.numel for s in tensor_specs("pythia-160m")) == 162_322_944


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'pythia-13m'"):
        load_config("pythia-13m")


def test_random_arrays_have_the_specs(specs, arrays):
    assert list(arrays) == [s.name for s in specs]
    assert all(a.shape == s.shape and a.dtype.name == "float32" for a, s in zip(arrays.values(), specs, strict=True))
    assert (random_arrays()["lm_head.weight"] == arrays["lm_head.weight"]).all()  # seeded


def test_random_arrays_come_one_at_a_time_with_the_same_values(arrays):
    pairs = iter_random_arrays()
    name, first = next(pairs)  # made on demand: the rest do not exist yet
    assert name == "gpt_neox.embed_in.weight" and (first == arrays[name]).all()
    assert all((a == arrays[n]).all() for n, a in pairs)


def test_offline_fallback_makes_no_network_attempt(monkeypatch, caplog):
    attempts = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: attempts.append(a))
    monkeypatch.setattr(model_mod, "CONFIG_DIR", model_mod.CONFIG_DIR)  # unchanged, explicit
    with caplog.at_level("WARNING", logger="fedbandwidth"):
        model = model_mod.load_pythia("pythia-14m", cache_dir="/nonexistent-cache")
    assert attempts == []
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS
    assert sum(v.numel() * v.element_size() for v in model.state_dict().values()) == TENSOR_BYTES
    assert len(caplog.records) == 1 and "configs/pythia-14m.json" in caplog.records[0].getMessage()


def test_unreachable_hub_is_detected_within_the_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("timed out")  # as a real connect would, long after the probe gave up

    monkeypatch.setattr(socket, "create_connection", hang)
    assert model_mod.hub_reachable(timeout=0.2) is False


def test_hub_offline_variable_skips_the_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", pytest.fail)
    assert model_mod.hub_reachable() is False
