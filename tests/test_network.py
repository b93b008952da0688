"""The emulated network: hosts made and removed, the kernel shaping the rate and the relay the latency, the
kernel's counters reconciled with the relay's (skipped, with the reason, where namespaces are unavailable)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.wire import network
from fedbandwidth.wire.links import LinkProfile
from fedbandwidth.wire.network import HEADER_BYTES, EmulatedNetwork, leftovers, tbf_args
from fedbandwidth.wire.relay import Relay


def test_tbf_args_bucket_and_queue_follow_the_rate():
    # 20 Mbit/s = 2.5 MB/s: a 4 ms bucket is 10 kB (below the 32 KiB floor), a 500 ms queue 1.25 MB
    assert tbf_args(20e6) == ["tbf", "rate", "20000000bit", "burst", "32768", "limit", "1250000"]
    # 10 Gbit/s: 5 MB bucket, queue capped at 64 MiB; 0.5 Mbit/s: bucket and queue floors
    assert tbf_args(10e9)[4:] == ["5000000", "limit", str(64 * 2**20)]
    assert tbf_args(0.5e6)[4:] == ["32768", "limit", "262144"]


@pytest.fixture(scope="module")
def emulation():
    """Skip (saying why) unless this process may create namespaces, veth pairs and tbf qdiscs."""
    try:
        network.check_emulation()
    except ConfigError as err:
        pytest.skip(f"emulated network unavailable: {err}")


SLOW = LinkProfile.from_mbit("test", down_mbit=8, up_mbit=4, latency_ms=50)
NODE_SIDE = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with socket.create_connection((host, port)) as s:
    started = time.time(); s.sendall(b"p"); s.recv(1); turn = time.time() - started   # one round trip
    got = 0
    while got < size:
        got += len(s.recv(1 << 20))
    s.sendall(b"u" * size)
    s.shutdown(socket.SHUT_WR); s.recv(1)
print(turn)
"""


def echo_server(size: int):
    """A one-connection server on 127.0.0.1: answers one byte, sends `size` bytes, reads `size` bytes."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(1)
            conn.sendall(b"x")
            conn.sendall(b"d" * size)
            got = 0
            while got < size:
                got += len(conn.recv(1 << 20))
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_hosts_are_shaped_both_ways_and_removed(emulation):
    with EmulatedNetwork.create([SLOW, LinkProfile.from_mbit("other", 100, 50, 0)]) as net:
        a, b = net.hosts
        assert (a.link, b.link) == (SLOW, net.hosts[1].link) and a.host_address != b.host_address
        down = subprocess.run(["tc", "qdisc", "show", "dev", a.host_device], capture_output=True, text=True).stdout
        up = subprocess.run(a.command(["tc", "qdisc", "show", "dev", a.node_device]), capture_output=True, text=True)
        assert "tbf" in down and "rate 8Mbit" in down and "tbf" in up.stdout and "rate 4Mbit" in up.stdout
        assert set(leftovers(net.prefix)["namespaces"]) == {a.namespace, b.namespace}
    assert leftovers(net.prefix) == {"namespaces": [], "links": [], "qdiscs": []}


def test_a_failure_while_creating_leaves_nothing(emulation, monkeypatch):
    real = network.run_ip

    def fail_on_second_host(*args, **kwargs):
        if args[:3] == ("ip", "netns", "add") and args[3].endswith("-1"):
            raise RuntimeError("made to fail")
        return real(*args, **kwargs)

    monkeypatch.setattr(network, "run_ip", fail_on_second_host)
    with pytest.raises(RuntimeError, match="made to fail"):
        EmulatedNetwork.create([SLOW, SLOW], run_id="fail1")
    monkeypatch.undo()
    assert leftovers("fbwfail1") == {"namespaces": [], "links": [], "qdiscs": []}


def test_rate_in_the_kernel_latency_in_the_relay_counters_reconciled(emulation):
    size = 1_000_000
    with EmulatedNetwork.create([SLOW]) as net:
        (host,) = net.hosts
        with Relay(echo_server(size), listen_host=host.host_address, latency_seconds=SLOW.latency_seconds) as relay:
            before = host.counters()
            started = time.monotonic()
            done = subprocess.run(
                host.command([sys.executable, "-c", NODE_SIDE, host.host_address, str(relay.port), str(size)]),
                capture_output=True,
                text=True,
                timeout=60,
            )
            elapsed = time.monotonic() - started
            counted = host.counters()
        turn = float(done.stdout)
    assert relay.totals() == {"down": 1 + size, "up": 1 + size}
    assert turn >= 2 * SLOW.latency_seconds  # the relay held the byte each way
    # the kernel shaped both ways: 1 MB at 8 Mbit/s down and at 4 Mbit/s up, plus headers
    assert elapsed >= size * 8 / 8e6 + size * 8 / 4e6
    for d in ("down", "up"):
        frames = counted[f"{d}_packets"] - before[f"{d}_packets"]
        kernel = counted[f"{d}_bytes"] - before[f"{d}_bytes"]
        assert abs(kernel - HEADER_BYTES * frames - (1 + size)) <= 0.005 * size
    down = [s for s in relay.snapshot() if s.direction == "down"]
    assert all(s.arrived is not None and s.arrived >= s.sent + SLOW.latency_seconds for s in down)
