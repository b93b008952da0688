"""Facts of an architecture without torch: shipped and cached facts equal the meta-device build, adapters equal
peft's, and the cache is rebuilt whenever the config, a library version or its own content is not what it says."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fedbandwidth import shapes
from fedbandwidth.adapters import LoraSpec
from fedbandwidth.architecture import adapter_facts_of, build_meta
from fedbandwidth.catalog import resolve, shipped_models
from fedbandwidth.checks import ConfigError
from fedbandwidth.forecast import ForecastConfig, forecast

TINY = {"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
        "num_hidden_layers": 1, "vocab_size": 50}  # fmt: skip


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty cache of facts for each test, nothing remembered in memory."""
    monkeypatch.setenv(shapes.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(shapes, "_MEMO", {})
    return tmp_path / "cache"


@pytest.fixture
def builds(monkeypatch):
    """Counts meta-device builds of model facts."""
    counted = []
    build = shapes.build_model_facts
    monkeypatch.setattr(shapes, "build_model_facts", lambda name: counted.append(name) or build(name))
    return counted


@pytest.fixture
def tiny(tmp_path):
    """A path to a one-layer llama config."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY))
    return str(path)


def linear_leaves(facts: dict) -> tuple[str, ...]:
    """The last name part of every nn.Linear module (every target the derivation handles)."""
    return tuple(sorted({name.rsplit(".", 1)[-1] for name, size in facts["modules"].items() if size}))


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_facts_are_current_and_equal_the_meta_device_build(name):
    entry = json.loads((shapes.FACTS_DIR / f"{name}.json").read_text())
    hint = 'after a library bump: python -c "from fedbandwidth.shapes import ship_facts; ship_facts()"'
    assert entry["key"] == shapes.entry_key(resolve(name).config), hint
    assert entry["facts"] == json.loads(json.dumps(shapes.build_model_facts(name)))


@pytest.mark.parametrize("name", shipped_models())
def test_adapters_derived_from_the_modules_equal_pefts_on_every_shipped_config(name):
    facts = shapes.model_facts(name)
    every = LoraSpec(4, (*linear_leaves(facts), "no_such_module"), dora=True)
    for lora in (LoraSpec(8, tuple(facts["default_targets"])), every):
        derived = shapes.derived_adapters(facts, lora)
        assert derived == json.loads(json.dumps(adapter_facts_of(build_meta(resolve(name)), lora)))
    assert derived["unmatched_targets"] == ["no_such_module"]


@pytest.mark.parametrize("lora", [None, LoraSpec(4, ("q_proj", "v_proj")), LoraSpec(2, ("o_proj",), dora=True)])
@pytest.mark.parametrize("name", ["llama-3.2-1b", "qwen2.5-0.5b", "pythia-14m"])
def test_forecasts_from_facts_equal_those_from_the_meta_device(name, lora, monkeypatch, tmp_path):
    lora = LoraSpec(4, ("query_key_value",), dora=bool(lora and lora.dora)) if lora and "pythia" in name else lora
    cfg = ForecastConfig(name, supernodes=5, rounds=3, fraction=0.4, lora=lora, api="message")
    fast = forecast(cfg)
    monkeypatch.setattr(shapes, "FACTS_DIR", tmp_path / "none")
    monkeypatch.setattr(shapes, "_MEMO", {})
    monkeypatch.setattr(shapes, "derived_adapters", lambda facts, lora: None)  # peft builds the adapters
    assert forecast(cfg) == fast


def test_a_config_seen_before_is_not_built_again(tiny, builds, cache):
    first = shapes.model_facts(tiny)
    shapes._MEMO.clear()
    assert shapes.model_facts(tiny) == first and builds == [tiny] and len(list(cache.glob("model-*.json"))) == 1


def test_a_changed_config_or_library_version_is_built_again(tiny, builds, monkeypatch):
    shapes.model_facts(tiny)
    (resolve(tiny).path).write_text(json.dumps({**TINY, "vocab_size": 60}))
    assert shapes.model_facts(tiny)["state"][0] == ["model.embed_tokens.weight", [60, 16], True, "float32"]
    monkeypatch.setattr(shapes, "library_versions", lambda: {"torch": "0.0", "transformers": "0.0", "peft": "0.0"})
    shapes.model_facts(tiny)
    assert builds == [tiny] * 3


@pytest.mark.parametrize("content", ["{not json", '{"key": "another", "facts": {}}', "[]", '{"key": "%s"}'])
def test_a_corrupt_entry_is_rebuilt_not_trusted(tiny, builds, cache, content):
    right = shapes.model_facts(tiny)
    (entry,) = cache.glob("model-*.json")
    entry.write_text(content.replace("%s", entry.stem.removeprefix("model-")))
    shapes._MEMO.clear()
    assert shapes.model_facts(tiny) == right and len(builds) == 2
    assert json.loads(entry.read_text())["facts"] == right  # repaired


def test_a_shipped_entry_for_other_versions_is_not_trusted(builds, monkeypatch):
    monkeypatch.setattr(shapes, "library_versions", lambda: {"torch": "9.9", "transformers": "9.9", "peft": "9.9"})
    assert shapes.model_facts("tiny-gptneox")["architecture"] == "GPTNeoXForCausalLM" and builds == ["tiny-gptneox"]


def test_an_adapter_peft_builds_otherwise_is_cached_with_its_options(tiny, cache, monkeypatch):
    lora = LoraSpec(3, ("embed_tokens", "q_proj"))  # an Embedding: LoRA there is not derived from Linear sizes
    first = shapes.adapter_facts(tiny, lora)
    assert first["state"][0] == ["base_model.model.model.embed_tokens.lora_embedding_A", [3, 50], True, "float32"]
    assert len(list(cache.glob("adapters-*.json"))) == 1
    monkeypatch.setattr(shapes, "_MEMO", {})
    monkeypatch.setattr("fedbandwidth.architecture.adapter_facts_of", lambda model, lora: pytest.fail("rebuilt"))
    assert shapes.adapter_facts(tiny, lora) == first
    assert shapes.entry_key(TINY, shapes.adapter_options(lora)) != shapes.entry_key(TINY, {"rank": 4})


def test_targets_matching_nothing_are_named_and_all_unmatched_refused():
    facts = shapes.model_facts("llama-3.2-1b")
    assert shapes.derived_adapters(facts, LoraSpec(4, ("q_proj", "c_attn", "wq")))["unmatched_targets"] == [
        "c_attn",
        "wq",
    ]
    with pytest.raises(ConfigError, match="^lora-targets: 'c_attn', 'wq' match no module"):
        shapes.derived_adapters(facts, LoraSpec(4, ("c_attn", "wq")))


def test_dora_adds_a_magnitude_vector_per_adapted_layer():
    facts = shapes.model_facts("llama-3.2-1b")
    lora, dora = (shapes.derived_adapters(facts, LoraSpec(8, ("q_proj", "v_proj"), dora=d)) for d in (False, True))
    assert len(dora["state"]) == len(lora["state"]) * 3 // 2 == 96  # 16 layers x 2 modules x (A, B, magnitude)
    # per layer: q_proj out 2048 and v_proj out 512 (grouped-query attention)
    assert dora["peft_trainable_parameters"] - lora["peft_trainable_parameters"] == 16 * (2048 + 512)


def test_an_unwritable_cache_is_skipped(tiny, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(shapes.CACHE_ENV, str(tmp_path / "file" / "cache"))
    assert shapes.model_facts(tiny)["parameters"] == 50 * 16 * 2 + 4 * 16 * 16 + 3 * 16 * 32 + 3 * 16


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    assert shapes.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(shapes.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert shapes.cache_dir() == tmp_path / "fedbandwidth"


def test_library_versions_are_read_without_importing():
    versions = shapes.library_versions()
    assert set(versions) == {"torch", "transformers", "peft"} and all(versions.values())


def test_predict_on_a_shipped_config_imports_neither_torch_nor_transformers_nor_peft():
    probe = ["--model", "mistral-7b-v0.1", "--lora-rank", "16", "--dora", "--lora-targets", "q_proj,nothing", "--json"]
    code = "import sys; from fedbandwidth.cli import main; main(sys.argv[1:]); print(sorted(%r & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code % {"torch", "transformers", "peft"}, "predict", *probe],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report, imported = done.stdout.splitlines()
    assert imported == "[]" and json.loads(report)["adapter"]["unmatched_targets"] == ["nothing"]
    assert json.loads(report)["adapter"]["peft_trainable_parameters"] == 32 * (16 * 8192 + 4096)  # q_proj 4096 -> 4096
    assert "--lora-targets nothing matched no module" in done.stderr
