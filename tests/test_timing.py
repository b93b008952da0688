"""Finding model messages in a relay's samples, and reconciling the kernel's counts, on cases built by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fedbandwidth.wire.relay import Sample
from fedbandwidth.wire.timing import kernel_rows, round_of, transfers


def sample(direction: str, sent: float, first: float, last: float, nbytes: int) -> Sample:
    """A forwarded chunk: sent at `sent`, its first and last byte at the receiver at `first`, `last`."""
    return Sample(sent, direction, nbytes, arrived=last, first_arrived=first)


def test_a_chunk_that_takes_long_on_the_link_does_not_end_a_burst():
    # three 250 kB chunks read at once, each taking 1 s on a 2 Mbit/s link: back to back, one message
    down = [sample("down", 10.0, 10.1 + k, 11.1 + k, 250_000) for k in range(3)]
    (message,) = transfers(down, "down", min_bytes=500_000, gap=1.0)
    assert (message.start, message.end, message.nbytes) == (10.0, 13.1, 750_000)
    assert message.seconds == pytest.approx(3.1)


def test_a_pause_ends_a_burst_and_small_bursts_are_not_messages():
    down = [
        sample("down", 0.0, 0.0, 0.5, 600_000),  # message 1
        sample("down", 0.4, 0.5, 1.0, 600_000),
        sample("down", 3.0, 3.0, 3.1, 800),  # a poll's answer, alone
        sample("down", 6.0, 6.2, 7.0, 700_000),  # message 2, after a 5 s pause
    ]
    first, second = transfers(down, "down", min_bytes=500_000, gap=1.0)
    assert (first.start, first.end, first.nbytes) == (0.0, 1.0, 1_200_000)
    assert (second.start, second.end, second.nbytes) == (6.0, 7.0, 700_000)


def test_a_burst_the_other_way_cuts_a_burst():
    # the model goes down until 2.0; the update starts up at 2.5; acknowledgements keep trickling down
    samples = [sample("down", 0.0, 0.1, 2.0, 1_000_000)]
    samples += [sample("down", 2.2 + 0.5 * k, 2.3 + 0.5 * k, 2.3 + 0.5 * k, 100) for k in range(6)]
    samples += [sample("up", 2.5 + k * 0.5, 2.6 + k * 0.5, 2.6 + k * 0.5, 200_000) for k in range(5)]
    (down,) = transfers(samples, "down", min_bytes=1000)  # the acknowledgements after the cut: 500 B
    (up,) = transfers(samples, "up", min_bytes=500_000)
    assert (down.end, down.nbytes) == (2.3, 1_000_100)  # the acknowledgement at 2.3 came before the cut
    assert (up.start, up.end, up.nbytes) == (2.5, 4.6, 1_000_000)


def test_a_quick_turnaround_does_not_merge_a_download_with_the_upload_after_it():
    # as a relay saw it (2 nodes behind 8/8/10): each object pulled is a small request up; the node turns round in
    # 0.5 s (less than a gap) with polls and heartbeats; the push starts with the message (4.3 kB) and the SuperLink's
    # list of objects it lacks (4.1 kB), then each object pushed is answered by a small reply down
    samples = [sample("down", 0.0, 0.01, 0.02, 4374)]  # the pulled message and its tree
    for k in range(30):  # 30 objects of 60 kB: a request up, the object down
        at = 0.05 + 0.1 * k
        samples += [sample("up", at, at + 0.01, at + 0.01, 929), sample("down", at + 0.02, at + 0.03, at + 0.1, 60_000)]
    samples += [sample("down", 3.05, 3.06, 3.06, 300), sample("up", 3.1, 3.11, 3.11, 942)]  # the last, small object
    samples += [sample("up", 3.6, 3.61, 3.61, 843), sample("up", 3.6, 3.61, 3.62, 4333)]  # the push starts at 3.6
    samples.append(sample("down", 3.63, 3.64, 3.64, 4072))
    for k in range(30):
        at = 3.7 + 0.1 * k
        samples += [sample("up", at, at + 0.01, at + 0.09, 60_000), sample("down", at + 0.095, at + 0.1, at + 0.1, 130)]
    (down,) = transfers(samples, "down", min_bytes=500_000)
    (up,) = transfers(samples, "up", min_bytes=500_000)
    assert (down.start, down.end, down.nbytes) == (0.0, 3.06, 4374 + 30 * 60_000 + 300)
    assert (up.start, up.nbytes) == (3.6, 843 + 4333 + 30 * 60_000)
    assert up.end == pytest.approx(6.69)


def test_samples_that_never_arrived_are_left_out():
    down = [sample("down", 0.0, 0.1, 1.0, 600_000), Sample(0.5, "down", 600_000)]  # the node died
    (message,) = transfers(down, "down", min_bytes=500_000)
    assert message.nbytes == 600_000


def test_round_of_a_time():
    windows = {1: (10.0, 20.0), 2: (20.0, 35.0)}
    assert [round_of(t, windows) for t in (5.0, 10.0, 19.9, 20.0, 40.0)] == [None, 1, 1, 2, None]


def test_kernel_rows_take_66_bytes_of_headers_off_each_frame():
    relay = SimpleNamespace(totals=lambda: {"down": 1_000_000, "up": 2_000})
    counters = {
        "down_bytes": 1_000_000 + 66 * 700 + 8,
        "down_packets": 700,
        "up_bytes": 2_000 + 66 * 400,
        "up_packets": 400,
    }
    run = SimpleNamespace(relays=[relay, relay], counters=[counters, {}])  # the second node is on loopback
    down, up = kernel_rows(run)
    assert (down["node"], down["direction"], down["header_bytes"], down["unexplained"]) == (0, "down", 46_200, 8e-06)
    assert down["kernel_per_relay"] == round((1_000_000 + 46_208) / 1_000_000, 6)
    assert (up["direction"], up["unexplained"]) == ("up", 0.0)


def test_timeline_draws_a_bar_per_measured_message_and_a_line_per_prediction():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from fedbandwidth.wire.plots import plot_timeline

    rows = [
        {
            "node": 0,
            "link": "4G",
            "direction": "down",
            "start_seconds": 1.0,
            "measured_seconds": 2.0,
            "predicted_seconds": 1.9,
        },
        {
            "node": 0,
            "link": "4G",
            "direction": "up",
            "start_seconds": 5.0,
            "measured_seconds": 3.0,
            "predicted_seconds": 2.8,
        },
        {
            "node": 1,
            "link": "5G",
            "direction": "down",
            "start_seconds": 1.2,
            "measured_seconds": 0.5,
            "predicted_seconds": None,
        },  # loopback: nothing predicted
        {
            "node": 1,
            "link": "5G",
            "direction": "up",
            "start_seconds": None,
            "measured_seconds": None,
            "predicted_seconds": 0.4,
        },  # lost: nothing measured
    ]
    ax = plot_timeline(pd.DataFrame(rows))
    bars = [p for p in ax.patches if p.get_width() > 0]
    assert sorted((b.get_x(), b.get_width()) for b in bars) == [(1.0, 2.0), (1.2, 0.5), (5.0, 3.0)]
    predicted = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_xdata()[0] != line.get_xdata()[1]]
    assert sorted(tuple(line.get_xdata()) for line in predicted) == [(1.0, 2.9), (5.0, 7.8)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["node 0\n4G", "node 1\n5G"]


def test_timeline_of_a_loopback_run_draws_bars_and_no_prediction():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from fedbandwidth.wire.plots import plot_timeline

    rows = [{"node": 0, "link": None, "direction": "down", "start_seconds": 0.5, "measured_seconds": 1.0}]
    ax = plot_timeline(pd.DataFrame([{**rows[0], "predicted_seconds": None}]))  # every prediction None
    assert [(b.get_x(), b.get_width()) for b in ax.patches if b.get_width() > 0] == [(0.5, 1.0)]
    assert [line for line in ax.lines if len(line.get_xdata())] == []


def test_requests_piled_up_in_one_read_do_not_split_a_download_nor_merge_the_upload_before_it():
    # seen on 3G (0.5 Mbit/s up): an upload, the next round's download 0.6 s later, its object requests going up
    # (900 B each); once, three requests reach the relay in one read (2,700 B: "bulk") mid-download
    samples = [sample("up", 0.1 * k, 0.1 * k + 0.05, 0.1 * k + 0.1, 100_000) for k in range(6)]  # 600 kB up
    for k in range(6):  # 600 kB down: a request up, 100 kB down, every 0.2 s from 1.2 s
        at = 1.2 + 0.2 * k
        samples += [sample("up", at, at + 0.01, at + 0.01, 900)]
        samples += [sample("down", at + 0.02, at + 0.03, at + 0.15, 100_000)]
        if k == 2:
            samples.append(sample("up", at + 0.16, at + 0.17, at + 0.17, 2700))
    (up,) = transfers(samples, "up", min_bytes=500_000)
    (down,) = transfers(samples, "down", min_bytes=500_000)
    # the upload ends where the download starts, not 1.2 s later; the download's first request, up before its
    # first object came down and within a gap of the upload, stays with it (0.6 s here, under 1 s on 3G)
    assert (up.start, up.end, up.nbytes) == (0.0, 1.21, 600_900)
    assert (down.start, down.nbytes) == (1.22, 600_000) and down.end == pytest.approx(2.35)


def test_a_relays_samples_written_are_read_back(tmp_path):
    from fedbandwidth.wire.timing import read_samples, write_samples

    samples = [sample("up", 1.5, 1.6, 1.7, 900), Sample(2.0, "down", 600_000)]  # the second never arrived
    assert read_samples(write_samples(samples, tmp_path / "s.csv")) == samples


def test_an_upload_of_single_segments_on_a_slow_uplink_is_still_a_message():
    # as the relay saw 3G (0.5 Mbit/s up): the push (4,334 B) and the SuperLink's object list (4,072 B down), then
    # the upload mostly in single 1,448 B segments (under BULK_BYTES), a 2-segment read now and then; the next
    # round's download follows within a gap of the upload's last byte (the node's poll at 10.5 s)
    samples = [sample("up", 0.0, 0.01, 0.01, 4334), sample("down", 0.1, 0.11, 0.11, 4072)]
    for k in range(400):
        at, size = 0.2 + 0.025 * k, 2896 if k % 40 == 0 else 1448
        samples.append(sample("up", at, at + 0.02, at + 0.025, size))
    samples += [sample("up", 10.5, 10.51, 10.51, 900), sample("down", 10.6, 10.61, 10.62, 4374)]
    for k in range(6):
        at = 10.7 + 0.2 * k
        samples += [sample("up", at, at + 0.01, at + 0.01, 900)]
        samples += [sample("down", at + 0.02, at + 0.03, at + 0.15, 100_000)]
    up_bytes = 4334 + 390 * 1448 + 10 * 2896
    (up,) = transfers(samples, "up", min_bytes=280_000)
    (down,) = transfers(samples, "down", min_bytes=280_000)
    assert (up.start, up.nbytes) == (0.0, up_bytes + 900) and up.end == pytest.approx(10.51)  # the poll: within a gap
    assert (down.start, down.nbytes) == (10.6, 4374 + 600_000) and down.end == pytest.approx(11.85)
