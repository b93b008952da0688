"""Time measured next to time predicted, and the relay's bytes next to the kernel's.

**Measured**: a model message is the burst of bytes its relay forwarded one way, from the first byte leaving
its sender to the last byte reaching its receiver (relay.py stamps both), bursts being cut where nothing
arrived for longer than a gap (GAP_SECONDS, or 6 one-way latencies) and where a message starts, either way: at
its first bulk chunk (BULK_BYTES or more) after the last message the other way, since a node's downloads and
uploads take turns while requests, polls and acknowledgements are small; bursts under half a model message are
not messages. (Cutting only at the other way's first byte merged a download with the upload after it whenever the
node turned round in under a gap: its requests kept both ways busy. On 3G two more cases broke it: an upload's
chunks are mostly single 1,448 B segments, so counting only bulk chunks made it a third of a message, and a few
requests read at once can pass BULK_BYTES in the middle of a download; message_starts counts every byte of a run
and absorb_strays joins a download around such a stray. tests/test_timing.py has the cases.) Each ledger row is
matched to the largest burst of its node and direction that started in its round. With FEDBANDWIDTH_KEEP_SAMPLES
set, each relay's samples are kept in the run's folder (relay<i>_samples.csv) to be read again (read_samples).
**Predicted**: transfer.py's model of the same message on the node's link; next to it, links.py's formula
``latency + 8 * payload / rate``.

**Kernel counters**: each emulated host's veth counts frames and their bytes, headers included; 66 B of
Ethernet/IP/TCP headers a frame reconcile them with the relay's payload bytes (network.py).
"""

from __future__ import annotations

import bisect
import csv
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..names import DOWN, UP
from .links import LinkProfile, transfer_seconds
from .network import HEADER_BYTES
from .transfer import BUILT_IN, message_seconds

GAP_SECONDS = 1.0  # a pause at least this long (and 6 one-way latencies) ends a message's burst
BULK_BYTES = 2048  # a chunk this big carries a message's content: requests, polls and acks here are <= 1.2 kB
STRAY_BYTES = 16 * 1024  # ... but requests read at once on a slow uplink can pass it: a run under this may be a stray
KEEP_SAMPLES = "FEDBANDWIDTH_KEEP_SAMPLES"  # set: each relay's samples go to relay<i>_samples.csv in the run's folder
LOOPBACK = LinkProfile("loopback", 1e12, 1e12, 0.0)  # a node's link when only the server's is shaped


@dataclass(frozen=True)
class Transfer:
    """A burst of bytes one way: from the first byte sent to the last byte received."""

    direction: str  # "down" or "up"
    start: float  # Unix time the first byte left its sender
    end: float  # Unix time the last byte reached its receiver
    nbytes: int  # wire bytes in the burst

    @property
    def seconds(self) -> float:
        """How long the burst took."""
        return self.end - self.start


def bursts(samples: list, gap: float, cuts: list[float] = ()) -> list[list]:
    """Samples grouped where the link was idle one way for longer than `gap` (no sample between its first and
    last byte at the receiver) or where a time in `cuts` falls in such an idle spell."""
    groups: list[list] = []
    busy_until = None
    for s in sorted(samples, key=lambda s: s.first_arrived):
        if busy_until is None or s.first_arrived - busy_until > gap or _crosses(cuts, busy_until, s.first_arrived):
            groups.append([])
            busy_until = s.arrived
        groups[-1].append(s)
        busy_until = max(busy_until, s.arrived)
    return groups


def _crosses(cuts: list[float], start: float, end: float) -> bool:
    """True if a time in the sorted `cuts` lies in (start, end]."""
    return bisect.bisect_right(cuts, start) < bisect.bisect_right(cuts, end)


