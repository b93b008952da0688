"""Real deployments on loopback (SuperLink + 2 SuperNodes behind relays), insecure and TLS; faults."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from flwr.cli.build import build_fab_from_disk

from conftest import MESSAGE_BYTES, processes_with_flwr_home, start_deploy
from fedbandwidth.wire.commands import find_executables
from fedbandwidth.wire.engine import DeployConfig, deploy
from fedbandwidth.wire.meters import object_costs
from fedbandwidth.wire.report import deploy_summary
from fedbandwidth.wire.report_text import render_deploy_text
from fedbandwidth.wire.tls import generate_tls


def check_wire_against_payload(report):
    """Downlink wire >= payload and within a few percent, per node and per round."""
    for node in report["nodes"]:
        assert node["payload_bytes"]["down"] == MESSAGE_BYTES
        assert MESSAGE_BYTES <= node["wire_bytes"]["down"] <= 1.03 * MESSAGE_BYTES
        assert 1.0 <= node["wire_per_payload"]["down"] <= 1.03
        # uplink: objects the SuperLink still holds are not sent again, so 0 < wire <= ~payload
        assert 0 < node["wire_bytes"]["up"] <= 1.03 * MESSAGE_BYTES
    (round_1,) = report["rounds"]
    assert round_1["down_bytes"] == round_1["up_bytes"] == 2 * MESSAGE_BYTES
    assert 2 * MESSAGE_BYTES <= round_1["wire_bytes"]["down"] <= 1.03 * 2 * MESSAGE_BYTES
    total_wire_down = report["wire_bytes"]["down"]
    assert total_wire_down == round_1["wire_bytes"]["down"] + report["wire_bytes"]["other"]["down"]


@pytest.fixture(scope="module", params=[False, True], ids=["insecure", "tls"])
def deployed(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("tls" if request.param else "insecure")
    run = deploy(DeployConfig(supernodes=2, rounds=1, tls=request.param, out=out, round_timeout=120))
    return run, deploy_summary(run)


def test_deployment_measures_payload_and_wire(deployed):
    run, report = deployed
    assert run.status == "finished:completed" and run.lost == []
    assert report["total_bytes"] == report["predicted_bytes"] == 4 * MESSAGE_BYTES
    assert len({n["node_id"] for n in report["nodes"]}) == 2 and None not in run.node_ids
    check_wire_against_payload(report)
    assert all(relay.connections >= 1 for relay in run.relays)
    assert "wire/payload" in render_deploy_text(report)
    grid = report["grid_meter"]  # the Grid meter in the deployment: the same arrays, plus configs and metrics
    assert grid["down"]["array_bytes"] == grid["up"]["array_bytes"] == 2 * MESSAGE_BYTES
    assert grid["down"]["config_bytes"] > 0 and grid["up"]["metric_bytes"] > 0


def test_flowers_own_counters_sit_between_the_ledger_and_the_relays(deployed):
    run, report = deployed
    costs = object_costs("pythia-14m")
    assert costs == {"objects": 161, "framing": 24_655, "tree": 11_022}  # 76 arrays, 84 chunks, the record
    down, up = report["meters"]
    assert down["messages"] == up["messages"] == 2
    for row in (down, up):
        assert row["object_framing"] == 2 * costs["framing"] and row["object_trees"] == 2 * costs["tree"]
        assert row["flower_bytes"] == sum(
            row[k] for k in ("ledger_bytes", "object_framing", "object_trees", "flower_rest")
        )
        assert 0 < row["flower_rest"] < 2 * 20_000  # message objects, protobuf fields: 11.7 KB a message down here
    fab_bytes = len(build_fab_from_disk(run.out / "app"))  # the app (FAB) as `flwr run` built it, deflated
    assert down["relay_rest"] > 2 * fab_bytes  # the app (GetFab) and every HTTP header, uncounted by Flower
    assert 0 < up["relay_rest"] < 0.02 * up["relay_bytes"]
    assert "Flower's counter" in render_deploy_text(report)


def test_tls_mode_never_runs_insecure(deployed):
    run, report = deployed
    commands = [
        (run.out / "logs" / f"{name}.log").read_text().splitlines()[0]
        for name in ("superlink", "supernode-0", "supernode-1", "flwr-run")
    ]
    config_toml = (run.out / "flwr_home" / "config.toml").read_text()
    assert report["config"]["tls"] == run.cfg.tls
    if run.cfg.tls:
        assert not any("--insecure" in c for c in commands) and "insecure" not in config_toml
        assert "--ssl-certfile" in commands[0] and "--root-certificates" in commands[1]
        assert f'root-certificates = "{run.out / "certs" / "ca.crt"}"' in config_toml
    else:
        assert all("--insecure" in c for c in commands[:3]) and "insecure = true" in config_toml


def test_no_process_is_left_behind(deployed):
    run, _ = deployed
    assert len(run.pids) >= 4  # superlink, its superexec, 2 supernodes (+ their helpers)
    assert run.leftovers() == []


def cli(*args):
    """`fedbandwidth deploy ...` in a fresh interpreter; (exit code, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "deploy", *args], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


