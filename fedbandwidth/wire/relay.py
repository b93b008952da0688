"""A byte-counting TCP relay: put it between a SuperNode and the SuperLink to see the wire bytes.

The relay listens on 127.0.0.1 (a free port from the OS), opens one upstream connection to the
target for each connection it accepts, and copies bytes both ways. It counts what it forwarded:
``down`` (target -> client, SuperLink -> SuperNode) and ``up`` (client -> target), and keeps a
timestamped sample per chunk, so the bytes can later be split into time windows (rounds).
It sees TLS records as opaque bytes, so it counts TLS runs the same way.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from ..names import DOWN, UP  # down: target -> client (SuperLink -> SuperNode); up: client -> target

CHUNK = 256 * 1024  # bytes read per recv()
ACCEPT_POLL = 0.2  # seconds between checks for close() while waiting for a connection


@dataclass(frozen=True)
class Sample:
    """Bytes forwarded in one direction at one moment."""

    unix_time: float  # when the chunk was forwarded (time.time())
    direction: str  # "down" or "up"
    nbytes: int  # bytes in the chunk


class Relay:
    """Forwards TCP connections from 127.0.0.1:<port> to `target`, counting bytes each way."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", name: str = "") -> None:
        self.target = (target_host, target_port)
        self.name = name  # e.g. "supernode-0"
        self.samples: list[Sample] = []
        self.connections = 0  # connections accepted so far
        self._totals = {DOWN: 0, UP: 0}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"relay-{name}", daemon=True)

    def start(self) -> Relay:
        """Start accepting connections in a background thread; return self."""
        self._thread.start()
        return self

    def totals(self) -> dict[str, int]:
        """Bytes forwarded so far: {"down": int, "up": int}."""
        with self._lock:
            return dict(self._totals)

    def bytes_between(self, start: float, end: float) -> dict[str, int]:
        """Bytes forwarded with start <= time < end, per direction."""
        with self._lock:
            samples = list(self.samples)
        counts = {DOWN: 0, UP: 0}
        for s in samples:
            if start <= s.unix_time < end:
                counts[s.direction] += s.nbytes
        return counts

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._closed.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        if self._thread.is_alive():
            self._thread.join(timeout=2 * ACCEPT_POLL + 1)

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept_loop(self) -> None:
        """Accept clients until closed; pair each with a fresh upstream connection."""
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _close(client)  # target down: the client sees a closed connection, as without relay
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self.connections += 1
                self._sockets.update((client, upstream))
            threading.Thread(target=self._serve, args=(client, upstream), daemon=True).start()

    def _serve(self, client: socket.socket, upstream: socket.socket) -> None:
        """Pump both directions of one connection; close both sockets when both are done."""
        up = threading.Thread(target=self._pump, args=(client, upstream, UP), daemon=True)
        up.start()
        self._pump(upstream, client, DOWN)
        up.join()
        with self._lock:
            self._sockets.difference_update((client, upstream))
        _close(client)
        _close(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        """Copy src -> dst until EOF or error, counting each forwarded chunk."""
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
                self._count(direction, len(data))
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            _close(src)
            _close(dst)

    def _count(self, direction: str, nbytes: int) -> None:
        """Add a forwarded chunk to the totals and the samples."""
        with self._lock:
            self._totals[direction] += nbytes
            self.samples.append(Sample(time.time(), direction, nbytes))


def _close(sock: socket.socket) -> None:
    """Shut a socket down both ways and close it, ignoring errors (it may be closed already)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
