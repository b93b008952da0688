"""Who may join: `deploy --auth` (SuperNode authentication, keys registered with `flwr supernode register`) lets
the registered SuperNodes train and refuses one whose key nobody registered; its relay carries no model."""

from __future__ import annotations

import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from fedbandwidth.model import tensor_specs
from fedbandwidth.theory import predict
from fedbandwidth.wire.auth import make_key_pair, registered_node_id
from fedbandwidth.wire.engine import DeployConfig, deploy
from fedbandwidth.wire.report import deploy_summary
from fedbandwidth.wire.report_text import render_deploy_text

TINY = "tiny-gptneox"
TINY_BYTES = predict(tensor_specs(TINY), 1, 1, api="message").message_payload_bytes


def test_key_pairs_are_in_the_formats_flower_reads(tmp_path):
    private, public = make_key_pair(tmp_path, "node")
    key = load_ssh_private_key(private.read_bytes(), None)  # as flower-supernode loads it
    assert isinstance(key.curve, ec.SECP384R1) and private.stat().st_mode & 0o077 == 0
    assert load_ssh_public_key(public.read_bytes()).public_numbers() == key.public_key().public_numbers()
    assert public.read_text().startswith("ecdsa-sha2-nistp384 ")  # as `flwr supernode register` loads it


def test_registered_node_id_reads_flowers_json():
    assert registered_node_id('\x1b[32m{"success": true, "node-id": 42}\x1b[0m') == 42
    assert registered_node_id("no json here") is None


def test_auth_without_tls_is_one_line_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "deploy", "--auth", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--auth needs --tls (or --certs)" in done.stderr
    assert not (tmp_path / "out" / "logs").exists()


def test_an_unregistered_supernode_is_refused_and_its_relay_carries_no_model(tmp_path):
    cfg = DeployConfig(supernodes=2, rounds=1, model=TINY, tls=True, auth=True, unregistered=1, out=tmp_path)
    run = deploy(cfg)
    report = deploy_summary(run)
    assert run.status == "finished:completed" and run.lost == []
    assert sorted(run.registered_ids) == sorted(run.node_ids)  # the nodes that trained are the registered keys
    assert report["total_bytes"] == 4 * TINY_BYTES
    (outsider,) = report["auth"]["unregistered"]
    assert outsider["node_id"] is None and outsider["exit_code"] not in (None, 0)  # it never got a node id
    assert "Failed to activate SuperNode" in outsider["refusal"]
    assert report["auth"]["superlink_refusals"] >= 1
    # not one byte of a model (1,854,056 B), nor of the app: only the refusals of its requests
    assert sum(outsider["wire_bytes"].values()) < 10_000
    commands = [(tmp_path / "logs" / f"{n}.log").read_text().splitlines()[0] for n in ("superlink", "supernode-0")]
    assert "--enable-supernode-auth" in commands[0] and "--auth-supernode-private-key" in commands[1]
    assert "unregistered-0: refused: " in render_deploy_text(report)
    assert run.leftovers() == []