def message_starts(samples: list, min_bytes: int) -> list[float]:
    """When each message starts, either way: its first bulk chunk after the last message the other way. A run
    starts at a bulk chunk (BULK_BYTES or more) the other way from the run before it and holds every byte its way
    until the next run (on a slow uplink most of an upload's chunks are single segments, under BULK_BYTES); runs
    of at least `min_bytes` are messages, and a smaller run, such as the object list a SuperLink answers a push
    with, is part of the message around it."""
    runs: list[list] = []  # [direction, first bulk chunk sent, bytes its way until the next run]
    for s in sorted(samples, key=lambda s: s.sent):
        if s.nbytes >= BULK_BYTES and not (runs and runs[-1][0] == s.direction):
            runs.append([s.direction, s.sent, 0])
        if runs and runs[-1][0] == s.direction:
            runs[-1][2] += s.nbytes
    starts, since = [], []  # since: the smaller runs after the last message
    for run in absorb_strays(runs):
        if run[2] < min_bytes:
            since.append(run)
            continue
        starts.append(min((r[1] for r in since if r[0] == run[0]), default=run[1]))
        since = []
    return starts


def absorb_strays(runs: list[list]) -> list[list]:
    """`runs` with each stray joined up: a run under STRAY_BYTES and under a quarter of each run beside it, both
    of which go the other way (requests read at once on a slow uplink while a download goes on), does not split
    them (else neither part may be half a message, and no start is found)."""
    out: list[list] = []
    for run in runs:
        stray = len(out) >= 2 and out[-2][0] == run[0] and out[-1][2] < STRAY_BYTES
        if stray and 4 * out[-1][2] < min(out[-2][2], run[2]):
            out.pop()
            out[-1][2] += run[2]
        else:
            out.append(list(run))
    return out


def transfers(samples: list, direction: str, min_bytes: int, gap: float = GAP_SECONDS) -> list[Transfer]:
    """The bursts of `direction` of at least `min_bytes`, cut where a message starts either way."""
    arrived = [s for s in samples if s.arrived is not None]
    mine = bursts([s for s in arrived if s.direction == direction], gap, message_starts(arrived, min_bytes))
    return [
        Transfer(direction, min(s.sent for s in g), max(s.arrived for s in g), _size(g))
        for g in mine
        if _size(g) >= min_bytes
    ]


def _size(group: list) -> int:
    """Bytes in a group of samples."""
    return sum(s.nbytes for s in group)


def fab_bytes(app_dir: Path) -> int:
    """Bytes of the app (FAB) `flwr run` builds from `app_dir`: a node fetches it with its first message."""
    import warnings

    from flwr.cli.build import build_fab_from_disk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pathspec's, inside flwr's FAB builder
        return len(build_fab_from_disk(app_dir)) if app_dir.is_dir() else 0


def timing_rows(run, ledger, windows: dict[int, tuple[float, float]], calibration=BUILT_IN) -> list[dict]:
    """One entry per ledger message: its node, direction, wire bytes, measured and predicted seconds
    (predicted with `calibration`'s CPU terms)."""
    app, origin = fab_bytes(run.out / "app"), round_origin(windows)
    min_bytes = min((t.payload_bytes for t in ledger.transfers), default=0) // 2  # half a model message
    rows, fetched = [], set()
    at_once = Counter((t.round, t.direction) for t in ledger.transfers)  # nodes moving a model at the same time
    server = run.cfg.server_link
    for i, relay in enumerate(run.relays):
        link, ids = run.links[i] if run.links else None, {run.node_ids[i], *run.rejoined_ids.get(i, [])}
        link = LOOPBACK if link is None and server is not None else link  # only the server's link is shaped
        latency = (link.latency_seconds if link else 0.0) + (server.latency_seconds if server else 0.0)
        gap = max(GAP_SECONDS, 6 * latency)
        samples = relay.snapshot()
        if os.environ.get(KEEP_SAMPLES):
            write_samples(samples, run.out / f"relay{i}_samples.csv")
        found = {d: transfers(samples, d, min_bytes, gap) for d in (DOWN, UP)}
        for t in sorted((t for t in ledger.transfers if t.node_id in ids), key=lambda t: (t.round, t.direction)):
            start, end = windows.get(t.round, (0.0, 0.0))
            match = max((x for x in found[t.direction] if start <= x.start < end), key=lambda x: x.nbytes, default=None)
            first = t.direction == DOWN and t.node_id not in fetched
            fetched.add(t.node_id)
            plan = (first, app, at_once[t.round, t.direction], calibration, server)
            row = timing_row(t, i, link, match, plan, run.cfg.model)
            rows.append({**row, "start_seconds": _since(match, origin)})
    return rows


