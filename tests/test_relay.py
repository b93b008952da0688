"""The relay's byte counts against independent counts on known transfers (all on 127.0.0.1)."""

import os
import socket
import threading
import time

import pytest

from fedbandwidth.wire.relay import Relay

PAYLOAD = os.urandom(3 * 2**20 + 12_345)  # a few chunks and a ragged end


class Server:
    """A one-connection TCP server on a free port: echoes (or only counts) what it receives."""

    def __init__(self, echo: bool) -> None:
        self.echo, self.received = echo, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while data := conn.recv(65536):
                self.received += len(data)
                if self.echo:
                    conn.sendall(data)
        self.listener.close()


def wait_until(condition, seconds=10.0):
    """Poll `condition` until it is true or the deadline passes; return its last value."""
    deadline = time.monotonic() + seconds
    while not (ok := condition()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return ok


def receive_exactly(sock, size):
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(65536, size - got))
        assert chunk, "connection closed early"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_echo_counts_every_byte_both_ways():
    server = Server(echo=True)
    with Relay(server.port, name="echo") as relay:
        started = time.time()
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            sender = threading.Thread(target=client.sendall, args=(PAYLOAD,))
            sender.start()
            assert receive_exactly(client, len(PAYLOAD)) == PAYLOAD
            sender.join()
        assert wait_until(lambda: relay.totals() == {"down": len(PAYLOAD), "up": len(PAYLOAD)})
        server.thread.join(5)
        assert server.received == len(PAYLOAD)  # the independent count
        assert relay.connections == 1
        assert relay.bytes_between(started, time.time() + 1) == relay.totals()
        assert relay.bytes_between(0, started) == {"down": 0, "up": 0}


def test_one_way_transfer_counts_up_only():
    server = Server(echo=False)
    with Relay(server.port) as relay:
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            client.sendall(PAYLOAD[:1_000_003])
        server.thread.join(10)  # the relay passes our close on; the server sees EOF
        assert server.received == 1_000_003
        assert wait_until(lambda: relay.totals() == {"down": 0, "up": 1_000_003})


def test_unreachable_target_closes_the_client_and_counts_nothing():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]  # bound, never listening: connections are refused
        with Relay(dead_port) as relay:
            with socket.create_connection(("127.0.0.1", relay.port)) as client:
                client.settimeout(10)
                try:
                    assert client.recv(1) == b""
                except ConnectionResetError:
                    pass
            assert relay.totals() == {"down": 0, "up": 0} and relay.connections == 0


def test_close_stops_listening():
    relay = Relay(1).start()
    port = relay.port
    relay.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_latency_holds_each_chunk_both_ways_and_arrivals_are_stamped():
    server = Server(echo=True)
    with Relay(server.port, name="slow", latency_seconds=0.05) as relay:
        with socket.create_connection(("127.0.0.1", relay.port)) as client:
            started = time.monotonic()
            client.sendall(b"ping")
            assert receive_exactly(client, 4) == b"ping"
            turn = time.monotonic() - started
        # both ways recorded (the down chunk's sample comes once it was written) and every arrival stamped
        assert wait_until(lambda: {s.direction for s in relay.snapshot() if s.arrived is not None} == {"up", "down"})
        assert wait_until(lambda: all(s.arrived is not None for s in relay.snapshot()))
    assert turn >= 0.1  # held 50 ms up, 50 ms down
    up, down = [[s for s in relay.snapshot() if s.direction == d] for d in ("up", "down")]
    assert sum(s.nbytes for s in up) == sum(s.nbytes for s in down) == 4
    assert all(s.arrived >= s.sent + 0.05 for s in up + down)
