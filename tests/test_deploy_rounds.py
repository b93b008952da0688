"""Real small deployments (tiny-gptneox, loopback) whose rounds do not go as planned: a node SIGKILLed early in
round 2 (its messages are moved only if fetched; it is not sampled in round 3), and a straggler cut off by
closing the round at its K-th reply (its late reply written as late, its bytes as wasted)."""

from __future__ import annotations

import csv

import pytest

from fedbandwidth.model import tensor_specs
from fedbandwidth.theory import predict
from fedbandwidth.wire.engine import DeployConfig, deploy
from fedbandwidth.wire.faults import NodeFault
from fedbandwidth.wire.report import deploy_summary
from fedbandwidth.wire.report_text import render_deploy_text

TINY = "tiny-gptneox"  # 1.85 MB a message: rounds of a few seconds
TINY_BYTES = predict(tensor_specs(TINY), 1, 1, api="message").message_payload_bytes
APP_BYTES = 400_000  # more than the app (FAB) a node fetches with its first message
OVERHEAD = 1.01  # wire/payload of a model message on loopback: object framing, HTTP headers ...
FIXED = 160_000  # ... and what a node sends and fetches besides, each round: polls, heartbeats, the reply's
# object tree and requests (measured: ~35 KB down, ~135 KB up a node-round for tiny-gptneox; 0.24% of pythia-14m)


def rows(path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """3 nodes x 3 rounds; node 0 SIGKILLed as its round-2 model comes down; rounds time out after 15 s."""
    out = tmp_path_factory.mktemp("killed")
    cfg = DeployConfig(supernodes=3, rounds=3, model=TINY, round_timeout=15, out=out)
    run = deploy(cfg, faults=[NodeFault(partition=0, after_down_bytes=TINY_BYTES + APP_BYTES + 2**19)])  # 0.5 MiB in
    return run, deploy_summary(run)


def test_the_killed_node_is_not_sampled_again_and_round_3_moves_what_the_relays_carried(killed):
    run, report = killed
    assert run.status == "finished:completed" and run.lost == [0]
    dead = run.node_ids[0]
    ledger = rows(run.out / "ledger.csv")
    assert {r["round"] for r in ledger if int(r["node_id"]) == dead} == {"1", "2"}  # not sampled in round 3
    assert [r["round"] for r in ledger if int(r["node_id"]) == dead and r["direction"] == "up"] == ["1"]
    round_3 = next(r for r in report["rounds"] if r["round"] == 3)
    assert round_3["down_bytes"] == round_3["up_bytes"] == 2 * TINY_BYTES
    assert round_3["down_bytes"] <= round_3["wire_bytes"]["down"] <= OVERHEAD * round_3["down_bytes"] + 2 * FIXED
    cells = {(c["round"], c["partition"]): c for c in report["node_rounds"]}
    assert cells[3, 0]["wire_bytes"] == {"down": 0, "up": 0} and cells[3, 0]["payload_bytes"]["down"] == 0
    for partition in (1, 2):  # the survivors: every round's model moved, the relays say the same
        for r in (1, 2, 3):
            cell, app = cells[r, partition], APP_BYTES if r == 1 else 0
            assert cell["payload_bytes"] == {"down": TINY_BYTES, "up": TINY_BYTES}, cell
            assert TINY_BYTES <= cell["wire_bytes"]["down"] <= OVERHEAD * TINY_BYTES + FIXED + app, cell
            assert TINY_BYTES <= cell["wire_bytes"]["up"] <= OVERHEAD * TINY_BYTES + FIXED, cell


def test_the_killed_nodes_round_2_model_counts_as_moved_only_if_it_was_fetched_whole(killed):
    run, report = killed
    cell = next(c for c in report["node_rounds"] if (c["round"], c["partition"]) == (2, 0))
    (row,) = [r for r in rows(run.out / "ledger.csv") if (r["round"], r["node_id"]) == ("2", str(run.node_ids[0]))]
    if row["delivered"] == "True":  # it had it all (the SuperLink dropped the message), then died computing
        assert cell["payload_bytes"]["down"] == TINY_BYTES <= cell["wire_bytes"]["down"]
        assert report["wasted_bytes"]["down"] == TINY_BYTES
    else:  # killed mid-download: part of it crossed, none of it counted as moved
        assert cell["payload_bytes"]["down"] == 0 and cell["undelivered_bytes"] == TINY_BYTES
        assert 0 < cell["wire_bytes"]["down"] < TINY_BYTES
        assert report["undelivered_bytes"] == TINY_BYTES and "undelivered: " in render_deploy_text(report)
    assert {(x["round"], x["node"]) for x in report["lost"]} == {(2, 0)}
    assert run.leftovers() == []


def test_a_straggler_cut_off_at_the_kth_reply_is_late_and_its_bytes_wasted(tmp_path):
    # K = max(int(3 x 0.5), 2) = 2; over-commit 1.5 samples all 3; node 2 takes 6 s to reply: always late
    cfg = DeployConfig(
        supernodes=3, rounds=2, fraction=0.5, over_commit=1.5, compute_seconds=(0, 0, 6), model=TINY, out=tmp_path
    )
    run = deploy(cfg)
    report = deploy_summary(run)
    assert run.status == "finished:completed" and run.lost == []
    slow = run.node_ids[2]
    ledger = rows(tmp_path / "ledger.csv")
    assert [(r["round"], r["direction"]) for r in ledger if r["late"] == "True"] == [("1", "up")]
    assert [r["node_id"] for r in ledger if r["late"] == "True"] == [str(slow)]
    assert {r["round"] for r in ledger if int(r["node_id"]) == slow} == {"1"}  # missing in round 2: not sampled
    assert ("1", "late_reply", str(slow)) in [
        (e["round"], e["event"], e["node_id"]) for e in rows(run.out / "timeline.csv")
    ]
    assert report["wasted_bytes"] == {"down": TINY_BYTES, "up": TINY_BYTES, "total": 2 * TINY_BYTES}
    assert report["late_replies"] == 1 and "wasted: 3,708,112 B" in render_deploy_text(report)
    events = rows(run.out / "timeline.csv")
    closed = [float(e["unix_time"]) for e in events if (e["round"], e["event"]) == ("1", "round_closed")]
    late = [float(e["unix_time"]) for e in events if (e["round"], e["event"]) == ("1", "late_reply")]
    assert report["rounds"][0]["seconds"] > 0 and closed[0] < late[0]  # closed at the 2nd reply, not the straggler's
    (crossed,) = [c for c in report["node_rounds"] if c["late_up_crossing_bytes"]]
    assert crossed["partition"] == 2 and crossed["late_up_crossing_bytes"] == TINY_BYTES
    assert TINY_BYTES <= crossed["wire_bytes"]["up"] <= OVERHEAD * TINY_BYTES + FIXED  # in the window it crossed in
    late_node = report["nodes"][2]  # its late reply crossed its relay: moved, and wasted
    assert late_node["payload_bytes"] == {"down": TINY_BYTES, "up": TINY_BYTES}
    assert TINY_BYTES <= late_node["wire_bytes"]["up"] <= OVERHEAD * TINY_BYTES + FIXED
    assert run.leftovers() == []
