"""Bytes to time, checked on cases computed by hand."""

import matplotlib

matplotlib.use("Agg")

import pytest

from fedbandwidth.ledger import transfer_frame
from fedbandwidth.wire.links import (
    MBIT,
    PROFILES,
    LinkProfile,
    assign_links,
    node_times,
    planned_ledger,
    round_times,
    scale_payload,
    total_seconds,
    transfer_seconds,
)
from fedbandwidth.wire.plots import plot_round_times

SLOW = LinkProfile.from_mbit("slow", down_mbit=8, up_mbit=2, latency_ms=100)
FAST = LinkProfile.from_mbit("fast", down_mbit=80, up_mbit=80, latency_ms=0)


def frame(rows):
    return transfer_frame(rows)


def test_units_are_bits_per_second():
    assert MBIT == 1_000_000
    assert SLOW.down_bits_per_second == 8_000_000 and SLOW.up_bits_per_second == 2_000_000
    assert SLOW.latency_seconds == pytest.approx(0.1)
    assert transfer_seconds(1_000_000, 8 * MBIT) == pytest.approx(1.0)  # 1 MB = 8 Mbit: 1 s at 8 Mbit/s
    assert transfer_seconds(1_000_000, 8 * MBIT, 0.1) == pytest.approx(1.1)
    assert PROFILES["4G"].describe() == "4G: 30 Mbit/s down, 10 Mbit/s up, 50 ms"
    with pytest.raises(ValueError):
        LinkProfile.from_mbit("broken", 0, 1, 10)


def test_round_waits_for_the_straggler():
    ledger = frame(
        [
            (1, "train", 7, "down", 1_000_000, 0),
            (1, "train", 7, "up", 1_000_000, 0),
            (1, "train", 9, "down", 1_000_000, 0),
            (1, "train", 9, "up", 1_000_000, 0),
        ]
    )
    links = {7: SLOW, 9: FAST}
    times = node_times(ledger, links)
    slow = times[times.node_id == 7].iloc[0]
    assert slow.down_seconds == pytest.approx(1.1)  # 0.1 s + 8e6 bit / 8e6 bit/s
    assert slow.up_seconds == pytest.approx(4.1)  # 0.1 s + 8e6 bit / 2e6 bit/s
    assert slow.seconds == pytest.approx(5.2)
    fast = times[times.node_id == 9].iloc[0]
    assert fast.seconds == pytest.approx(0.2)  # 2 x 8e6 bit / 80e6 bit/s
    rounds = round_times(times)
    assert rounds.loc[0, "straggler"] == 7 and rounds.loc[0, "straggler_link"] == "slow"
    assert rounds.loc[0, "round_seconds"] == pytest.approx(5.2)
    assert rounds.loc[0, "fastest_seconds"] == pytest.approx(0.2)


def test_total_is_the_sum_of_round_maxima_and_codecs_and_sampling_change_it():
    plan = planned_ledger(message_bytes=2_000_000, supernodes=4, rounds=3)
    assert len(plan) == 4 * 2 * 3
    links = assign_links(plan.node_id, [SLOW, FAST])  # nodes 0, 2 slow; 1, 3 fast
    assert [links[n].name for n in range(4)] == ["slow", "fast", "slow", "fast"]
    per_round = 0.1 + 16e6 / 8e6 + 0.1 + 16e6 / 2e6  # slow node: 2.1 s down + 8.1 s up
    assert total_seconds(plan, links) == pytest.approx(3 * per_round)
    half_up = scale_payload(plan, 0.5, direction="up")  # e.g. float16 updates
    assert half_up[half_up.direction == "up"].payload_bytes.eq(1_000_000).all()
    assert half_up[half_up.direction == "down"].payload_bytes.eq(2_000_000).all()
    assert total_seconds(half_up, links) == pytest.approx(3 * (2.1 + 0.1 + 8e6 / 2e6))
    sampled = planned_ledger(2_000_000, supernodes=4, rounds=3, fraction=0.5)  # max(int(2.0), 2) = 2
    assert sampled.node_id.nunique() == 2 and len(sampled) == 2 * 2 * 3
    only_fast = planned_ledger(2_000_000, supernodes=1, rounds=1)
    assert total_seconds(only_fast, {0: FAST}) == pytest.approx(2 * 16e6 / 80e6)


def test_plot_returns_axes_with_one_bar_pair_per_node():
    plan = planned_ledger(1_000_000, supernodes=2, rounds=1)
    times = node_times(plan, assign_links(plan.node_id, ["3G", "datacenter"]))
    ax = plot_round_times(times)
    assert len(ax.patches) == 4  # 2 nodes x (down + up)
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(times.seconds.max())
    assert ax.get_ylabel() == "seconds"


def test_links_parse_profiles_and_custom_rates():
    from fedbandwidth.checks import ConfigError
    from fedbandwidth.wire.links import parse_links

    home, custom, three_g = parse_links("home broadband,100/20/15,3g")
    assert home == PROFILES["home broadband"] and three_g == PROFILES["3G"]
    assert (custom.down_bits_per_second, custom.up_bits_per_second, custom.latency_seconds) == (100e6, 20e6, 0.015)
    for bad in ("fast", "0/1/2", "1/2", "a/b/c"):
        with pytest.raises(ConfigError, match="--links"):
            parse_links(f"4G,{bad}")
