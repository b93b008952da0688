"""Adapters in training: which tensors travel under each rule, their names and shapes, seeded A on every party."""

import numpy as np
import pytest

from fedbandwidth.adapters import LoraSpec, adapter_state
from fedbandwidth.compress import lora, task

SPEC = LoraSpec(2, ("query_key_value", "dense"))


def test_ffa_sends_only_b_and_fedit_both():
    shapes = lora.adapter_shapes(SPEC, "ffa")
    assert len(shapes) == 12 and all(name.endswith("lora_B.weight") for name in shapes)
    assert shapes["base_model.model.gpt_neox.layers.0.attention.query_key_value.lora_B.weight"] == (384, 2)
    both = lora.adapter_shapes(SPEC, "fedit")
    assert len(both) == 24 and both["base_model.model.gpt_neox.layers.5.attention.dense.lora_A.weight"] == (2, 128)
    assert sum(np.prod(s) for s in both.values()) == 6 * 2 * (128 + 384 + 128 + 128)


def test_every_party_builds_the_same_adapters_and_loads_them_back():
    one = lora.with_adapters(task.build_model(0), SPEC, seed=3)
    two = lora.with_adapters(task.build_model(0), SPEC, seed=3)
    sent = lora.adapter_arrays(one, "fedit")
    assert all(np.array_equal(v, lora.adapter_arrays(two, "fedit")[k]) for k, v in sent.items())  # same seeded A
    assert not any(sent[k].any() for k in sent if "lora_B" in k)  # B starts at zero: the model is unchanged
    state = adapter_state(one)  # the names peft saves and predict forecasts: the same keys, the same values
    assert list(sent) == list(state) and all(np.array_equal(v, state[k].numpy()) for k, v in sent.items())
    changed = {k: v + 1 for k, v in lora.adapter_arrays(one, "ffa").items()}
    lora.load_adapters(two, changed)
    assert all(np.array_equal(v, changed[k]) for k, v in lora.adapter_arrays(two, "ffa").items())


@pytest.mark.parametrize("rule, tensors", [("fedit", 24), ("ffa", 12)])
def test_trained_adapters_travel_under_the_names_and_shapes_predict_forecasts(rule, tensors):
    from fedbandwidth.forecast import ForecastConfig, message_specs

    forecast = message_specs(ForecastConfig(model="pythia-14m", lora=SPEC, lora_rule=rule))
    assert {s.name: tuple(s.shape) for s in forecast} == lora.adapter_shapes(SPEC, rule) and len(forecast) == tensors
