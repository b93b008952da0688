"""The forecast is exact: against Flower's own counts on real arrays, and against a real simulation."""

from __future__ import annotations

import json

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


# Published FlowerTune LLM Leaderboard entries: what their CommunicationTracker printed last, from their config.
SMOLLM2_360M = {"model_type": "llama", "hidden_size": 960, "intermediate_size": 2560, "num_attention_heads": 15,
                "num_hidden_layers": 32, "num_key_value_heads": 5, "vocab_size": 49152,
                "tie_word_embeddings": True}  # fmt: skip  # HuggingFaceTB/SmolLM2-360M's config.json
QWEN3_8B = {"model_type": "qwen3", "hidden_size": 4096, "intermediate_size": 12288, "num_attention_heads": 32,
            "num_hidden_layers": 36, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
            "tie_word_embeddings": False}  # fmt: skip  # Qwen/Qwen3-8B's config.json
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj")
FLOWERTUNE_ENTRIES = [
    # github.com/TNI-playground/TNI-FlowerTune-LLM-Leaderboard-Medical-SmolLM2-Series @2dff17e, README.md "Comm"
    # row; pyproject_SmolLM2-135M.toml: r=8, peft's default targets, 200 rounds, 20 supernodes, fraction-fit 0.1;
    # strategy.py: the legacy tracker (FitIns/FitRes tensors' bytes).
    ("smollm2-135m", LoraSpec(8, ("q_proj", "v_proj")), 200, 20, 0.1, "legacy", 1417.97),
    # the same repository, SmolLM2-360M (same config otherwise): README "Comm" 2512.50 MB, and comm_cost.txt's
    # "+6.28 MB this round" for each call
    (SMOLLM2_360M, LoraSpec(8, ("q_proj", "v_proj")), 200, 20, 0.1, "legacy", 2512.50),
    # github.com/0-1-ai/01AI-FlowerTune-LLM-Leaderboard-Medical @4c9260e, llama3.1-aloe-8b-v1: README
    # "Communication budget: 2080.93 MB" (comm_cost.txt's last line); Llama 3.1 8B, r=32 on q_proj,v_proj,
    # 10 rounds, 20 supernodes, fraction-train 0.1, the Message API tracker (ArrayRecord.count_bytes())
    ("llama-3.1-8b", LoraSpec(32, ("q_proj", "v_proj")), 10, 20, 0.1, "message", 2080.93),
    # github.com/0-1-ai/01AI-FlowerTune-LLM-Leaderboard-Code @1c065ff, qwen3-8b-v1: comm_cost.txt's last line
    # "used 3549.28 MB"; Qwen3-8B, r=8, DoRA on every linear module ('all'), 10 rounds, 10 supernodes,
    # fraction-train 0.2, the Message API tracker
    (QWEN3_8B, LoraSpec(8, ALL_LINEAR, dora=True), 10, 10, 0.2, "message", 3549.28),
]


@pytest.mark.parametrize(("model", "lora", "rounds", "supernodes", "fraction", "tracker", "printed"),
                         FLOWERTUNE_ENTRIES)  # fmt: skip
def test_published_flowertune_entries_are_reproduced_to_the_two_decimals_printed(
    model, lora, rounds, supernodes, fraction, tracker, printed, tmp_path
):
    if isinstance(model, dict):
        (tmp_path / "config.json").write_text(json.dumps(model))
        model = str(tmp_path / "config.json")
    report = forecast(ForecastConfig(model, supernodes, rounds, fraction, lora=lora))
    assert report["flowertune_mib"][tracker] == printed


def test_flowertune_trackers_count_npy_bytes_or_the_record_and_never_evaluate():
    lora = LoraSpec(8, ("q_proj", "v_proj"))
    report = forecast(ForecastConfig("smollm2-135m", 20, 200, 0.1, fraction_evaluate=0.5, lora=lora))
    assert report["evaluate_nodes"] == 10 and report["flowertune_mib"]["legacy"] == 1417.97  # evaluate not tracked
    # legacy: 120 arrays of .npy bytes (1,843,200 B of tensors + 120 headers of 128 B), 2 nodes, 2 directions
    assert report["flowertune_mib"]["legacy"] == round(200 * 2 * 2 * (1_843_200 + 120 * 128) / 2**20, 2)
    names = sum(len(f"base_model.model.model.layers.{i}.self_attn.{m}_proj.lora_{x}.weight")
                for i in range(30) for m in "qv" for x in "AB")  # fmt: skip
    assert report["flowertune_mib"]["message"] == round(800 * (1_843_200 + 120 * 128 + names) / 2**20, 2)
    assert "FlowerTune's tracker: used 1417.97 MB (legacy API) / 1423.71 MB (Message API) of 200,000 MB" in (
        render_forecast(report)
    )
