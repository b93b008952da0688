"""`fedbandwidth train`: bad input stops before any simulation; short real runs report bytes and a falling loss."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli_probe


def run_train(*args):
    """Run `fedbandwidth train ARGS` in a fresh interpreter; (stdout, stderr)."""
    return run_cli_probe("train", *args)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--up-codec", "zip"], "up-codec: unknown codec 'zip'"),
        (["--up-codec", "delta+topk:0"], "up-codec: topk fraction must lie in (0, 1], got 0"),
        (["--up-codec", "delta+topk:1.5"], "up-codec: topk fraction must lie in (0, 1], got 1.5"),
        (["--up-codec", "int3"], "up-codec: unknown codec 'int3'"),
        (["--up-codec", "topk:0.01"], "up-codec: topk needs 'delta' before it"),
        (["--down-codec", "delta+topk:0.1:noef"], "down-codec: topk:noef means nothing on the downlink"),
        (["--up-codec", "layers:nothing*"], "selects none of the model's tensors"),
        (["--down-codec", "layers:-lm_head.weight"], "layers on the downlink needs the same layers"),
        (["--local-steps", "0"], "argument --local-steps: must be >= 1, got 0"),
        (["--fraction", "0"], "argument --fraction: must lie in (0, 1], got 0"),
        (["--up-codec", "delta+lowrank:0"], "up-codec: lowrank rank must be a whole number >= 1, got '0'"),
        (["--backend", "dask"], "argument --backend: invalid choice: 'dask'"),
        (["--out", "/proc/no/such/dir"], "--out '/proc/no/such/dir' is not writable"),
        (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["--seed", "x"], "argument --seed: must be a whole number, got 'x'"),
        (["--lora-rank", "0"], "argument --lora-rank: must be >= 1, got 0"),
        (["--lora-rank", "2"], "lora-rank: adapters fine-tune a pre-trained model; give --warm-start STEPS too"),
        (["--warm-start", "2", "--lora-rank", "2", "--lora-targets", "nope"], "lora-targets: 'nope' matches no module"),
        (["--warm-start", "2", "--lora-rank", "2", "--lora-targets", " , "], "lora-targets must name at least one"),
        (["--lora-rule", "mean"], "argument --lora-rule: invalid choice: 'mean'"),
        (["--target-loss", "0"], "target-loss must be a number > 0, got 0.0"),
        (["--max-rounds", "4"], "max-rounds needs --target-loss"),
        (["--target-loss", "3", "--max-rounds", "1"], "max-rounds must be >= rounds (2), got 1"),
        (["--zeroth-seeds", "0"], "argument --zeroth-seeds: must be >= 1, got 0"),
        (["--zeroth-seeds", "4", "--zeroth-eps", "0"], "zeroth-eps must be a number > 0"),
        (["--zeroth-seeds", "4", "--up-codec", "int8"], "zeroth-seeds: the zeroth-order lever sends K scalars"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_ray(args, needle):
    stdout, stderr = run_train(*args)
    assert stdout.split() == ["2", "False", "False"]  # exit code 2; Ray and the simulation never imported
    assert stderr.count("\n") == 1 and needle in stderr and "Traceback" not in stderr


def test_train_json_end_to_end(tmp_path):
    """2 nodes x 2 rounds x 2 steps with top-k + int8 up, fp16 down: exact ledger, loss goes down."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedbandwidth",
            "train",
            "--supernodes",
            "2",
            "--rounds",
            "2",
            "--local-steps",
            "2",
            "--up-codec",
            "delta+topk:0.01+int8",
            "--down-codec",
            "fp16",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    with (tmp_path / "ledger.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8  # 2 rounds x 2 nodes x (down + up)
    assert report["down_bytes"] == sum(int(r["payload_bytes"]) for r in rows if r["direction"] == "down")
    assert report["up_bytes"] == sum(int(r["payload_bytes"]) for r in rows if r["direction"] == "up")
    assert {int(r["payload_bytes"]) for r in rows if r["direction"] == "down"} == {
        4_490_144
    }  # fp16, 4,096-row vocabulary
    assert report["up_bytes"] < 4 * 8_966_768 / 40  # 1% of values as int8 + indices, of a float32 message
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    assert report["rounds"][-1]["eval_loss"] == report["final_eval_loss"]
    timing = {"compute_seconds", "encode_seconds", "decode_seconds", "server_seconds"}  # for the fleet planner
    assert all(timing <= set(r) and r["compute_seconds"] > 0 for r in report["rounds"])
    assert report["final_eval_loss"] < report["initial_eval_loss"]


def test_backends_train_identically():
    """The in-process backend and Ray run the same clients on the same data: same bytes, same losses."""
    from fedbandwidth.compress.training import TrainConfig, train

    results = [
        train(TrainConfig(supernodes=2, rounds=1, local_steps=1, up_codec="delta+lowrank:2+int8", backend=backend))
        for backend in ("inprocess", "ray")
    ]
    ledgers = [r.ledger.to_frame().sort_values(["direction", "node_id"]) for r in results]
    assert list(ledgers[0].payload_bytes) == list(ledgers[1].payload_bytes)
    assert results[0].eval_loss == results[1].eval_loss
    assert results[0].final_eval_loss < results[0].eval_loss[0]


def test_a_seed_reproduces_the_same_losses_twice_in_a_row():
    """3 clients finish in varying order on 2 engine threads; replies are averaged in partition order."""
    from fedbandwidth.compress import task
    from fedbandwidth.compress.training import TrainConfig, train

    cfg = TrainConfig(supernodes=3, rounds=2, local_steps=1, seed=1)
    first, second = train(cfg), train(cfg)
    assert first.eval_loss == second.eval_loss and len(first.eval_loss) == 3  # rounds 0, 1, 2, to the last bit
    assert first.final_eval_loss < first.eval_loss[0]
    assert first.eval_loss[0] != task.evaluate(task.build_model(0), task.held_out(32, 32))  # seed 0 starts elsewhere


def test_warm_start_adapters_ledger_is_the_serialized_adapters(tmp_path, monkeypatch):
    """2 clients fine-tune rank-2 adapters of a (2-step) warm start: down float32 B's, up int8 B's, to the byte."""
    from fedbandwidth.compress import lora, warm
    from fedbandwidth.compress.chain import parse_codec
    from fedbandwidth.compress.encoding import encode, payload_bytes
    from fedbandwidth.compress.training import TrainConfig, train

    monkeypatch.setattr(warm, "WARM_DIR", tmp_path)
    cfg = TrainConfig(rounds=1, local_steps=1, warm_start=2, lora_rank=2, lora_targets="dense", up_codec="int8")
    result = train(cfg)
    zeros = {k: np.zeros(s, np.float32) for k, s in lora.adapter_shapes(cfg.lora_spec, "ffa").items()}
    assert len(zeros) == 6 and all(k.endswith("attention.dense.lora_B.weight") for k in zeros)  # 6 layers x B
    ledger = result.ledger.to_frame()
    assert list(ledger.payload_bytes[ledger.direction == "down"]) == [payload_bytes(zeros)] * 2
    assert (
        list(ledger.payload_bytes[ledger.direction == "up"])
        == [payload_bytes(encode(parse_codec("int8"), zeros).arrays)] * 2
    )
    assert result.final_eval_loss != result.eval_loss[0]  # the adapters trained