def round_origin(windows: dict[int, tuple[float, float]]) -> float:
    """The Unix time round 1 started: the zero of every `*_seconds` the summary's timing rows give."""
    return min((w[0] for w in windows.values()), default=0.0)


def write_samples(samples: list, path: Path) -> Path:
    """A relay's samples as CSV (sent, direction, bytes, first and last byte arrived), to re-read its messages."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["sent", "direction", "nbytes", "first_arrived", "arrived"])
        out.writerows((s.sent, s.direction, s.nbytes, s.first_arrived, s.arrived) for s in samples)
    return path


def read_samples(path: Path) -> list:
    """Samples written by write_samples."""
    from .relay import Sample

    def time(text: str) -> float | None:
        return float(text) if text else None

    with path.open(newline="") as f:
        return [Sample(float(r["sent"]), r["direction"], int(r["nbytes"]), time(r["arrived"]), time(r["first_arrived"]))
                for r in csv.DictReader(f)]  # fmt: skip


def _since(match: Transfer | None, origin: float) -> float | None:
    """When a message started, in seconds since round 1 started (None if not measured)."""
    return round(match.start - origin, 3) if match else None


def timing_row(t, partition: int, link, match: Transfer | None, plan: tuple, model: str) -> dict:
    """The timing entry of one message (None where nothing was measured or no link was emulated); `plan` is
    (a node's first message, the app's bytes, nodes moving a model at the same time, the calibration, the
    server's link or None); the formula takes the node's fair share of the server's link, if there is one."""
    first, app, nodes, calibration, server = plan
    rate, latency = (link.rate(t.direction), link.latency_seconds) if link else (0.0, 0.0)
    if link and server:
        rate, latency = min(rate, server.rate(t.direction) / nodes), latency + server.latency_seconds
    return {
        "round": t.round,
        "node": partition,
        "node_id": t.node_id,
        "direction": t.direction,
        "link": link.name if link else None,
        "bytes": match.nbytes if match else None,
        "measured_seconds": round(match.seconds, 4) if match else None,
        "nodes_at_once": nodes,
        "predicted_seconds": round(message_seconds(model, link, t.direction, first, app, nodes, calibration, server), 4)
        if link
        else None,
        "formula_seconds": round(transfer_seconds(t.payload_bytes, rate, latency), 4) if link else None,
    }


def kernel_rows(run) -> list[dict]:
    """Per emulated node and direction: the veth's bytes and frames, the relay's bytes, and what is left over
    once 66 B of headers per frame are taken off (as a fraction of the relay's bytes)."""
    rows = []
    for i, (relay, counters) in enumerate(zip(run.relays, run.counters, strict=False)):
        for d in (DOWN, UP) if counters else ():
            kernel, frames, relayed = counters[f"{d}_bytes"], counters[f"{d}_packets"], relay.totals()[d]
            rows.append(
                {
                    "node": i,
                    "direction": d,
                    "kernel_bytes": kernel,
                    "kernel_frames": frames,
                    "relay_bytes": relayed,
                    "kernel_per_relay": round(kernel / relayed, 6) if relayed else None,
                    "header_bytes": HEADER_BYTES * frames,
                    "unexplained": round((kernel - HEADER_BYTES * frames - relayed) / relayed, 6) if relayed else None,
                }
            )
    return rows


def round_of(unix_time: float, windows: dict[int, tuple[float, float]]) -> int | None:
    """The round whose window holds `unix_time` (None: before the first round or after the run)."""
    return next((r for r, (start, end) in windows.items() if start <= unix_time < end), None)


def lost_rows(timeline_csv: Path, run) -> list[dict]:
    """The nodes the ServerApp saw sample but never reply, per round (timeline.csv's node_lost events)."""
    from ..server_app import NODE_LOST

    partition = {node: i for i, node in enumerate(run.node_ids)}
    partition.update({node: i for i, nodes in run.rejoined_ids.items() for node in nodes})
    rows = []
    if timeline_csv.exists():
        with timeline_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["event"] == NODE_LOST:
                    node = int(row["node_id"])
                    rows.append(
                        {
                            "round": int(row["round"]),
                            "node": partition.get(node),
                            "node_id": node,
                            "unix_time": float(row["unix_time"]),
                        }
                    )
    return rows
