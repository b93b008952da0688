"""A deployment's summary as text: the app's table, wire bytes next to payload per round and node, time
(emulated), kernel counters, the meters, stragglers, who may join; `wire_table` for the notebook."""

from __future__ import annotations

from ..names import DOWN, UP
from ..report import bytes_cell, render_prediction, render_table
from .auth import auth_lines
from .meters import render_meters

DIRECTIONS = (DOWN, UP)


def ratio_cell(direction: str):
    """A cell showing a node's wire/payload ratio with 4 decimals, or '-' when no payload went that way."""
    return lambda n: "-" if n["wire_per_payload"][direction] is None else f"{n['wire_per_payload'][direction]:.4f}"


ROUND_WIRE_COLUMNS = [
    ("round", 5, lambda r: str(r["round"])),
    ("payload down", 14, bytes_cell("down_bytes")),
    ("wire down", 14, bytes_cell("wire_bytes", DOWN)),
    ("payload up", 14, bytes_cell("up_bytes")),
    ("wire up", 14, bytes_cell("wire_bytes", UP)),
    ("seconds", 8, lambda r: "-" if r.get("seconds") is None else f"{r['seconds']:.1f}"),
]


def payload_and_wire(ratio: bool) -> list[tuple]:
    """Payload and wire columns for each direction (and the wire/payload ratio, if asked)."""
    columns = []
    for d in DIRECTIONS:
        columns += [
            (f"payload {d}", 14, bytes_cell("payload_bytes", d)),
            (f"wire {d}", 14, bytes_cell("wire_bytes", d)),
        ]
        columns += [("wire/payload", 12, ratio_cell(d))] if ratio else []
    return columns


NODE_WIRE_COLUMNS = [
    ("node", 5, lambda n: str(n["partition"])),
    *payload_and_wire(ratio=True),
    ("", 0, lambda n: " (lost mid-run)" if n["lost"] else ""),
]
NODE_ROUND_COLUMNS = [
    ("round", 5, lambda r: str(r["round"])),
    ("node", 4, lambda r: str(r["partition"])),
    *payload_and_wire(ratio=False),
    ("", 0, lambda r: f" (undelivered {r['undelivered_bytes']:,})" if r["undelivered_bytes"] else ""),
    ("", 0, lambda r: f" (late up {r['late_up_crossing_bytes']:,})" if r["late_up_crossing_bytes"] else ""),
]


def straggler_lines(report: dict) -> list[str]:
    """What was never fetched (left out of the moved bytes) and what crossed in vain, when anything did."""
    wasted, lines = report["wasted_bytes"], []
    if report["undelivered_bytes"]:
        lines.append(f"undelivered: {report['undelivered_bytes']:,} B pushed for nodes that never fetched them")
    if wasted["total"]:
        lines.append(
            f"wasted: {wasted['total']:,} B ({wasted[DOWN]:,} down to nodes without a counted reply, "
            f"{wasted[UP]:,} up in {report['late_replies']} late replies)"
        )
    return lines


def seconds_cell(key: str):
    """A cell showing seconds with 2 decimals, or '-' when there are none."""
    return lambda row: "-" if row[key] is None else f"{row[key]:.2f}"


TIMING_COLUMNS = [
    ("round", 5, lambda t: str(t["round"])),
    ("node", 4, lambda t: str(t["node"])),
    ("link", 15, lambda t: t["link"] or "loopback"),
    ("dir", 4, lambda t: t["direction"]),
    ("wire bytes", 12, lambda t: "-" if t["bytes"] is None else f"{t['bytes']:,}"),
    ("formula s", 9, seconds_cell("formula_seconds")),
    ("predicted s", 11, seconds_cell("predicted_seconds")),
    ("measured s", 10, seconds_cell("measured_seconds")),
]
KERNEL_COLUMNS = [
    ("node", 4, lambda k: str(k["node"])),
    ("dir", 4, lambda k: k["direction"]),
    ("kernel bytes", 14, bytes_cell("kernel_bytes")),
    ("frames", 8, bytes_cell("kernel_frames")),
    ("relay bytes", 14, bytes_cell("relay_bytes")),
    ("kernel/relay", 12, lambda k: f"{k['kernel_per_relay']:.4f}" if k["kernel_per_relay"] else "-"),
    ("unexplained", 11, lambda k: f"{k['unexplained']:+.4%}" if k["unexplained"] is not None else "-"),
]


def calibration_line(terms: dict) -> str:
    """The calibration a report's time predictions used, in one line."""
    up = {"request_up_seconds": terms.get("request_up_seconds", terms["request_seconds"])}  # older summaries lack it
    keys = ("request_seconds", "superlink_down_seconds", "superlink_up_seconds")
    ms = {k: f"{1000 * v:.1f} ms" for k, v in ({k: terms[k] for k in keys} | up).items()}
    return (
        f"request {ms['request_seconds']} down / {ms['request_up_seconds']} up, SuperLink share "
        f"{ms['superlink_down_seconds']} down / "
        f"{ms['superlink_up_seconds']} up per other node ({terms['source']})"
    )


def render_deploy_text(report: dict) -> str:
    """The app's table, wire vs payload per round and per node, then (emulated) time and kernel counts, losses."""
    run = report["run"]
    emulated = [t for t in report["timing"] if t["predicted_seconds"] is not None]
    lines = [
        render_prediction(report),
        "",
        *render_table(ROUND_WIRE_COLUMNS, report["rounds"]),
        *render_table(NODE_WIRE_COLUMNS, report["nodes"]),
        *(render_table(NODE_ROUND_COLUMNS, report["node_rounds"]) if len(report["rounds"]) > 1 else []),
        *straggler_lines(report),
        *auth_lines(report),
        *render_meters(report["meters"]),
        *(render_table(TIMING_COLUMNS, emulated) if emulated else []),
        *([f"predicted with: {calibration_line(report['calibration'])}"] if emulated else []),
        *(render_table(KERNEL_COLUMNS, report["kernel"]) if report["kernel"] else []),
        *[f"lost: node {x['node']} (id {x['node_id']}) sent no reply in round {x['round']}" for x in report["lost"]],
        *[f"event: node {e['partition']} {e['event']} in round {e['round']}" for e in report["events"]],
        f"run {run['id']}: {run['status']}; TLS {'on' if report['config']['tls'] else 'off'}; "
        f"SuperNode auth {'on' if report['auth']['enabled'] else 'off'}; "
        f"{run['processes_stopped']} processes stopped",
    ]
    return "\n".join(lines)


def wire_table(report: dict):
    """One row per node and direction: payload bytes, wire bytes, wire/payload."""
    import pandas as pd

    rows = [
        {
            "partition": n["partition"],
            "node_id": n["node_id"],
            "direction": d,
            "payload_bytes": n["payload_bytes"][d],
            "wire_bytes": n["wire_bytes"][d],
            "wire_per_payload": n["wire_per_payload"][d],
        }
        for n in report["nodes"]
        for d in DIRECTIONS
    ]
    return pd.DataFrame(rows)
