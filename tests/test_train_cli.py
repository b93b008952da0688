"""`fedbandwidth train`: bad input stops before any simulation; short real runs report bytes and a falling loss."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import MESSAGE_BYTES, run_cli_probe


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
        (["--down-codec", "delta"], "down-codec: delta applies to the uplink only"),
        (["--up-codec", "layers:nothing*"], "selects none of the model's tensors"),
        (["--down-codec", "layers:-lm_head.weight"], "layers on the downlink needs the same layers"),
        (["--local-steps", "0"], "argument --local-steps: must be >= 1, got 0"),
        (["--fraction", "0"], "argument --fraction: must lie in (0, 1], got 0"),
        (["--up-codec", "delta+lowrank:0"], "up-codec: lowrank rank must be a whole number >= 1, got '0'"),
        (["--backend", "dask"], "argument --backend: invalid choice: 'dask'"),
        (["--out", "/proc/no/such/dir"], "--out '/proc/no/such/dir' is not writable"),
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
    assert {int(r["payload_bytes"]) for r in rows if r["direction"] == "down"} == {28_148_640}  # fp16
    assert report["up_bytes"] < 4 * MESSAGE_BYTES / 70  # 1% of values as int8 + int32/uint16 indices
    assert [r["round"] for r in report["rounds"]] == [1, 2]
    assert report["rounds"][-1]["eval_loss"] == report["final_eval_loss"]
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
