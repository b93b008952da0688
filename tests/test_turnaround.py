"""A node's turnaround: Flower's ClientApp retries a missing object after 1, 2, 4, 8, then 10 s (+-20%)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from fedbandwidth.wire.calibration import Calibration, load, save
from fedbandwidth.wire.turnaround import (
    PULL_JITTER,
    clientapp_rows,
    loaded_seconds,
    pulled_seconds,
    ready_seconds,
    try_times,
)


def test_the_tries_follow_flowers_waits_within_their_jitter():
    times = try_times(1.5, 500, np.random.default_rng(0), horizon=60.0)
    waits = np.diff(times, axis=-1)
    nominal = np.array([1, 2, 4, 8, *[10] * (waits.shape[-1] - 4)])
    assert np.all(times[..., 0] == 1.5) and times[..., -1].min() >= 60.0  # the first try is not delayed
    assert np.all(waits >= nominal * (1 - PULL_JITTER)) and np.all(waits <= nominal * (1 + PULL_JITTER))


def test_a_download_done_before_the_first_try_is_pulled_at_once_and_a_later_one_at_the_next_try_of_both():
    rng = np.random.default_rng(0)
    assert np.all(ready_seconds(np.full(100, 1.0), 1.5, rng) == 1.5)
    ready = ready_seconds(np.full(1000, 2.0), 1.5, rng)  # both threads' second try: 1.5 + 1 s +- 0.2
    assert ready.min() >= 2.3 and ready.max() <= 2.7 and ready.mean() > 2.5  # the later of two threads
    late = ready_seconds(np.full(1000, 300.0), 1.5, rng)  # long after: at most one 10 s wait (+20%) away
    assert np.all((late >= 300) & (late <= 312))


@pytest.mark.parametrize("done", [0.5, 3.3, 8.0, 24.0, 60.0, 250.0])
def test_the_wait_table_gives_what_playing_the_retries_gives(done):
    played = ready_seconds(np.full(20_000, done), 1.5, np.random.default_rng(1)) - done
    mean = float(pulled_seconds(np.array([done]), 1.5)[0]) - done
    drawn = pulled_seconds(np.full(20_000, done), 1.5, np.random.default_rng(2)) - done
    assert mean == pytest.approx(played.mean(), abs=0.2)
    assert np.percentile(drawn, 90) == pytest.approx(np.percentile(played, 90), abs=0.6)


def test_the_launch_is_drawn_within_the_superexecs_poll_and_its_mean_is_the_draws_mean():
    rng = np.random.default_rng(3)
    drawn = loaded_seconds(np.full(20_000, 0.1), 1.5, rng)  # done before any try: loaded at launch + 1.5 s
    assert drawn.min() >= 1.5 and drawn.max() <= 2.5 and drawn.mean() == pytest.approx(2.0, abs=0.02)
    for done in (3.0, 13.0):
        played = loaded_seconds(np.full(20_000, done), 1.5, rng).mean()
        assert float(loaded_seconds(np.array([done]), 1.5)[0]) == pytest.approx(played, abs=0.15)


def test_a_calibration_with_the_clientapps_terms_waits_longer_after_a_slow_download(tmp_path):
    calibration = load(save(Calibration(clientapp_start_seconds=1.5, clientapp_work_seconds=0.8), tmp_path / "c.json"))
    assert (calibration.clientapp_start_seconds, calibration.clientapp_work_seconds) == (1.5, 0.8)
    fast, slow = calibration.turnaround(np.array([0.5, 13.0]))
    assert fast == pytest.approx(0.5 + 1.5 - 0.5 + 0.8)  # launched 0.5 s in (the mean poll), pulls at once
    assert slow > fast + 2  # 13 s: the ClientApp sleeps in its 8 s wait (15 s after its first try +- 1.4 s)
    assert np.all(Calibration(turnaround_seconds=0.7).turnaround(np.array([0.5, 13.0])) == 0.7)  # not measured


def test_a_clientapps_work_is_the_reply_poll_and_the_rest_in_proportion_to_its_bytes():
    from fedbandwidth.wire.transfer import message_objects

    calibration = Calibration(clientapp_start_seconds=1.5, clientapp_work_seconds=0.85, made={"model": "pythia-14m"})
    measured = sum(message_objects("pythia-14m"))  # the model it was measured on
    assert calibration.work() == 0.85 and calibration.work(measured) == pytest.approx(0.85)
    assert calibration.work(measured / 10) == pytest.approx(0.25 + 0.6 / 10)  # half the SuperNode's 0.5 s poll
    assert calibration.work(0) == 0.25
    assert Calibration(clientapp_work_seconds=0.85).work(measured / 10) == 0.85  # the model it came from unknown
    whole, small = (float(calibration.turnaround(np.array([0.5]), message_bytes=b)[0]) for b in (measured, 0))
    assert whole - small == pytest.approx(0.6)


def test_each_clientapps_clock_is_read_in_the_timing_rows_seconds(tmp_path):
    (tmp_path / "clientapp-1.csv").write_text("2,1000.5,1001.25,1001.5,1002.0\n1,990.0,991.0,991.125,991.5\n")
    (tmp_path / "clientapp-0.csv").write_text("1,990.5,991.5,991.75,992.0\n")
    rows = clientapp_rows(tmp_path, origin=990.0)
    assert [(r["round"], r["node"]) for r in rows] == [(1, 0), (1, 1), (2, 1)]
    assert rows[2] == {"round": 2, "node": 1, "started": 10.5, "loaded": 11.25, "entered": 11.5, "left": 12.0}


def test_a_clientapp_logs_its_clock_where_deploy_says(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from flwr.app import ConfigRecord, RecordDict

    from fedbandwidth import client_app
    from fedbandwidth.names import CLIENTAPP_LOG_ENV

    started = client_app.process_started_at()
    assert time.time() - 3600 < started <= client_app.LOADED_AT  # this test process started before it loaded
    msg = SimpleNamespace(content=RecordDict({"config": ConfigRecord({"server-round": 3})}))  # what it reads of one
    context = SimpleNamespace(node_config={"partition-id": 4})  # ... and of its Context
    client_app.log_turn(msg, context, entered=time.time())  # no folder named: nothing written
    assert not os.listdir(tmp_path)
    monkeypatch.setenv(CLIENTAPP_LOG_ENV, str(tmp_path))
    client_app.log_turn(msg, context, entered=time.time())
    (row,) = clientapp_rows(tmp_path, origin=0.0)
    assert row["round"] == 3 and row["node"] == 4 and row["started"] <= row["loaded"] <= row["entered"] <= row["left"]


def test_the_serverapp_pulls_replies_one_at_a_time_in_the_order_their_uploads_began():
    from fedbandwidth.wire.turnaround import SERVER_POLL, served_seconds

    starts, ends = np.array([[0.0, 2.0, np.inf]]), np.array([[0.6, 2.1, np.inf]])  # quick uploads; one not sampled
    served = served_seconds(starts, ends)
    assert 0.25 + 1.0 < served[0, 0] < 0.25 + 1.2 and np.isinf(served[0, 2])  # seen at 0.25: the next try, 1 s on
    assert served[0, 1] == pytest.approx(2.0 + SERVER_POLL / 2)  # seen after its upload ended: pulled at once
    slow_first = served_seconds(np.array([[0.0, 1.0]]), np.array([[30.0, 1.1]]), np.random.default_rng(0))
    assert 30.0 <= slow_first[0, 0] <= 37.0  # the try after 30 s: 25 s +- 20% is too early, 35 s +- 20% not
    assert slow_first[0, 1] == slow_first[0, 0]  # the quick reply behind it waits (its objects are there by then)
