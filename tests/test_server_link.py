"""The server's own link (`deploy --server-link`): one bottleneck every node's traffic crosses, shaped in the
relays (so on loopback too), and the link model's fair share of it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from fedbandwidth.wire.links import LinkProfile
from fedbandwidth.wire.relay import SharedLink
from fedbandwidth.wire.transfer import message_seconds, wire_rate

FAST = LinkProfile("loopback", 1e12, 1e12, 0.0)


def test_chunks_take_the_shared_link_in_turn_at_its_rate():
    link, done = SharedLink(down_bytes_per_second=4e6, up_bytes_per_second=1e9), []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: done.append(link.cross("down", 400_000))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 0.2 - 1e-3  # 2 x 400 kB at 4 MB/s, one after the other
    assert link.free_at["up"] == 0.0  # the other direction untouched


def test_nodes_at_once_share_the_server_link_fairly_in_the_model():
    server = LinkProfile.from_mbit("server", 8, 4, 10)
    share = LinkProfile("share", server.down_bits_per_second / 2, server.up_bits_per_second / 2, 0.010)
    for d in ("down", "up"):
        shared = message_seconds("tiny-gptneox", FAST, d, nodes=2, server=server)
        alone = message_seconds("tiny-gptneox", share, d, nodes=2)  # a node link of half the rate, its latency
        assert shared == pytest.approx(alone, rel=1e-12)
    slow_node = LinkProfile.from_mbit("3G", 2, 0.5, 100)  # slower than its share: the node's own link rules
    assert message_seconds("tiny-gptneox", slow_node, "up", nodes=2, server=server) == pytest.approx(
        message_seconds("tiny-gptneox", LinkProfile.from_mbit("3G+", 2, 0.5, 110), "up", nodes=2), rel=1e-12
    )
    assert wire_rate(8e6) < 1e6  # payload bytes a second on 8 Mbit/s, headers paid


def test_two_nodes_on_loopback_behind_an_8_mbit_server_link_take_as_long_as_sharing_it_says():
    argv = ["--supernodes", "2", "--rounds", "2", "--model", "tiny-gptneox", "--server-link", "8/8/10"]
    done = subprocess.run([sys.executable, "-m", "fedbandwidth", "deploy", *argv, "--out", "build/test-server-link",
                           "--json"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["config"]["server_link"] == "8/8/10: 8 Mbit/s down, 8 Mbit/s up, 10 ms"
    timed = [t for t in report["timing"] if t["measured_seconds"] is not None]
    assert len(timed) == 8 and all(t["nodes_at_once"] == 2 for t in timed)
    # the server pushes both downloads at once: they share the link (one alone would take ~2 s of its 8 Mbit/s)
    down = [t for t in timed if t["direction"] == "down"]
    assert all(t["measured_seconds"] > 1.5 * 8 * t["bytes"] / 8e6 for t in down)
    ratios = sorted(t["measured_seconds"] / t["predicted_seconds"] for t in down)
    assert 0.6 < ratios[len(ratios) // 2] < 1.6, ratios  # the median download near the shared model (a busy CPU
    # makes any one slower: README has the figures); uploads start when each node is done, overlapping in part,
    # so never faster than one alone on the link
    alone = message_seconds("tiny-gptneox", FAST, "up", server=LinkProfile.from_mbit("s", 8, 8, 10))
    assert all(t["measured_seconds"] > 0.8 * alone for t in timed if t["direction"] == "up")
