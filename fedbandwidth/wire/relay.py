"""A byte-counting TCP relay: put it between a SuperNode and the SuperLink to see the wire bytes, and when.

The relay listens on `listen_host` (127.0.0.1, or an emulated host's address; a free port from the OS),
opens one upstream connection to the target for each connection it accepts, and copies bytes both ways:
``down`` (target -> client, SuperLink -> SuperNode) and ``up`` (client -> target). It sees TLS records as
opaque bytes, so it counts TLS runs the same way. For every chunk it forwards it keeps a Sample:

- ``sent``: when the relay read it, i.e. when it left its sender (the SuperLink on loopback; the node's
  link, for up);
- ``arrived``: when its receiver had it: for down, when the node's TCP acknowledged its last byte
  (``tcpi_bytes_acked`` of the node-facing socket, polled every ACK_POLL seconds while bytes are in flight);
  for up, when the relay handed it to the SuperLink. ``first_arrived``: the same for its first byte (a
  256 KiB chunk takes a second to cross a 2 Mbit/s link; the link is idle only between chunks).

With ``latency_seconds`` > 0 the relay is also the emulated link's latency: it holds each chunk that long
before forwarding it, both ways (network.py shapes the rate in the kernel). With a ``shared`` SharedLink,
every relay's chunks also cross one link of a fixed rate in turn: the server's own uplink and downlink,
which all nodes share.
"""

from __future__ import annotations

import collections
import socket
import struct
import threading
import time
from dataclasses import dataclass

from ..names import DOWN, UP  # down: target -> client (SuperLink -> SuperNode); up: client -> target

CHUNK = 256 * 1024  # bytes read per recv()
ACCEPT_POLL = 0.2  # seconds between checks for close() while waiting for a connection
ACK_POLL = 0.002  # seconds between reads of the node's acknowledged bytes while some are in flight
MAX_HELD_BYTES = 8 * 2**20  # a pipe stops reading while it holds this much for the latency
TCP_INFO_BYTES, BYTES_ACKED_OFFSET = 232, 120  # struct tcp_info (Linux) and its u64 tcpi_bytes_acked


@dataclass(slots=True)
class Sample:
    """One chunk forwarded one way: when it left its sender, when it reached its receiver, how many bytes."""

    sent: float  # time.time() when the relay read it
    direction: str  # "down" or "up"
    nbytes: int  # bytes in the chunk
    arrived: float | None = None  # time.time() when the receiver had its last byte (None: never, e.g. node died)
    first_arrived: float | None = None  # time.time() when the receiver had its first byte


def bytes_acked(sock: socket.socket) -> int:
    """Bytes of this TCP socket's stream the peer has acknowledged (Linux TCP_INFO)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
    return struct.unpack_from("Q", info, BYTES_ACKED_OFFSET)[0]


class Acks:
    """Down samples written to the node's socket, waiting for the node's TCP to acknowledge them."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.written = sock, 0
        self.pending: collections.deque = collections.deque()  # (stream offsets of its first and last byte, Sample)
        self.lock = threading.Lock()  # the ack loop and the connection's last look both check

    def expect(self, sample: Sample) -> None:
        """Note a sample just written to the socket."""
        with self.lock:
            self.pending.append((self.written, self.written + sample.nbytes, sample))
            self.written += sample.nbytes

    def check(self, now: float) -> bool:
        """Stamp `now` on the samples whose first or last byte was acknowledged since; True while some are in flight."""
        with self.lock:
            try:
                acked = bytes_acked(self.sock)
            except OSError:
                self.pending.clear()  # the connection is gone: those bytes never arrived
                return False
            for first, _, sample in self.pending:
                if first >= acked:
                    break
                if sample.first_arrived is None:
                    sample.first_arrived = now
            while self.pending and self.pending[0][1] <= acked:
                self.pending.popleft()[2].arrived = now
            return bool(self.pending)


