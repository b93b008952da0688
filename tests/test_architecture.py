"""Shapes of any architecture from the meta device: exact counts for 7B-class models and their LoRA adapters."""

from __future__ import annotations

import pytest

from fedbandwidth.adapters import LoraSpec, adapter_state
from fedbandwidth.architecture import (
    default_lora_targets,
    lora_meta_model,
    meta_model,
    model_specs,
    specs_of,
    tied_keys,
    unique_parameters,
    zero_arrays,
)
from fedbandwidth.model import tensor_specs

# Published parameter counts (each model's card), and the state-dict tensors transformers builds.
PARAMETERS = {
    "llama-3.1-8b": (8_030_261_248, 291),
    "mistral-7b-v0.1": (7_241_732_096, 291),
    "qwen2.5-7b": (7_615_616_512, 339),
    "llama-3.2-1b": (1_235_814_400, 147),
    "qwen2.5-0.5b": (494_032_768, 291),
    "smollm2-135m": (134_515_008, 273),
}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_meta_models_have_the_published_parameter_counts(name):
    model = meta_model(name)
    assert (unique_parameters(model), len(model.state_dict())) == PARAMETERS[name]


def test_pythia_on_the_meta_device_equals_the_torch_free_specs():
    assert specs_of(meta_model("pythia-14m").state_dict()) == tensor_specs("pythia-14m")
    assert model_specs("pythia-14m") == tensor_specs("pythia-14m")


def test_tied_embeddings_are_named_and_counted_once():
    model = meta_model("llama-3.2-1b")
    assert tied_keys(model) == ["lm_head.weight"] and tied_keys(meta_model("mistral-7b-v0.1")) == []
    state_dict_numel = sum(s.numel for s in specs_of(model.state_dict()))
    assert state_dict_numel - unique_parameters(model) == 128_256 * 2048  # the embedding, sent twice


def test_lora_adapters_match_peft_own_count_on_a_7b_model():
    model = lora_meta_model("mistral-7b-v0.1", LoraSpec(16, ("q_proj", "v_proj")))
    specs = specs_of(adapter_state(model))
    # q_proj 4096->4096 and v_proj 4096->1024 in 32 layers: 16 x (4096+4096) + 16 x (4096+1024) a layer
    assert sum(s.numel for s in specs) == 32 * 16 * (8192 + 5120) == 6_815_744
    assert sum(s.numel for s in specs) == model.get_nb_trainable_parameters()[0]
    assert len(specs) == 128 and specs[0].name == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"


def test_bfloat16_travels_as_two_byte_integers():
    specs = specs_of(meta_model("pythia-14m").state_dict(), "bfloat16")
    assert {s.dtype for s in specs} == {"int16"}
    assert sum(s.nbytes for s in specs) == 2 * 14_067_712


def test_default_targets_are_peft_own():
    assert default_lora_targets("llama") == ("q_proj", "v_proj")
    assert default_lora_targets("gpt_neox") == ("query_key_value",)
    assert default_lora_targets("no-such-architecture") == ()


def test_any_model_gets_arrays_to_simulate_with(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        '{"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,'
        ' "num_hidden_layers": 1, "vocab_size": 50}'
    )
    arrays = zero_arrays(model_specs(str(config)))
    assert {k: v.shape for k, v in arrays.items()} == {s.name: s.shape for s in model_specs(str(config))}
    assert arrays["model.embed_tokens.weight"].shape == (50, 16) and not arrays["lm_head.weight"].any()
