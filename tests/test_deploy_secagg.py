"""SecAgg+ through the Flower App's run config: `deploy --secagg` on a real Deployment Engine, every stage's
bytes at the Grid equal to the formula; the run config's keys checked; bad input one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.privacy.app import secagg_config
from fedbandwidth.privacy.secagg import SecAggConfig
from fedbandwidth.server_app import AppSettings, read_settings
from fedbandwidth.wire.commands import PROJECT

STAGES = ("setup", "share_keys", "collect_masked_vectors", "unmask")


def deploy(*args: str) -> subprocess.CompletedProcess:
    """`fedbandwidth deploy ARGS` in a fresh interpreter."""
    command = [sys.executable, "-m", "fedbandwidth", "deploy", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_run_configs_secagg_defaults_are_flowers_and_switch_it_on_only_when_asked():
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert secagg_config(config, read_settings(config)) is None  # secagg = false
    three = {**config, "secagg": True, "min-available-nodes": 3}
    cfg = secagg_config(three, read_settings(three))
    assert cfg == SecAggConfig(supernodes=3, rounds=1)  # the same defaults as `simulate --secagg`
    packed = {"secagg": True, "secagg-shares": 5, "secagg-threshold": 3, "secagg-pack": True,
              "secagg-modulus-range": 2**16, "secagg-quantization-range": 2**12}  # fmt: skip
    cfg = secagg_config(packed, AppSettings(min_available_nodes=5, num_server_rounds=2))
    assert (cfg.supernodes, cfg.rounds, cfg.shares, cfg.threshold, cfg.pack, cfg.modulus_range) == (
        5,
        2,
        5,
        3,
        True,
        2**16,
    )
    with pytest.raises(ConfigError, match=r"fraction-train must be 1.0 with secagg"):
        secagg_config({"secagg": True}, AppSettings(fraction_train=0.5))
    with pytest.raises(ConfigError, match=r"--secagg-threshold must be < --secagg-shares \(3\), got 3"):
        secagg_config({"secagg": True, "secagg-threshold": 3}, AppSettings(min_available_nodes=3))


def test_deploy_secagg_packed_measures_every_stage_at_the_grid_equal_to_the_formula(tmp_path):
    """3 SuperNodes of tiny-gptneox, 1 round (its 4 stages; test_secagg.py repeats them over rounds in simulation),
    the masked vector packed into 16 bits (modulus 2**16)."""
    args = ["--supernodes", "3", "--rounds", "1", "--model", "tiny-gptneox", "--secagg", "--secagg-pack",
            "--secagg-modulus-range", "65536", "--secagg-quantization-range", "4096"]  # fmt: skip
    done = deploy(*args, "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["run"]["status"] == "finished:completed" and report["secagg"]["pack"]
    stages = report["stages"]
    assert [(s["round"], s["stage"], s["direction"]) for s in stages] == [
        (1, stage, d) for stage in STAGES for d in ("down", "up")
    ]
    assert all(s["messages"] == 3 and s["bytes"] == s["predicted_bytes"] > 0 for s in stages)
    grid = report["grid_meter"]
    assert sum(s["bytes"] for s in stages) == report["predicted_bytes"] == sum(grid[d]["payload_bytes"] for d in grid)
    masked = sum(s["bytes"] for s in stages if s["stage"] == "collect_masked_vectors" and s["direction"] == "up")
    assert grid["up"]["array_bytes"] == 0 and masked <= report["wire_bytes"]["up"]  # the upload is a ConfigRecord
    assert (tmp_path / "grid_ledger.csv").read_text() == (tmp_path / "ledger.csv").read_text()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--secagg-pack"], "--secagg-pack needs --secagg"),
        (["--secagg", "--fraction", "0.5"], "--fraction must be 1.0 with --secagg"),
        (["--secagg", "--secagg-shares", "5"], "--secagg-shares must be <= --supernodes (2), got 5"),
        (["--secagg", "--deadline", "5"], "--secagg: SecAgg+ rounds wait for every node's stages"),
    ],
)
def test_bad_secagg_deployments_are_one_line_exit_2(tmp_path, args, needle):
    done = deploy(*args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and needle in done.stderr
    assert not (tmp_path / "out" / "logs").exists()
