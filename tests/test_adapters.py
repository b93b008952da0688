"""LoRA adapter specs: checks, peft's matching rule, exact adapter sizes on a meta-device pythia-14m."""

import pytest

from fedbandwidth.adapters import LoraSpec, adapter_tensors, apply_lora, matches, parse_targets, travels
from fedbandwidth.checks import ConfigError


def meta_pythia():
    """pythia-14m's architecture on torch's meta device (no weights, no memory)."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from fedbandwidth.model import CONFIG_DIR

    with torch.device("meta"):
        return GPTNeoXForCausalLM(GPTNeoXConfig.from_json_file(str(CONFIG_DIR / "pythia-14m.json")))


def test_adapter_sizes_are_exact_on_a_meta_model():
    model = apply_lora(meta_pythia(), LoraSpec(4, parse_targets("query_key_value, dense")))
    adapters = adapter_tensors(model)
    # per layer: qkv A 4x128 + B 384x4, dense A 4x128 + B 128x4 = 3,072 values; 6 layers
    assert len(adapters) == 24 and sum(p.numel() for p in adapters.values()) == 6 * 3_072
    assert model.get_nb_trainable_parameters()[0] == 6 * 3_072
    assert {tuple(p.shape) for p in adapters.values()} == {(4, 128), (384, 4), (128, 4)}


def test_matching_rule_is_pefts():
    assert matches("gpt_neox.layers.0.attention.dense", "dense")
    assert matches("dense", "dense") and not matches("gpt_neox.layers.0.mlp.dense_h_to_4h", "dense")


@pytest.mark.parametrize(
    "build,needle",
    [
        (lambda: LoraSpec(0, ("dense",)), "lora-rank must be >= 1, got 0"),
        (lambda: parse_targets(" , "), "lora-targets must name at least one module"),
        (lambda: apply_lora(meta_pythia(), LoraSpec(2, ("nope",))), "lora-targets: 'nope' matches no module"),
        (lambda: apply_lora(meta_pythia(), LoraSpec(2, ("input_layernorm",))), "lora-targets: Target module LayerNorm"),
    ],
)
def test_bad_specs_name_the_parameter(build, needle):
    with pytest.raises(ConfigError, match=needle):
        build()


def test_dora_magnitudes_train_and_travel_under_both_rules():
    magnitude = "base_model.model.layers.0.q_proj.lora_magnitude_vector"
    assert travels(magnitude, "ffa") and travels(magnitude, "fedit")
    assert not travels("base_model.model.layers.0.q_proj.lora_A.weight", "ffa")
    model = apply_lora(meta_pythia(), LoraSpec(4, ("query_key_value", "nothing"), dora=True))
    assert model.get_nb_trainable_parameters()[0] == 6 * (4 * (128 + 384) + 384)


def test_targets_matching_nothing_are_logged_when_others_match(monkeypatch):
    from fedbandwidth import adapters

    said = []
    monkeypatch.setattr(adapters.log, "warning", lambda text, *args: said.append(text % args))
    apply_lora(meta_pythia(), LoraSpec(2, ("dense", "q_proj", "c_attn")))
    assert said == ["lora-targets: q_proj, c_attn matched no module of the model (peft goes on without)"]
