"""Wire bytes next to payload bytes: a deployment's summary, per round and per node (its text: report_text.py).

Wire bytes are split into rounds by time: the ServerApp writes when each round starts and when the
run ends (timeline.csv, Unix time, same machine); the relay timestamps each chunk it forwards.
Round r gets the bytes forwarded from its start to the next round's start (the last round: to the
end of the run). Bytes outside every round (registration, heartbeats while waiting) are ``other``.
Payload bytes are the ledger's moved ones: a model message its node never fetched is kept as undelivered and
left out (app_rounds.py); ``node_rounds`` puts each node's payload next to its relay's bytes, round by round, and
``wasted_bytes`` counts what crossed without making a counted update (downloads of nodes that did not reply in
time, late uploads; a late upload crosses in a later round's window than its row's round).
On an emulated network the summary also holds ``timing`` (each model message's measured and predicted
seconds) and ``kernel`` (the veth counters next to the relay's counts); see timing.py. ``clientapp`` is each
ClientApp's own clock a train message, in the timing rows' seconds (turnaround.py).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ..app_rounds import ROUND_CLOSED, ROUND_SENT, wasted_bytes
from ..ledger import Ledger
from ..model import tensor_specs
from ..names import DOWN, UP
from ..report import prediction_summary, write_summary
from ..server_app import GRID_LEDGER_CSV, LATE_REPLY, LEDGER_CSV, ROUND_START, RUN_END, TIMELINE_CSV
from ..theory import predict
from .auth import auth_summary
from .calibration import load as load_calibration
from .meters import meter_rows, object_costs
from .relay import Relay
from .timing import kernel_rows, lost_rows, round_of, round_origin, timing_rows
from .turnaround import clientapp_rows

DIRECTIONS = (DOWN, UP)


def round_windows(timeline_csv: Path, end: float) -> dict[int, tuple[float, float]]:
    """Round -> [start, end) in Unix time: from its start to the next round's start or the run's end."""
    starts, run_end = {}, end
    if timeline_csv.exists():
        with timeline_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["event"] == ROUND_START:
                    starts[int(row["round"])] = float(row["unix_time"])
                elif row["event"] == RUN_END:
                    run_end = float(row["unix_time"])
    rounds = sorted(starts)
    ends = [starts[r] for r in rounds[1:]] + [run_end]
    return {r: (starts[r], stop) for r, stop in zip(rounds, ends, strict=True)}


def round_seconds(timeline_csv: Path) -> dict[int, float]:
    """Round -> seconds from its models pushed to its close (the app's timeline; rounds with both events)."""
    marks: dict[tuple[int, str], float] = {}
    if timeline_csv.exists():
        with timeline_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["event"] in (ROUND_SENT, ROUND_CLOSED):
                    marks.setdefault((int(row["round"]), row["event"]), float(row["unix_time"]))
    rounds = {r for r, _ in marks}
    return {r: marks[r, ROUND_CLOSED] - marks[r, ROUND_SENT] for r in sorted(rounds) if (r, ROUND_CLOSED) in marks
            and (r, ROUND_SENT) in marks}  # fmt: skip


def wire_by_round(relays: list[Relay], windows: dict[int, tuple[float, float]]) -> dict[int, dict[str, int]]:
    """Round -> wire bytes {"down", "up"} summed over every relay, by the round's time window."""
    table = {}
    for r, (start, end) in windows.items():
        counts = [relay.bytes_between(start, end) for relay in relays]
        table[r] = {d: sum(c[d] for c in counts) for d in DIRECTIONS}
    return table


def ratio(wire: int, payload: int) -> float | None:
    """wire / payload, rounded to 6 digits; None when no payload went that way."""
    return round(wire / payload, 6) if payload else None


def partition_ids(run, i: int) -> set[int]:
    """Every Flower node id SuperNode `i` had: its first, and those it registered under when restarted."""
    return {run.node_ids[i], *run.rejoined_ids.get(i, [])} - {None}


def payload_of(ledger: Ledger, nodes: set[int], rounds=None, delivered: bool = True) -> dict[str, int]:
    """Payload bytes of `nodes` per direction (delivered rows, or undelivered ones), in `rounds` (None: all)."""
    rows = [t for t in ledger.transfers if t.node_id in nodes and t.delivered == delivered]
    return {
        d: sum(t.payload_bytes for t in rows if t.direction == d and (rounds is None or t.round in rounds))
        for d in DIRECTIONS
    }


def late_crossings(timeline_csv: Path, ledger: Ledger, windows) -> dict[tuple[int, int], int]:
    """(window round, node id) -> bytes of the late replies pulled in that round's window (a round's late reply
    crosses while a later round runs; timeline.csv's late_reply events say when)."""
    late = {(t.round, t.node_id): t.payload_bytes for t in ledger.transfers if t.late}
    found: dict[tuple[int, int], int] = {}
    if timeline_csv.exists():
        with timeline_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                key = (int(row["round"]), int(row["node_id"] or 0))
                if row["event"] == LATE_REPLY and key in late:
                    window = (round_of(float(row["unix_time"]), windows) or key[0], key[1])
                    found[window] = found.get(window, 0) + late[key]
    return found


def node_round_rows(run, ledger: Ledger, windows: dict[int, tuple[float, float]]) -> list[dict]:
    """One dict per SuperNode and round: moved payload, undelivered payload, its relay's bytes in the round's
    window, and the late replies (of any round) that crossed in it."""
    rows, late = [], late_crossings(run.out / TIMELINE_CSV, ledger, windows)
    for i, relay in enumerate(run.relays):
        nodes = partition_ids(run, i)
        for r, (start, end) in windows.items():
            payload, wire = payload_of(ledger, nodes, {r}), relay.bytes_between(start, end)
            rows.append(
                {
                    "round": r,
                    "partition": i,
                    "payload_bytes": payload,
                    "undelivered_bytes": payload_of(ledger, nodes, {r}, delivered=False)[DOWN],
                    "late_up_crossing_bytes": sum(late.get((r, n), 0) for n in nodes),
                    "wire_bytes": wire,
                    "wire_per_payload": {d: ratio(wire[d], payload[d]) for d in DIRECTIONS},
                }
            )
    return rows


def node_rows(run, ledger: Ledger) -> list[dict]:
    """One dict per SuperNode: partition, node id, moved payload and wire bytes per direction, their ratio."""
    rows = []
    for i, (relay, node_id) in enumerate(zip(run.relays, run.node_ids, strict=True)):
        payload = payload_of(ledger, partition_ids(run, i))
        wire = relay.totals()
        rows.append(
            {
                "partition": i,
                "node_id": node_id,
                "lost": i in run.lost,
                "rejoined_node_ids": run.rejoined_ids.get(i, []),
                "link": run.links[i].describe() if run.links and run.links[i] else None,
                "payload_bytes": payload,
                "wire_bytes": wire,
                "wire_per_payload": {d: ratio(wire[d], payload[d]) for d in DIRECTIONS},
            }
        )
    return rows


def read_ledger(out: Path) -> Ledger:
    """The ledger the ServerApp wrote into `out` (empty if it wrote none)."""
    path = out / LEDGER_CSV
    return Ledger.from_csv(path) if path.exists() else Ledger()


def grid_meter_summary(out: Path) -> dict:
    """The Grid meter's bytes per direction (every message pushed or pulled, by record kind); {} without its CSV."""
    path = out / GRID_LEDGER_CSV
    if not path.exists():
        return {}
    rows = Ledger.from_csv(path).transfers
    kinds = ("payload_bytes", "array_bytes", "config_bytes", "metric_bytes")
    return {d: {k: sum(getattr(t, k) for t in rows if t.direction == d) for k in kinds} for d in DIRECTIONS}


def app_run_summary(run, files: dict, **config) -> tuple[dict, Ledger]:
    """The common summary of a run of the Flower App (Message API, no evaluate phase) next to its prediction."""
    cfg = run.cfg
    prediction = predict(tensor_specs(cfg.model), cfg.supernodes, cfg.rounds, cfg.fraction, 0.0, "message")
    settings = {
        "supernodes": cfg.supernodes,
        "rounds": cfg.rounds,
        "fraction": cfg.fraction,
        "fraction_evaluate": 0.0,
        "api": "message",
        **config,
    }
    ledger = read_ledger(run.out)
    return prediction_summary(cfg.model, settings, ledger, prediction, run.wall_seconds, files), ledger


def deploy_summary(run) -> dict:
    """The run as a JSON-ready dict: the app's summary, plus wire bytes per round and per node; summary.json."""
    files = {"ledger_csv": run.out / LEDGER_CSV, "timeline_csv": run.out / TIMELINE_CSV, "logs": run.out / "logs"}
    files["grid_ledger_csv"] = run.out / GRID_LEDGER_CSV
    emulated = [link.describe() for link in run.cfg.links]
    report, ledger = app_run_summary(
        run,
        files,
        tls=run.cfg.use_tls,
        engine="deployment",
        links=emulated,
        client=run.cfg.client,
        server_link=run.cfg.server_link.describe() if run.cfg.server_link else None,
    )
    report["grid_meter"] = grid_meter_summary(run.out)
    windows = round_windows(run.out / TIMELINE_CSV, end=time.time())
    wire = wire_by_round(run.relays, windows)
    closing = round_seconds(run.out / TIMELINE_CSV)
    for row in report["rounds"]:
        row["wire_bytes"] = wire.get(row["round"], {DOWN: 0, UP: 0})
        row["seconds"] = round(closing[row["round"]], 3) if row["round"] in closing else None
    totals = {d: sum(r.totals()[d] for r in run.relays) for d in DIRECTIONS}
    in_rounds = {d: sum(w[d] for w in wire.values()) for d in DIRECTIONS}
    report["wire_bytes"] = {**totals, "other": {d: totals[d] - in_rounds[d] for d in DIRECTIONS}}
    report["wire_per_payload"] = {d: ratio(totals[d], report[f"{d}_bytes"]) for d in DIRECTIONS}
    report["nodes"] = node_rows(run, ledger)
    report["node_rounds"] = node_round_rows(run, ledger, windows)
    report["wasted_bytes"] = wasted_bytes(ledger.transfers)
    report["late_replies"] = sum(1 for t in ledger.transfers if t.late)
    report["undelivered_bytes"] = sum(t.payload_bytes for t in ledger.transfers if not t.delivered)
    calibration = load_calibration(run.cfg.calibration)
    report["calibration"] = {"source": calibration.source, "request_seconds": calibration.request_seconds,
                             "request_up_seconds": calibration.request(UP),
                             "superlink_down_seconds": calibration.superlink_down_seconds,
                             "superlink_up_seconds": calibration.superlink_up_seconds}  # fmt: skip
    report["timing"] = timing_rows(run, ledger, windows, calibration)
    report["clientapp"] = clientapp_rows(files["logs"], round_origin(windows))
    report["kernel"] = kernel_rows(run)
    report["lost"] = lost_rows(run.out / TIMELINE_CSV, run)
    report["events"] = [{**e, "round": round_of(e["unix_time"], windows)} for e in run.events]
    report["auth"] = auth_summary(run)
    report["meters"] = meter_rows(report, ledger, run.flower_traffic, object_costs(run.cfg.model))
    report["run"] = {
        "id": run.run_id,
        "status": run.status,
        "lost_partitions": run.lost,
        "processes_stopped": len(run.pids),
        "network": run.network,
    }
    return write_summary(report, run.out)
