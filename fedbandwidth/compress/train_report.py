"""What a training run reports: the common summary (report.py) plus held-out losses and the uplink's compression."""

from __future__ import annotations

from dataclasses import asdict

from ..report import ROUND_COLUMNS, bytes_cell, ledger_summary, render_table
from ..units import format_bytes
from .task import MODEL


def train_summary(result, seconds: float, files: dict) -> dict:
    """The run as a JSON-ready dict: the common keys plus held-out losses per round and the compression."""
    from .training import uncompressed_message_bytes

    report = ledger_summary(result.ledger, seconds, files)
    for row in report["rounds"]:
        row["eval_loss"] = result.eval_loss.get(row["round"])
    message = uncompressed_message_bytes()
    uncompressed = message * sum(r["nodes"] for r in report["rounds"])
    up = report["up_bytes"]
    return {
        "model": {"name": MODEL, "uncompressed_message_bytes": message},
        "config": asdict(result.config),
        **report,
        "uncompressed_up_bytes": uncompressed,
        "up_compression": round(uncompressed / up, 2) if up else None,
        "initial_eval_loss": result.eval_loss.get(0),
        "final_eval_loss": result.final_eval_loss,
    }


def render_train(report: dict) -> str:
    """One line per round (bytes down/up, held-out loss), then totals."""
    columns = ROUND_COLUMNS + [
        ("down bytes", 14, bytes_cell("down_bytes")),
        ("up bytes", 14, bytes_cell("up_bytes")),
        ("eval loss", 10, lambda r: f"{r['eval_loss']:.4f}"),
    ]
    return "\n".join(
        [
            *render_table(columns, report["rounds"]),
            f"down {format_bytes(report['down_bytes'])}",
            f"up   {format_bytes(report['up_bytes'])}  ({report['up_compression']}x fewer than float32)",
            f"held-out loss {report['initial_eval_loss']:.4f} -> {report['final_eval_loss']:.4f}; "
            f"wall time {report['wall_seconds']:.1f} s",
        ]
    )
