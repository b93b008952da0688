"""What a run reports, in one place: a JSON-ready summary, a text table, and summary.json.

Every command (simulate, train, deploy) starts from `ledger_summary` (per-round bytes, totals, wall time,
files) and adds its own keys; `render_table` draws every text table; `write_summary` writes the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .names import DOWN, TRAIN, UP
from .units import format_bytes

SUMMARY_JSON = "summary.json"  # the file every command writes into its --out folder
ROUND_KEYS = ("round", "nodes", "down_bytes", "up_bytes", "total_bytes")  # a round's entry in "rounds"

Column = tuple[str, int, Callable[[dict], str]]  # header, width, text of a row's cell


def round_rows(ledger) -> list[dict]:
    """One dict per round of the ledger, as Ledger.per_round() counts (delivered messages; nodes that got the
    model to train): round, nodes, down/up/total payload bytes; plain Python, so a run never imports pandas."""
    rounds: dict[int, dict] = {}
    for t in (t for t in ledger.transfers if t.delivered):
        row = rounds.setdefault(t.round, {"round": t.round, "nodes": set(), "down_bytes": 0, "up_bytes": 0})
        if t.phase == TRAIN and t.direction == DOWN:
            row["nodes"].add(t.node_id)
        if column := {DOWN: "down_bytes", UP: "up_bytes"}.get(t.direction):
            row[column] += t.payload_bytes
    return [
        {**row, "nodes": len(row["nodes"]), "total_bytes": row["down_bytes"] + row["up_bytes"]}
        for _, row in sorted(rounds.items())
    ]


def ledger_summary(ledger, seconds: float, files: dict) -> dict:
    """The keys every command reports: per-round bytes, totals, wall time and the files written."""
    return {
        "rounds": round_rows(ledger),
        "down_bytes": ledger.total_bytes(DOWN),
        "up_bytes": ledger.total_bytes(UP),
        "total_bytes": ledger.total_bytes(),
        "wall_seconds": round(seconds, 2),
        "files": {k: str(v) for k, v in files.items()},
    }


def prediction_summary(model: str, config: dict, ledger, prediction, seconds: float, files: dict) -> dict:
    """A no-op run next to its prediction: model sizes, config, per-round bytes, predicted and course bytes."""
    from .architecture import model_specs
    from .theory import course_formula_bytes

    tensor_bytes = prediction.message_tensor_bytes
    formula = course_formula_bytes(tensor_bytes, config["supernodes"], config["fraction"], config["rounds"])
    measured = ledger_summary(ledger, seconds, files)
    return {
        "model": {
            "name": model,
            "parameters": sum(s.numel for s in model_specs(model)),
            "tensor_bytes": tensor_bytes,
            "message_payload_bytes": prediction.message_payload_bytes,
        },
        "config": dict(config),
        **measured,
        "predicted_bytes": prediction.total_bytes,
        "course_formula_bytes": formula,
    }


def write_summary(report: dict, out: Path) -> dict:
    """Write the report to out/summary.json; return it."""
    (Path(out) / SUMMARY_JSON).write_text(json.dumps(report, indent=2) + "\n")
    return report


def bytes_cell(*keys: str) -> Callable[[dict], str]:
    """A cell showing row[k1][k2]... as bytes with thousands separators."""

    def cell(row: dict) -> str:
        for key in keys:
            row = row[key]
        return f"{row:,}"

    return cell


def render_table(columns: list[Column], rows: list[dict]) -> list[str]:
    """Right-aligned text columns: a header line, then one line per row."""
    lines = [" ".join(f"{header:>{width}}" for header, width, _ in columns)]
    lines += [" ".join(f"{cell(row):>{width}}" for _, width, cell in columns) for row in rows]
    return [line.rstrip() for line in lines]


ROUND_COLUMNS: list[Column] = [("round", 5, lambda r: str(r["round"])), ("nodes", 5, lambda r: str(r["nodes"]))]


def render_prediction(report: dict) -> str:
    """The table of a no-op run: one line per round, then totals, the prediction and the files."""
    model = report["model"]
    columns = ROUND_COLUMNS + [
        ("down bytes", 16, bytes_cell("down_bytes")),
        ("up bytes", 16, bytes_cell("up_bytes")),
        ("round total", 16, bytes_cell("total_bytes")),
    ]
    same = "equal" if report["total_bytes"] == report["predicted_bytes"] else "DIFFERENT"
    return "\n".join(
        [
            f"{model['name']}: {model['parameters']:,} parameters, "
            f"one model message = {format_bytes(model['message_payload_bytes'])}",
            *render_table(columns, report["rounds"]),
            f"total     {format_bytes(report['total_bytes'])}",
            f"predicted {format_bytes(report['predicted_bytes'])}  ({same})",
            f"wall time {report['wall_seconds']:.1f} s; files: " + ", ".join(report["files"].values()),
        ]
    )
