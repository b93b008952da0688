"""`plan`: a fleet's round times by hand, the server link shared, stragglers' wasted bytes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fedbandwidth.wire.fleet import fleet_from_links, fleet_from_mix, mix_counts
from fedbandwidth.wire.links import LinkProfile
from fedbandwidth.wire.plan import PlanConfig, plan

MB = 1_000_000  # one message in these tests: 8 Mbit, 1 s at 8 Mbit/s
A, B, C = (LinkProfile.from_mbit(n, r, r, 0) for n, r in (("a", 8), ("b", 16), ("c", 80)))


def served(began: float, up: float) -> float:
    """When the ServerApp has a lone reply whose upload began at `began` and took `up` seconds (its mean retries)."""
    from fedbandwidth.wire.turnaround import served_seconds

    return float(served_seconds(np.array([[began]]), np.array([[began + up]]))[0, 0])


def test_every_client_sampled_closes_at_the_slowest():
    report = plan(fleet_from_links([A, B, C], 0.5), PlanConfig(MB, MB, local_steps=2, rounds=2, trials=5))
    for row in report["rounds"]:  # a: 1 s down + 2 x 0.5 s + 1 s up
        assert row["seconds_median"] == row["seconds_p90"] == pytest.approx(3.0)
        assert row["bytes"] == 3 * 2 * MB and row["wasted_bytes"] == 0
    assert report["seconds_median"] == pytest.approx(6.0) and report["bytes"] == 12 * MB


def test_over_commit_closes_at_the_kth_fastest_and_the_rest_is_wasted():
    cfg = PlanConfig(MB, MB, local_steps=1, fraction=0.34, over_commit=3.0, trials=5)  # K = 1, all 3 sampled
    (row,) = plan(fleet_from_links([A, B, C], 0.0), cfg)["rounds"]
    assert row["seconds_median"] == pytest.approx(0.2)  # c: 0.1 s down + 0.1 s up
    assert row["late"] == 2 and row["wasted_bytes"] == 2 * 2 * MB  # a and b: downloads and late uploads


def test_the_server_link_is_shared_by_every_sampled_client():
    server = LinkProfile.from_mbit("server", 24, 24, 0)  # 8 Mbit/s each for 3 clients at once
    latency = LinkProfile.from_mbit("c50", 80, 80, 50)
    (row,) = plan(fleet_from_links([A, B, latency], 0.0), PlanConfig(MB, MB, server_link=server, trials=3))["rounds"]
    assert row["seconds_median"] == pytest.approx(2.1)  # every client 1 s each way; c50 adds 2 x 50 ms


def test_a_client_slower_than_its_share_leaves_the_rest_to_the_others():
    from fedbandwidth.wire.plan import fair_level

    server = LinkProfile.from_mbit("server", 24, 24, 0)  # 8 Mbit/s each, but a (2 Mbit/s) uses only 2
    slow = LinkProfile.from_mbit("slow", 2, 2, 0)
    (row,) = plan(fleet_from_links([slow, C, C], 0.0), PlanConfig(MB, MB, server_link=server, trials=3))["rounds"]
    assert row["seconds_median"] == pytest.approx(8.0)  # the slow one: 4 s each way at its own 2 Mbit/s
    first = PlanConfig(MB, MB, fraction=0.34, over_commit=3.0, server_link=server, trials=3)  # K = 1, 3 sampled
    (row,) = plan(fleet_from_links([slow, C, C], 0.0), first)["rounds"]
    assert row["seconds_median"] == pytest.approx(2 * 8 / 11)  # a c: 11 Mbit/s each way, of the 22 the slow leaves
    caps = np.array([[2.0, 30.0, 100.0, 300.0], [2.0, 30.0, np.nan, np.nan], [5.0, 5.0, np.nan, np.nan]])
    assert fair_level(caps, 20.0).ravel().tolist() == pytest.approx([6.0, 18.0, np.inf])
    assert fair_level(np.full((1, 2), np.nan), 20.0).ravel().tolist() == [np.inf]  # nobody sampled
    assert fair_level(caps, None).ravel().tolist() == [np.inf] * 3  # no server link


def test_a_deadline_closes_the_round_and_counts_the_late():
    (row,) = plan(fleet_from_links([A, B, C], 0.0), PlanConfig(MB, MB, deadline=1.5, trials=3))["rounds"]
    assert row["seconds_median"] == 1.5 and row["late"] == 1 and row["wasted_bytes"] == 2 * MB  # a needs 2 s


def test_a_mix_has_exactly_its_clients_by_largest_remainder():
    assert mix_counts({"4G": 0.5, "Wi-Fi": 0.3, "3G": 0.2}, 7) == {"4G": 4, "Wi-Fi": 2, "3G": 1}
    fleet = fleet_from_mix("4G:0.5,Wi-Fi:0.3,3G:0.2", 10_000, 0.1)
    assert len(fleet) == 10_000 and fleet.labels.count("3G") == 2_000
    assert np.all(fleet.availability == 1.0)


def test_unavailable_clients_are_never_sampled():
    fleet = fleet_from_links([A, C], 0.0)
    fleet.availability[:] = [1.0, 1e-12]  # c is (almost) never there: every round waits for a
    (row,) = plan(fleet, PlanConfig(MB, MB, trials=50))["rounds"]
    assert row["sampled"] == 1.0 and row["seconds_median"] == pytest.approx(2.0)


def cli(*args, tmp_path=None):
    done = subprocess.run([sys.executable, "-m", "fedbandwidth", "plan", *args], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def test_plan_json_for_the_lessons_model():
    code, out, _ = cli("--links", "8/8/0,80/80/0", "--rounds", "2", "--time-model", "formula", "--json")
    report = json.loads(out)
    assert code == 0 and report["message_payload_bytes"] == 56_280_718 + 3_042  # state-dict keys: Message API
    assert [set(r) >= {"round", "seconds_median", "seconds_p90", "bytes", "wasted_bytes"} for r in report["rounds"]]
    slowest = 2 * 8 * report["message_payload_bytes"] / 8e6 + 0.1  # 8 Mbit/s each way + one 0.1 s step
    assert report["rounds"][0]["seconds_median"] == pytest.approx(slowest)


def test_a_codec_shrinks_the_message_it_applies_to_by_its_exact_bytes():
    from fedbandwidth.model import tensor_specs
    from fedbandwidth.payload import npy_header_length

    specs = tensor_specs("tiny-gptneox")  # each array in half precision, its key tagged "#f16"
    fp16 = sum(npy_header_length(s.shape, "<f2") + 2 * s.numel + len(s.name) + len("#f16") for s in specs)
    argv = ["--links", "8/8/0", "--model", "tiny-gptneox", "--down-codec", "fp16", "--time-model", "formula"]
    code, out, _ = cli(*argv, "--json")
    report = json.loads(out)
    assert code == 0 and report["down_bytes"] == fp16 and report["up_bytes"] == report["message_payload_bytes"]
    seconds = 8 * (fp16 + report["up_bytes"]) / 8e6 + 0.1  # down in fp16, up in float32, one 0.1 s step
    assert report["rounds"][0]["seconds_median"] == pytest.approx(seconds)


def test_the_object_model_times_each_message_with_the_calibration_it_is_given(tmp_path):
    from fedbandwidth.wire.calibration import Calibration, save
    from fedbandwidth.wire.links import LinkProfile
    from fedbandwidth.wire.transfer import message_seconds

    slow = Calibration(request_seconds=0.05, superlink_down_seconds=0.0, superlink_up_seconds=0.0,
                       pickup_seconds=0.2, turnaround_seconds=0.7)  # fmt: skip
    path = save(slow, tmp_path / "calibration.json")
    code, out, _ = cli("--links", "8/8/20", "--model", "tiny-gptneox", "--calibration", str(path), "--json")
    report = json.loads(out)
    link = LinkProfile.from_mbit("8/8/20", 8, 8, 20)
    down, up = (message_seconds("tiny-gptneox", link, d, calibration=slow) for d in ("down", "up"))
    seconds = served(down + 0.1 + 0.9, up)  # a 0.1 s step, the pickup and turnaround; then the ServerApp's pull
    assert code == 0 and report["time_model"] == "objects" and report["calibration"] == str(path)
    assert report["rounds"][0]["seconds_median"] == pytest.approx(seconds)
    built_in = json.loads(cli("--links", "8/8/20", "--model", "tiny-gptneox", "--json")[1])["rounds"][0]
    assert built_in["seconds_median"] < seconds  # 12 ms a request instead of 50 ms


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--fleet", "4G:0.5,3G:0.4"], "--fleet: the shares must sum to 1"),
        (["--fleet", "4G:0.5,5G:0.5", "--over-commit", "0.5"], "--over-commit must be >= 1"),
        (["--fleet", "4G:1", "--deadline", "0"], "--deadline must be > 0 seconds"),
        (["--fleet", "4G:1", "--study-setting", "no-such"], "--study-setting: 'no-such' has no rounds to L*"),
        (["--fleet", "6G:1"], "--fleet: unknown link profile '6G'"),
        (["--fleet", "4G:1", "--up-codec", "int9"], "up-codec"),
        (["--fleet", "4G:1", "--up-codec", "int8", "--lora-rank", "4"], "not with --lora-rank"),
        (["--fleet", "4G:1", "--model", "llama-3.2-1b", "--up-codec", "int8"], "over 500,000,000 parameters"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and needle in err


def test_a_fleet_csv_with_a_negative_rate_is_one_line_exit_2(tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_text("down_mbit,up_mbit,latency_ms,step_seconds\n10,5,20,0.1\n-3,5,20,0.1\n")
    code, _, err = cli("--fleet", str(path))
    assert code == 2 and err.count("\n") == 1 and "has a down_mbit <= 0: -3" in err


def test_a_study_setting_plans_its_mean_rounds_to_target_rounded_up(tmp_path):
    from fedbandwidth.checks import ConfigError
    from fedbandwidth.cli.plan import study_rounds

    summary = tmp_path / "compression_summary.json"
    settings = [{"name": "int8", "rounds_to_target_mean": 3.4}, {"name": "top-k", "rounds_to_target_mean": None}]
    summary.write_text(json.dumps({"regimes": {"scratch": {"settings": settings}}}))
    assert study_rounds("int8", summary) == 4
    with pytest.raises(ConfigError, match="'top-k' has no rounds to L\\*"):  # a seed never reached it
        study_rounds("top-k", summary)


def test_adapters_are_timed_by_their_own_objects(tmp_path):
    """Rank-8 adapters of smollm2-135m: 120 small arrays, each its own requests, not the base model's objects."""
    from fedbandwidth.adapters import LoraSpec
    from fedbandwidth.forecast import ForecastConfig, message_specs
    from fedbandwidth.payload import npy_header_length
    from fedbandwidth.shapes import default_targets
    from fedbandwidth.wire.calibration import Calibration, save
    from fedbandwidth.wire.links import LinkProfile
    from fedbandwidth.wire.transfer import array_objects, message_seconds

    path = save(Calibration(pickup_seconds=0.0, turnaround_seconds=0.0), tmp_path / "calibration.json")
    code, out, _ = cli("--links", "8/8/20", "--model", "smollm2-135m", "--lora-rank", "8", "--calibration", str(path),
                       "--json")  # fmt: skip

    specs = message_specs(ForecastConfig("smollm2-135m", lora=LoraSpec(8, default_targets("smollm2-135m"))))
    objects = array_objects([npy_header_length(s.shape, s.dtype) + 4 * s.numel for s in specs])
    link = LinkProfile.from_mbit("8/8/20", 8, 8, 20)
    down, up = (message_seconds("smollm2-135m", link, d, objects=objects) for d in ("down", "up"))
    seconds = served(down + 0.1, up)
    assert code == 0 and json.loads(out)["rounds"][0]["seconds_median"] == pytest.approx(seconds)
    assert seconds < 30  # the whole model's objects would take minutes on 8 Mbit/s


