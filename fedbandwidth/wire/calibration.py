"""This machine's costs of moving a model through Flower, measured (`fedbandwidth calibrate`), not hard-coded.

transfer.py's model needs two CPU terms: the processing of one object request (SuperNode + SuperLink), and
the SuperLink's share of a request per other node moving a model at the same time, each per direction; a
round (plan.py) also waits for a node to pick its message up and for its ClientApp to turn the model around.
`calibrate` measures them on loopback: a deployment of one SuperNode (each model message's time at its relay,
from the second round, solved per direction for the request time with transfer.py's own schedule) and one of
two at once (solved for the share, per direction), the loopback's own rate measured through a relay first, and
a ClientApp's imports at rest (turnaround.py).
The result is a small JSON file (default: the user's cache, ``~/.cache/fedbandwidth/calibration.json``;
``FEDBANDWIDTH_CALIBRATION`` or ``--calibration`` name another, e.g. one made on the machine that runs the
SuperLink). Without one, the built-in constants (fitted here on 2026-11-28) are used, and every report says which.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..checks import ConfigError
from ..names import DOWN

ENV = "FEDBANDWIDTH_CALIBRATION"  # a calibration file to use instead of the default path
BUILT_IN = "built-in constants (fitted on one machine, 2026-11-28)"
RERUN = "rerun `fedbandwidth calibrate`"
TERMS = ("request_seconds", "superlink_down_seconds", "superlink_up_seconds")  # every calibration file has them
ROUND_TERMS = ("pickup_seconds", "turnaround_seconds")  # files made before they were measured may lack them
CLIENTAPP_TERMS = ("clientapp_start_seconds", "clientapp_work_seconds")  # ... and these (None: turnaround_seconds)
# (and request_up_seconds: files made before it was fitted per direction use request_seconds both ways)
REPLY_POLL = 0.5  # the SuperNode looks for a ClientApp's reply this often (flwr's start_client_internal, hard-coded)


@dataclass(frozen=True)
class Calibration:
    """The CPU terms of transfer.py's model on one machine, and where they came from."""

    request_seconds: float = 0.012  # processing of one object request (SuperNode + SuperLink), a download's
    superlink_down_seconds: float = 0.008  # the SuperLink's share of a download request, per other node at once
    superlink_up_seconds: float = 0.012  # ... of an upload request (it hashes and stores each pushed object)
    loopback_bits_per_second: float = 0.0  # what loopback carried through a relay while calibrating (0: unknown)
    pickup_seconds: float = 0.3  # from a round's models pushed to a node's download starting (its poll)
    turnaround_seconds: float = 1.0  # from a node's download done to its upload starting, no compute (the
    # ClientApp process Flower starts per message); these two built-in ones: seen here on 2026-12-03, busy
    request_up_seconds: float | None = None  # ... of an upload's object request (None: request_seconds)
    clientapp_start_seconds: float | None = None  # a ClientApp process started -> its first pull (its imports, at rest)
    clientapp_work_seconds: float | None = None  # its app loaded -> its reply's upload starting, no compute
    source: str = BUILT_IN  # the file it was read from, or BUILT_IN
    made: dict = field(default_factory=dict)  # when, where, with what and how long calibrating took

    def request(self, direction: str) -> float:
        """The processing of one object request in `direction`."""
        up = direction != DOWN and self.request_up_seconds is not None
        return self.request_up_seconds if up else self.request_seconds

    def turnaround(self, down_seconds, rng=None, message_bytes: float | None = None):
        """Seconds from each download's end to its reply's upload start, no compute: Flower's ClientApp retries
        played for downloads of `down_seconds` (turnaround.py; a draw with `rng`, else the mean), then its work
        on messages of `message_bytes` (None: the calibration's own); or turnaround_seconds for a calibration
        that did not measure the ClientApp."""
        import numpy as np

        from .turnaround import loaded_seconds

        down = np.asarray(down_seconds, dtype=float)
        if self.clientapp_start_seconds is None or self.clientapp_work_seconds is None:
            return np.full(down.shape, self.turnaround_seconds)
        return loaded_seconds(down, self.clientapp_start_seconds, rng) - down + self.work(message_bytes)

    def work(self, message_bytes: float | None = None) -> float:
        """A ClientApp's work, its app loaded -> its reply's upload starting, for messages of `message_bytes`
        (mean of down and up): the SuperNode's reply poll (half of it, on average) and the rest (decode, encode,
        push) in proportion to the bytes of the model it was measured on; as measured if either is unknown."""
        work, model = self.clientapp_work_seconds or 0.0, self.made.get("model")
        if message_bytes is None or model is None:
            return work
        from .transfer import message_bytes as measured_on

        poll = min(REPLY_POLL / 2, work)
        return poll + (work - poll) * float(message_bytes) / measured_on(model)

    def superlink_seconds(self, direction: str) -> float:
        """The SuperLink's share of a request in `direction`, per other node at once."""
        return self.superlink_down_seconds if direction == DOWN else self.superlink_up_seconds


