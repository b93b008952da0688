"""`fedbandwidth calibrate`: this machine's CPU terms, measured on loopback, stored, and read by the predictors."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.cli.calibrate import fit
from fedbandwidth.names import DOWN, UP
from fedbandwidth.wire import calibration
from fedbandwidth.wire.calibration import BUILT_IN, Calibration, load, save, solve
from fedbandwidth.wire.links import LinkProfile
from fedbandwidth.wire.transfer import OVERLAP, message_objects, message_seconds, request_loops, wire_rate

FAST = LinkProfile("loopback", 1e15, 1e15, 0.0)  # no latency, bytes all but free: only the request turns count


def test_no_file_means_the_built_in_constants_and_a_named_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.ENV, str(tmp_path / "none.json"))
    assert load() == Calibration() and load().source == BUILT_IN
    with pytest.raises(ConfigError, match="calibration: no such file"):
        load(tmp_path / "missing.json")


def test_a_saved_calibration_reads_back_and_a_corrupt_one_is_refused(tmp_path, monkeypatch):
    made = Calibration(0.02, 0.001, 0.003, 4e9, 0.4, 1.5, made={"host": "here"})
    path = save(made, tmp_path / "c" / "calibration.json")
    back = load(path)
    assert (back.request_seconds, back.superlink_down_seconds, back.superlink_up_seconds) == (0.02, 0.001, 0.003)
    assert (back.pickup_seconds, back.turnaround_seconds) == (0.4, 1.5)
    assert back.source == str(path) and back.made == {"host": "here"}
    monkeypatch.setenv(calibration.ENV, str(path))
    assert load() == back  # the environment names the default
    old = {"request_seconds": 0.02, "superlink_down_seconds": 0, "superlink_up_seconds": 0}
    path.write_text(json.dumps(old))  # made before the round terms were measured: the built-in ones
    assert load(path).turnaround_seconds == Calibration().turnaround_seconds
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not a calibration file .*rerun `fedbandwidth calibrate`"):
        load(path)
    path.write_text(json.dumps({"request_seconds": -1, "superlink_down_seconds": 0, "superlink_up_seconds": 0}))
    with pytest.raises(ConfigError, match="holds a negative time"):
        load(path)


def test_a_slower_request_adds_one_request_a_turn_to_each_of_the_two_request_loops():
    """With bytes free and no latency an upload is ceil(objects / 2) turns: 0.1 s more a request, that many x 0.1 s."""
    turns = math.ceil(len(message_objects("tiny-gptneox")) / 2)
    slow = Calibration(request_seconds=Calibration().request_seconds + 0.1)
    gained = message_seconds("tiny-gptneox", FAST, "up", calibration=slow) - message_seconds("tiny-gptneox", FAST, "up")
    assert gained == pytest.approx(turns * 0.1, rel=1e-9)
    busy = Calibration(superlink_up_seconds=0.05)  # 3 nodes at once: each turn waits for 2 others' share
    assert message_seconds("tiny-gptneox", FAST, "up", nodes=3, calibration=busy) == pytest.approx(
        message_seconds("tiny-gptneox", FAST, "up", calibration=Calibration(request_seconds=0.012 + 0.1)), rel=1e-6
    )  # on FAST the others keep the SuperLink busy all but the (near-zero) time their bytes take


def test_solve_finds_the_root_or_stops_at_an_end():
    assert solve(lambda x: 3 * x + 1, 2.5) == pytest.approx(0.5)
    assert solve(lambda x: x + 1, 0.5) == 0.0 and solve(lambda x: x, 5.0) == pytest.approx(1.0)


def test_fit_recovers_the_terms_that_made_the_measurements():
    truth = Calibration(0.021, 0.004, 0.009, request_up_seconds=0.033)
    seconds = lambda d, n: message_seconds("tiny-gptneox", FAST, d, nodes=n, calibration=truth)  # noqa: E731
    row = lambda d, n: {"direction": d, "nodes_at_once": n, "measured_seconds": seconds(d, n)}  # noqa: E731
    one, two = [row("down", 1), row("up", 1)], [row("down", 2), row("up", 2), row("up", 2)]
    got = fit("tiny-gptneox", one, two, 1e15, {})
    assert got.request_seconds == pytest.approx(0.021, rel=1e-6)
    assert got.request(UP) == got.request_up_seconds == pytest.approx(0.033, rel=1e-6)
    assert got.superlink_down_seconds == pytest.approx(0.004, rel=1e-6)
    assert got.superlink_up_seconds == pytest.approx(0.009, rel=1e-6)


def test_calibrate_measures_this_machine_and_writes_what_deploy_reads(tmp_path):
    path = tmp_path / "calibration.json"
    command = [
        sys.executable,
        "-m",
        "fedbandwidth",
        "calibrate",
        "--model",
        "tiny-gptneox",
        "--out",
        str(path),
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    printed, stored = json.loads(done.stdout), load(path)
    assert printed["path"] == str(path) and stored.request_seconds == printed["request_seconds"] > 0
    assert 0 <= stored.superlink_down_seconds < 1 and 0 <= stored.superlink_up_seconds < 1
    assert stored.loopback_bits_per_second > 1e8 and stored.made["model"] == "tiny-gptneox"
    assert len(stored.made["messages"]["one_node"]) == 3  # rounds 2 and 3 sample one node: round 2 up, round 3
    assert len(stored.made["messages"]["two_nodes"]) == 6  # round 1 up (its downloads fetch the app), round 4
    assert 0 <= stored.pickup_seconds < 10 and 0 < stored.turnaround_seconds < 30  # a poll; a ClientApp's start
    assert len(stored.made["turns"]["turnaround"]) == 2 + 1 + 2 + 1  # per round and node
    assert len(stored.made["turns"]["start"]) == 1 + 2 + 1  # the ClientApps of rounds 2-4
    assert stored.clientapp_start_seconds == stored.made["clientapp_import"]  # the imports at rest
    assert 0 < stored.clientapp_start_seconds < 30 and 0 < stored.clientapp_work_seconds < 30


def test_the_clientapps_start_and_work_are_read_against_its_nodes_download_and_upload():
    from fedbandwidth.cli.calibrate import clientapp_turns

    timing = [{"round": r, "node": 0, "direction": d, "start_seconds": s}
              for r, d, s in [(1, DOWN, 0.5), (1, UP, 4.0), (2, DOWN, 10.0), (2, UP, 13.5)]]  # fmt: skip
    clock = [{"round": r, "node": 0, "started": s - 1, "loaded": s, "entered": s, "left": s + 0.1} for r, s in
             [(1, 3.0), (2, 11.75)]]  # fmt: skip
    assert clientapp_turns({"timing": timing, "clientapp": clock}) == ([1.0], [1.75])  # round 1 fetched the app
    assert clientapp_turns({"timing": timing}) == ([], [])  # a summary from before ClientApps logged their clock


def test_a_folder_as_out_and_a_missing_calibration_for_deploy_are_one_line_exit_2(tmp_path):
    for argv in (["calibrate", "--out", str(tmp_path)], ["deploy", "--calibration", str(tmp_path / "x.json")]):
        done = subprocess.run([sys.executable, "-m", "fedbandwidth", *argv], capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_a_request_term_per_direction_is_read_back_and_old_files_use_one_for_both(tmp_path):
    path = save(Calibration(0.01, 0, 0, request_up_seconds=0.02), tmp_path / "c.json")
    assert (load(path).request(DOWN), load(path).request(UP)) == (0.01, 0.02)
    path.write_text(json.dumps({"request_seconds": 0.015, "superlink_down_seconds": 0, "superlink_up_seconds": 0}))
    assert (load(path).request(DOWN), load(path).request(UP)) == (0.015, 0.015)
    up_only = Calibration(request_up_seconds=Calibration().request_seconds + 0.1)  # a download is unchanged
    assert message_seconds("tiny-gptneox", FAST, DOWN, calibration=up_only) == message_seconds(
        "tiny-gptneox", FAST, DOWN
    )
    gained = message_seconds("tiny-gptneox", FAST, UP, calibration=up_only) - message_seconds("tiny-gptneox", FAST, UP)
    assert gained == pytest.approx(math.ceil(len(message_objects("tiny-gptneox")) / 2) * 0.1, rel=1e-9)


def test_the_superlink_share_is_paid_for_the_part_of_a_turn_it_processes():
    shared = Calibration(0.01, 0.02, 0.02)
    turns = math.ceil(len(message_objects("pythia-14m")) / 2)  # on loopback the others are always being served
    extra = message_seconds("pythia-14m", FAST, DOWN, nodes=2, calibration=shared) - message_seconds(
        "pythia-14m", FAST, DOWN, calibration=shared
    )
    assert extra == pytest.approx(turns * 0.02, rel=0.02)  # (the loops' split of 164 objects may be 83 / 81)
    slow, objects = LinkProfile.from_mbit("slow", 20, 20, 15), message_objects("pythia-14m")
    alone = 2 * 0.015 + OVERLAP * 0.01  # a turn, one node: a 30 ms round trip and 8 of the request's 10 ms
    busy = 0.01 / alone  # the SuperLink processes a request for about a quarter of a turn
    two_others = request_loops(objects, wire_rate(20e6), alone + 2 * 0.02 * busy)
    assert 0.25 < busy < 0.27
    assert message_seconds("pythia-14m", slow, UP, nodes=3, calibration=shared) == pytest.approx(two_others + 0.015)
