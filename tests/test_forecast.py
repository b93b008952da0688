"""The forecast is exact: against Flower's own counts on real arrays, and against a real simulation."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from conftest import LEGACY_MESSAGE_BYTES, TENSOR_BYTES
from fedbandwidth.adapters import LoraSpec
from fedbandwidth.checks import ConfigError
from fedbandwidth.forecast import ForecastConfig, forecast, message_arrays, predicted_rounds, render_forecast
from fedbandwidth.ledger import Ledger
from fedbandwidth.model import TensorSpec
from fedbandwidth.payload import CHUNK_BYTES, chunk_count
from fedbandwidth.simulation import SimulationConfig, simulate

TINY = (
    '{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, '
    '"num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1000, "tie_word_embeddings": true}'
)


@pytest.fixture
def tiny(tmp_path):
    """A path to a small Qwen2 config (tied embeddings), real enough to build with weights."""
    path = tmp_path / "config.json"
    path.write_text(TINY)
    return str(path)


def test_pythia_14m_matches_the_lesson():
    report = forecast(ForecastConfig("pythia-14m", supernodes=2, rounds=1))
    assert report["message"]["payload_bytes"] == LEGACY_MESSAGE_BYTES
    assert report["model"]["tensor_bytes"] == TENSOR_BYTES and report["total_bytes"] == 4 * LEGACY_MESSAGE_BYTES
    assert report["message"]["chunks"] == 84 and report["message"]["chunk_bytes"] == CHUNK_BYTES == 5 * 2**20


def test_a_whole_model_message_equals_flowers_count_tied_weights_twice(tiny):
    from transformers import AutoConfig, AutoModelForCausalLM

    from fedbandwidth.catalog import resolve

    settings = dict(resolve(tiny).config)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(settings.pop("model_type"), **settings))
    record = ArrayRecord(model.state_dict())  # what a Message-API client sends
    report = forecast(ForecastConfig(tiny, api="message"))
    assert report["message"]["payload_bytes"] == record.count_bytes() and len(record) == report["message"]["arrays"]
    assert report["model"]["tied_keys"] == ["lm_head.weight"]


def test_lora_message_equals_flowers_count_of_peft_adapters(tiny):
    from peft import get_peft_model, get_peft_model_state_dict
    from transformers import AutoConfig, AutoModelForCausalLM

    from fedbandwidth.adapters import lora_config
    from fedbandwidth.catalog import resolve

    settings = dict(resolve(tiny).config)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(settings.pop("model_type"), **settings))
    lora = LoraSpec(4, ("q_proj", "v_proj"))
    record = ArrayRecord(get_peft_model_state_dict(get_peft_model(model, lora_config(lora))))
    report = forecast(ForecastConfig(tiny, lora=lora, api="message"))
    assert report["message"]["payload_bytes"] == record.count_bytes()
    assert report["adapter"]["parameters"] == report["adapter"]["peft_trainable_parameters"] == 2 * 4 * (128 + 96)


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_a_simulated_lora_run_measures_the_forecast(tiny, api):
    cfg = ForecastConfig(tiny, supernodes=3, rounds=2, fraction=0.5, lora=LoraSpec(8, ("q_proj",)), api=api)
    ledger = simulate(SimulationConfig(3, 2, 0.5, api=api, model=tiny), message_arrays(cfg), Ledger())
    report = forecast(cfg)
    assert ledger.total_bytes() == report["total_bytes"] == 2 * 2 * 2 * report["message"]["payload_bytes"]
    assert predicted_rounds(report).cumulative_bytes.tolist() == ledger.per_round().cumulative_bytes.tolist()


def test_chunks_are_the_ones_flower_cuts():
    specs = [TensorSpec("a", (CHUNK_BYTES // 4,)), TensorSpec("b", (3, 5)), TensorSpec("c", (2 * CHUNK_BYTES // 4,))]
    flower = sum(len(Array(np.zeros(s.shape, s.dtype)).slice_array()) for s in specs)
    assert chunk_count(specs) == flower == 2 + 1 + 3  # the .npy header pushes a full chunk's worth into a second


def test_evaluate_sends_the_model_down_again_and_text_names_it():
    report = forecast(ForecastConfig("pythia-14m", supernodes=4, rounds=2, fraction_evaluate=0.5))
    assert report["evaluate_nodes"] == 2 and report["down_bytes"] == 2 * (4 + 2) * LEGACY_MESSAGE_BYTES
    assert f"total {report['total_bytes']:,} B" in render_forecast(report)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"dtype": "int8"}, "dtype"),
        ({"supernodes": 0}, "supernodes"),
        ({"model": "pythia-13m"}, "model"),
        ({"api": "grpc"}, "api"),
    ],
)
def test_bad_values_name_their_parameter(kwargs, parameter):
    with pytest.raises(ConfigError, match=f"^{parameter}"):
        ForecastConfig(**kwargs)


def test_lora_targets_that_match_nothing_are_named():
    with pytest.raises(ConfigError, match="^lora-targets: 'q_proj' matches no module"):
        forecast(ForecastConfig("pythia-14m", lora=LoraSpec(4, ("q_proj",))))
