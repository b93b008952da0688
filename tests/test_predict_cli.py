"""`fedbandwidth predict`: JSON keys and exact values for a 7B model with LoRA; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest

from conftest import LEGACY_MESSAGE_BYTES, run_cli_probe
from fedbandwidth.cli import main


def predict_json(capsys, *args: str) -> dict:
    """Run `fedbandwidth predict ARGS --json` in this process; the JSON it printed."""
    assert main(["predict", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_7b_model_with_lora_in_json(capsys):
    report = predict_json(
        capsys,
        "--model",
        "mistral-7b-v0.1",
        "--lora-rank",
        "16",
        "--lora-targets",
        "q_proj,v_proj",
        "--supernodes",
        "10",
        "--rounds",
        "3",
        "--fraction",
        "0.5",
        "--api",
        "message",
    )
    assert report["model"]["parameters"] == 7_241_732_096 and report["model"]["tensors"] == 291
    assert report["adapter"]["parameters"] == report["adapter"]["peft_trainable_parameters"] == 6_815_744
    assert report["adapter"]["tensors"] == report["message"]["arrays"] == 128
    assert report["message"]["tensor_bytes"] == 4 * 6_815_744
    assert (report["train_nodes"], report["rounds"]) == (5, 3)
    assert report["total_bytes"] == 3 * 5 * 2 * report["message"]["payload_bytes"]
    assert report["links"]["4G"]["round_seconds"] > report["links"]["datacenter"]["round_seconds"] > 0


def test_defaults_are_the_lesson_and_lora_targets_default_to_peft(capsys):
    assert predict_json(capsys)["total_bytes"] == 4 * LEGACY_MESSAGE_BYTES
    report = predict_json(capsys, "--lora-rank", "8", "--dtype", "bfloat16")
    assert report["adapter"]["targets"] == ["query_key_value"] and report["config"]["dtype"] == "bfloat16"
    assert report["message"]["tensor_bytes"] == 2 * report["adapter"]["parameters"]  # 2 bytes a parameter


def test_ffa_sends_only_b_half_of_fedits_adapter_bytes_for_square_targets(capsys):
    fedit = predict_json(capsys, "--model", "mistral-7b-v0.1", "--lora-rank", "16", "--lora-targets", "q_proj")
    ffa = predict_json(capsys, "--model", "mistral-7b-v0.1", "--lora-rank", "16", "--lora-targets", "q_proj",
                       "--lora-rule", "ffa")  # fmt: skip
    assert (fedit["adapter"]["rule"], ffa["adapter"]["rule"]) == ("fedit", "ffa")
    assert (fedit["adapter"]["tensors"], ffa["adapter"]["tensors"]) == (64, 32)  # 32 layers: A and B, or B
    assert 2 * ffa["message"]["tensor_bytes"] == fedit["message"]["tensor_bytes"] == 4 * 32 * 2 * 16 * 4096


def test_text_output_names_the_model_adapter_message_and_links(capsys):
    assert main(["predict", "--model", "EleutherAI/pythia-70m", "--lora-rank", "4"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("EleutherAI/pythia-70m (shipped config, GPTNeoXForCausalLM): 70,426,624 parameters")
    assert "LoRA r=4 on query_key_value" in text and "one train message:" in text and "4G" in text


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--model", "pythia-13m"], "--model 'pythia-13m'"),
        (["--model", "missing.json"], "--model 'missing.json'"),
        (["--lora-rank", "0"], "--lora-rank"),
        (["--lora-rank", "4", "--lora-targets", "q_proj"], "lora-targets"),
        (["--dtype", "int8"], "--dtype"),
        (["--lora-rank", "4", "--lora-rule", "dora"], "--lora-rule"),
        (["--lora-targets", "q_proj"], "--lora-targets"),
        (["--dora"], "--dora needs --lora-rank"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_any_work(args, names):
    out, err = run_cli_probe("predict", *args)
    assert out.split() == ["2", "False", "False"]  # exit 2; neither Ray nor Flower's simulation imported
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fedbandwidth predict: error:") and names in lines[0]


def test_simulate_accepts_a_config_path(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        '{"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,'
        ' "num_hidden_layers": 1, "vocab_size": 100}'
    )
    assert main(["simulate", "--model", str(config), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["total_bytes"] == summary["predicted_bytes"] > 0 and summary["model"]["name"] == str(config)


def test_dora_and_targets_matching_nothing_as_peft_goes_on(capsys):
    args = ["--model", "llama-3.2-1b", "--lora-rank", "8", "--lora-targets", "q_proj,v_proj,c_attn", "--dora"]
    report = predict_json(capsys, *args)
    assert report["adapter"]["type"] == "dora" and report["adapter"]["unmatched_targets"] == ["c_attn"]
    # 16 layers: q_proj 2048 -> 2048 and v_proj 2048 -> 512, each A, B and a magnitude vector of its outputs
    assert report["adapter"]["parameters"] == 16 * (8 * (4096 + 2560) + 2048 + 512) == 892_928
    assert report["adapter"]["peft_trainable_parameters"] == 892_928 and report["adapter"]["tensors"] == 96
    assert set(report["flowertune_mib"]) == {"legacy", "message"}
    assert main(["predict", *args]) == 0
    assert "  warning: c_attn matched no module (peft goes on without)" in capsys.readouterr().out.splitlines()