class Relay:
    """Forwards TCP connections from `listen_host`:<port> to `target`, counting and timing bytes each way."""

    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        name: str = "",
        listen_host: str = "127.0.0.1",
        latency_seconds: float = 0.0,
        shared: SharedLink | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.name = name  # e.g. "supernode-0"
        self.latency_seconds = latency_seconds  # held before forwarding, each way (the emulated latency)
        self.shared = shared  # the server's link, crossed by every relay's chunks in turn (None: no such link)
        self.samples: list[Sample] = []
        self.connections = 0  # connections accepted so far
        self._totals = {DOWN: 0, UP: 0}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._in_flight = threading.Event()  # set when down bytes await the node's acknowledgement
        self._sockets: set[socket.socket] = set()
        self._acks: list[Acks] = []
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(ACCEPT_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._threads = [
            threading.Thread(target=self._accept_loop, name=f"relay-{name}", daemon=True),
            threading.Thread(target=self._ack_loop, name=f"relay-acks-{name}", daemon=True),
        ]

    def start(self) -> Relay:
        """Start accepting connections (and watching acknowledgements) in background threads; return self."""
        for thread in self._threads:
            thread.start()
        return self

    def totals(self) -> dict[str, int]:
        """Bytes forwarded so far: {"down": int, "up": int}."""
        with self._lock:
            return dict(self._totals)

    def bytes_between(self, start: float, end: float) -> dict[str, int]:
        """Bytes sent with start <= time < end, per direction."""
        counts = {DOWN: 0, UP: 0}
        for s in self.snapshot():
            if start <= s.sent < end:
                counts[s.direction] += s.nbytes
        return counts

    def snapshot(self) -> list[Sample]:
        """The samples so far (a copy of the list; samples of down bytes in flight may get `arrived` later)."""
        with self._lock:
            return list(self.samples)

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._closed.set()
        self._in_flight.set()
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2 * ACCEPT_POLL + 1)

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
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # forward at once, as it came
            acks = Acks(client)
            with self._lock:
                self.connections += 1
                self._sockets.update((client, upstream))
                self._acks.append(acks)
            threading.Thread(target=self._serve, args=(client, upstream, acks), daemon=True).start()

    def _serve(self, client: socket.socket, upstream: socket.socket, acks: Acks) -> None:
        """Pump both directions of one connection; close both sockets when both are done."""
        up = threading.Thread(target=self._pump, args=(client, upstream, UP, None), daemon=True)
        up.start()
        self._pump(upstream, client, DOWN, acks)
        up.join()
        with self._lock:
            self._sockets.difference_update((client, upstream))
        acks.check(time.time())  # a last look: what the node acknowledged before the socket closes arrived
        _close(client)
        _close(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str, acks: Acks | None) -> None:
        """Copy src -> dst until EOF or error (holding each chunk `latency_seconds`), counting each chunk."""
        held = Held(self.latency_seconds)
        writer = threading.Thread(target=self._write, args=(held, dst, direction, acks), daemon=True)
        writer.start()
        try:
            while (data := src.recv(CHUNK)) and held.put(time.time(), data):
                pass
        except OSError:
            _close(dst)
        if held.put(time.time(), b""):  # end of stream: the writer passes the half-close on
            writer.join()
        else:
            _close(src)  # the receiver is gone: so is this connection

    def _write(self, held: Held, dst: socket.socket, direction: str, acks: Acks | None) -> None:
        """Forward held chunks when due; count and time each one."""
        try:
            while data_sent := held.take():
                sent, data = data_sent
                if self.shared is not None:
                    self.shared.cross(direction, len(data))
                dst.sendall(data)
                sample = self._count(direction, sent, len(data))
                if acks is None:
                    sample.arrived = sample.first_arrived = time.time()
                else:
                    acks.expect(sample)
                    self._in_flight.set()
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            held.close()
            _close(dst)

    def _count(self, direction: str, sent: float, nbytes: int) -> Sample:
        """Add a forwarded chunk to the totals and the samples."""
        sample = Sample(sent, direction, nbytes)
        with self._lock:
            self._totals[direction] += nbytes
            self.samples.append(sample)
        return sample

    def _ack_loop(self) -> None:
        """While down bytes are in flight, stamp their arrival every ACK_POLL seconds."""
        while not self._closed.is_set():
            self._in_flight.wait()
            with self._lock:
                watched = list(self._acks)
            now = time.time()
            if not any([acks.check(now) for acks in watched]):
                self._in_flight.clear()
                if any(acks.pending for acks in watched):  # written meanwhile: look again
                    self._in_flight.set()
            time.sleep(ACK_POLL)


class SharedLink:
    """One link all relays cross (the server's): per direction, chunks take it in turn at a fixed payload rate."""

    def __init__(self, down_bytes_per_second: float, up_bytes_per_second: float) -> None:
        self.rates = {DOWN: down_bytes_per_second, UP: up_bytes_per_second}  # payload bytes a second
        self.free_at = {DOWN: 0.0, UP: 0.0}  # monotonic time the link is next free, per direction
        self.lock = threading.Lock()

    def cross(self, direction: str, nbytes: int) -> None:
        """Wait until a chunk of `nbytes` has crossed: after the chunks before it, at the link's rate."""
        with self.lock:
            now = time.monotonic()
            done = max(now, self.free_at[direction]) + nbytes / self.rates[direction]
            self.free_at[direction] = done
        time.sleep(max(0.0, done - now))


class Held:
    """Chunks read from one side, each released `latency` seconds after it was read; bounded in bytes."""

    def __init__(self, latency: float) -> None:
        self.latency, self.bytes, self.closed = latency, 0, False
        self.queue: collections.deque = collections.deque()
        self.ready = threading.Condition()

    def put(self, sent: float, data: bytes) -> bool:
        """Hold a chunk (b"" marks the end of the stream), waiting while MAX_HELD_BYTES are held;
        False if the receiving side is gone (nothing is held any more)."""
        with self.ready:
            while self.bytes > MAX_HELD_BYTES and data and not self.closed:
                self.ready.wait()
            if self.closed:
                return False
            self.queue.append((sent, data))
            self.bytes += len(data)
            self.ready.notify_all()
            return True

    def take(self) -> tuple[float, bytes] | None:
        """The next chunk once its latency has passed, or None at the end of the stream."""
        with self.ready:
            while not self.queue:
                self.ready.wait()
            sent, data = self.queue.popleft()
            self.bytes -= len(data)
            self.ready.notify_all()
        if not data:
            return None
        time.sleep(max(0.0, sent + self.latency - time.time()))
        return sent, data

    def close(self) -> None:
        """Drop what is held and refuse more (the receiver is gone); a reader waiting for room goes on."""
        with self.ready:
            self.queue.clear()
            self.bytes, self.closed = 0, True
            self.ready.notify_all()


def _close(sock: socket.socket) -> None:
    """Shut a socket down both ways and close it, ignoring errors (it may be closed already)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