def test_port_in_use_is_one_line_exit_2(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code, stderr = cli("--port", str(port), "--out", str(tmp_path))
    assert code == 2 and stderr.count("\n") == 1
    assert f"--port {port} is already in use on 127.0.0.1" in stderr


def test_missing_superlink_is_one_line_exit_2(tmp_path):
    code, stderr = cli("--flower-bin", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 2 and stderr.count("\n") == 1
    assert f"flower-superlink not found in {tmp_path}" in stderr
    assert not (tmp_path / "out" / "logs").exists()  # nothing started


def test_unreadable_certificates_are_one_line_exit_2(tmp_path):
    files = generate_tls(tmp_path / "certs")
    files.server_key.write_text("not a key")
    code, stderr = cli("--certs", str(tmp_path / "certs"), "--out", str(tmp_path / "out"))
    assert code == 2 and stderr.count("\n") == 1
    assert "server.key is not a valid PEM server key" in stderr
    files.ca_cert.unlink()
    code, stderr = cli("--certs", str(tmp_path / "certs"), "--out", str(tmp_path / "out"))
    assert code == 2 and "cannot read" in stderr and "ca.crt" in stderr


def test_bad_counts_are_one_line_exit_2():
    code, stderr = cli("--supernodes", "0")
    assert code == 2 and "argument --supernodes: must be >= 1, got 0" in stderr
    assert find_executables(None)["flower-superlink"].endswith("flower-superlink")


def test_ctrl_c_tears_everything_down(tmp_path):
    import signal

    out = tmp_path / "out"
    deploy_cli = start_deploy(out)
    assert len(processes_with_flwr_home(out / "flwr_home")) >= 3  # superlink + 2 supernodes running
    deploy_cli.send_signal(signal.SIGINT)
    _, stderr = deploy_cli.communicate(timeout=60)
    assert deploy_cli.returncode == 130 and "interrupted" in stderr
    assert processes_with_flwr_home(out / "flwr_home") == []


def test_whole_run_timeout_tears_down_with_exit_3_and_keeps_the_ledger(tmp_path):
    out = tmp_path / "out"
    argv = ["--rounds", "100", "--model", "tiny-gptneox", "--timeout", "15", "--out", str(out)]
    code, stderr = cli(*argv)
    assert code == 3 and stderr.count("\n") == 1
    assert stderr.startswith("fedbandwidth deploy: timed out after 15 s; torn down, ledger kept in")
    assert (out / "ledger.csv").read_text().startswith("round,phase,node_id")  # kept, rows as far as it got
    assert json.loads((out / "summary.json").read_text())["run"]["status"] == "timed out after 15 s"
    assert processes_with_flwr_home(out / "flwr_home") == []


NOT_ROOT = """
import os, sys
os.geteuid = lambda: 1000
from fedbandwidth.cli import main
main(sys.argv[1:])
"""


def test_links_without_root_is_one_line_exit_2_before_anything_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", NOT_ROOT, "deploy", "--links", "4G", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--links needs root" in done.stderr
    assert not (tmp_path / "out" / "logs").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--over-commit", "0.5"], "argument --over-commit: must be a number >= 1, got 0.5"),
        (["--deadline", "0"], "argument --deadline: must be a number >= 0.001, got 0.0"),
        (["--deadline", "200", "--round-timeout", "100"], "deadline must lie in (0, round timeout 100] s, got 200"),
        (["--compute-seconds", "0,slow"], "--compute-seconds must be comma-separated numbers, got '0,slow'"),
    ],
)
def test_bad_straggler_settings_are_one_line_exit_2(tmp_path, args, needle):
    code, stderr = cli(*args, "--out", str(tmp_path / "out"))
    assert code == 2 and stderr.count("\n") == 1 and needle in stderr
    assert not (tmp_path / "out" / "logs").exists()


def test_object_costs_array_by_array_equal_deflating_the_whole_record():
    from flwr.app import Array, ArrayRecord
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree

    from fedbandwidth.model import random_arrays

    record = ArrayRecord({k: Array(v) for k, v in random_arrays("tiny-gptneox").items()})
    nested = get_all_nested_objects(record).values()
    framing = sum(len(obj.deflate()) for obj in nested) - record.count_bytes()
    whole = {"objects": len(nested), "framing": framing, "tree": get_object_tree(record).ByteSize()}
    assert object_costs("tiny-gptneox") == whole == {"objects": 57, "framing": 8_835, "tree": 3_902}