def default_path() -> Path:
    """Where `calibrate` writes and the predictors look: $FEDBANDWIDTH_CALIBRATION, else the user's cache."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fedbandwidth" / "calibration.json"


def load(path: Path | None = None) -> Calibration:
    """The calibration at `path` (or the default path); the built-in constants if there is none there.
    A file that exists but is not a calibration is a ConfigError naming it (an explicit path must exist)."""
    where = Path(path) if path is not None else default_path()
    if not where.exists():
        if path is not None:
            raise ConfigError(f"calibration: no such file {where}")
        return Calibration()
    try:
        data = json.loads(where.read_text())
        terms = {k: float(data[k]) for k in TERMS}
        terms |= {k: float(data.get(k, getattr(Calibration, k))) for k in ROUND_TERMS}
        terms["request_up_seconds"] = float(data.get("request_up_seconds") or terms["request_seconds"])
        terms |= {k: float(data[k]) for k in CLIENTAPP_TERMS if data.get(k) is not None}
        loopback = float(data.get("loopback_bits_per_second", 0.0))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"calibration: {where} is not a calibration file ({err}); {RERUN}") from None
    if min(terms.values()) < 0:
        raise ConfigError(f"calibration: {where} holds a negative time; {RERUN}")
    return Calibration(**terms, loopback_bits_per_second=loopback, source=str(where), made=data.get("made", {}))


def save(calibration: Calibration, path: Path) -> Path:
    """Write `calibration` as JSON to `path` (folders made); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(calibration).items() if k != "source"}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def machine() -> dict:
    """What the calibration was made on: host, CPU, cores, Python, Flower, and when."""
    import flwr

    return {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "flwr": flwr.__version__,
        "unix_time": round(time.time()),
    }


def solve(seconds_of, measured: float, high: float = 1.0) -> float:
    """The x in [0, high] with seconds_of(x) = measured (seconds_of increasing); 0 or high at the ends."""
    low = 0.0
    if seconds_of(low) >= measured:
        return 0.0
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if seconds_of(mid) < measured else (low, mid)
    return (low + high) / 2


def loopback_rate(nbytes: int = 64 * 2**20) -> float:
    """Bits per second loopback carries through a Relay (one connection, `nbytes` one way)."""
    from .relay import Relay

    listener = socket.create_server(("127.0.0.1", 0))
    sink = threading.Thread(target=_drain, args=(listener,), daemon=True)
    sink.start()
    block = b"\0" * 2**20
    with Relay(listener.getsockname()[1], name="calibrate") as relay:
        with socket.create_connection(("127.0.0.1", relay.port)) as conn:
            started = time.monotonic()
            for _ in range(nbytes // len(block)):
                conn.sendall(block)
            conn.shutdown(socket.SHUT_WR)
            sink.join(timeout=30)
            seconds = time.monotonic() - started
    return 8 * nbytes / seconds


def _drain(listener: socket.socket) -> None:
    """Accept one connection and read it to its end."""
    conn, _ = listener.accept()
    with conn:
        while conn.recv(2**20):
            pass
    listener.close()
