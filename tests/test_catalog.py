"""Which model a name means: shipped configs, hub ids from the local cache, paths; clear errors otherwise."""

from __future__ import annotations

import json

import pytest

from fedbandwidth.catalog import resolve, shipped_hub_ids, shipped_models
from fedbandwidth.checks import ConfigError
from fedbandwidth.model import CONFIG_DIR, known_models


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub: tests never touch the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A local Hugging Face cache holding one repo's config.json, laid out as huggingface_hub lays it."""
    from huggingface_hub import constants

    repo = tmp_path / "models--EleutherAI--pythia-14m"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123" / "config.json").write_text((CONFIG_DIR / "pythia-14m.json").read_text())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return repo


def test_shipped_configs_include_llama_qwen_mistral_and_pythia():
    types = {json.loads((CONFIG_DIR / f"{n}.json").read_text())["model_type"] for n in shipped_models()}
    assert {"llama", "qwen2", "mistral", "gpt_neox"} <= types
    assert known_models() == [n for n in shipped_models() if n.startswith("pythia-") or n == "tiny-gptneox"]


def test_a_shipped_name_and_its_hub_id_resolve_to_the_shipped_config():
    assert resolve("mistral-7b-v0.1").origin == "shipped"
    source = resolve("mistralai/Mistral-7B-v0.1")
    assert (source.origin, source.path.name, source.model_type) == ("shipped", "mistral-7b-v0.1.json", "mistral")
    assert shipped_hub_ids()["eleutherai/pythia-70m"] == "pythia-70m"


def test_a_hub_id_is_read_from_the_local_cache(hub_cache):
    source = resolve("EleutherAI/pythia-14m")
    assert source.origin == "hub cache" and source.path.parent.parent.parent == hub_cache
    assert source.config["hidden_size"] == 128


def test_a_path_to_a_config_or_its_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    assert resolve(str(tmp_path / "config.json")).config["hidden_size"] == 64
    assert resolve(str(tmp_path)).origin == "path"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("pythia-13m", "is not a shipped model"),
        ("nobody/nothing", "nor a hub id in the local Hugging Face cache"),
        ("missing.json", "is not a readable JSON file"),
        ("{bad}", None),
        ("list.json", "is not a model config"),
    ],
)
def test_bad_names_are_one_line_errors_naming_the_parameter(tmp_path, monkeypatch, name, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "{bad}").write_text("{not json")
    with pytest.raises(ConfigError) as error:
        resolve(name, "--model")
    message = str(error.value)
    assert message.startswith(f"--model {name!r}") and "\n" not in message
    assert says is None or says in message