def test_a_client_after_a_slow_download_waits_for_its_clientapps_next_try():
    """With the ClientApp's terms measured, a round adds the pickup, then the ClientApp's start (a fast download)
    or its retries after a slow one (1, 2, 4, 8 s from its first try: 8 s downloads often miss the 7 s try)."""
    from fedbandwidth.wire.calibration import Calibration
    from fedbandwidth.wire.turnaround import loaded_seconds

    turns = Calibration(pickup_seconds=0.25, clientapp_start_seconds=1.5, clientapp_work_seconds=0.5)
    fast, slow = (LinkProfile.from_mbit(n, r, 80, 0) for n, r in (("fast", 80), ("slow", 1)))
    cfg = PlanConfig(MB, MB, local_steps=0, trials=5, calibration=turns, turns=True)
    (row,) = plan(fleet_from_links([fast], 0.0), cfg)["rounds"]
    poll = 0.25  # the ServerApp sees the reply within its 0.5 s poll, after its 0.1 s upload: pulled at once
    assert row["seconds_p90"] <= 0.1 + 0.25 + (1.0 + 1.5 - 0.1) + 0.5 + poll  # launched within the 1 s poll
    assert row["seconds_median"] >= 0.1 + 0.25 + (1.5 - 0.1) + 0.5 + poll
    (row,) = plan(fleet_from_links([slow], 0.0), PlanConfig(MB, MB, 0, trials=400, calibration=turns, turns=True))[
        "rounds"
    ]
    waits = loaded_seconds(np.full(4000, 8.0), 1.5, np.random.default_rng(0)) - 8.0
    assert row["seconds_median"] == pytest.approx(8.0 + 0.25 + np.median(waits) + 0.5 + poll, abs=0.3)
    assert row["seconds_p90"] == pytest.approx(8.0 + 0.25 + np.percentile(waits, 90) + 0.5 + poll, abs=0.5)
