"""What a training run reports: the common summary (report.py) plus held-out losses and the uplink's compression."""

from __future__ import annotations

from dataclasses import asdict

from ..report import ROUND_COLUMNS, bytes_cell, ledger_summary, render_table
from ..units import format_bytes
from .task import MODEL


def bytes_to_target(rounds: list[dict], target: float) -> tuple[int | None, int | None]:
    """(first round whose eval_loss <= target, cumulative up_bytes through it); (None, None) if none reached it."""
    reached, up, _ = both_ways_to_target(rounds, target)
    return reached, up


def both_ways_to_target(rounds: list[dict], target: float) -> tuple[int | None, int | None, int | None]:
    """(first round whose eval_loss <= target, cumulative up and down bytes through it); all None if never."""
    up = down = 0
    for row in rounds:
        up, down = up + row["up_bytes"], down + row.get("down_bytes", 0)
        if row["eval_loss"] is not None and row["eval_loss"] <= target:
            return row["round"], up, down
    return None, None, None


def round_extras(result, round_: int) -> dict:
    """A round's held-out loss per split and its timing, where the run recorded them (TrainResult's optional
    `val_loss` / `test_loss`: round -> loss; `timing`: round -> {"compute_seconds": s, ...})."""
    extras = {f"{split}_loss": getattr(result, f"{split}_loss", {}).get(round_) for split in ("val", "test")}
    extras = {k: v for k, v in extras.items() if v is not None}
    return {**extras, **getattr(result, "timing", {}).get(round_, {})}


def train_summary(result, seconds: float, files: dict) -> dict:
    """The run as a JSON-ready dict: the common keys plus held-out losses per round and the compression."""
    from .training import uncompressed_message_bytes

    report = ledger_summary(result.ledger, seconds, files)
    for row in report["rounds"]:
        row["eval_loss"] = result.eval_loss.get(row["round"])
        row.update(round_extras(result, row["round"]))
    message = uncompressed_message_bytes()
    uncompressed = message * sum(r["nodes"] for r in report["rounds"])
    up = report["up_bytes"]
    target = result.config.target_loss
    reached, up_to, down_to = both_ways_to_target(report["rounds"], target) if target is not None else (None,) * 3
    return {
        "model": {"name": MODEL, "uncompressed_message_bytes": message},
        "config": asdict(result.config),
        **report,
        "uncompressed_up_bytes": uncompressed,
        "up_compression": round(uncompressed / up, 2) if up else None,
        "initial_eval_loss": result.eval_loss.get(0),
        "final_eval_loss": result.final_eval_loss,
        "rounds_run": max(result.eval_loss),
        "reached_target_round": reached,
        "up_bytes_to_target": up_to,
        "down_bytes_to_target": down_to,
        "total_bytes_to_target": None if up_to is None else up_to + down_to,
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
            f"held-out loss {report['initial_eval_loss']:.4f} -> {report['final_eval_loss']:.4f} "
            f"after {report['config']['rounds']} rounds; wall time {report['wall_seconds']:.1f} s",
            *target_line(report),
        ]
    )


def target_line(report: dict) -> list[str]:
    """A line saying whether and when the run reached its target loss (none without a target)."""
    target = report["config"]["target_loss"]
    if target is None:
        return []
    if report["reached_target_round"] is None:
        return [f"target loss {target:.4f} not reached in {report['rounds_run']} rounds"]
    return [
        f"target loss {target:.4f} reached in round {report['reached_target_round']} "
        f"after {report['total_bytes_to_target']:,} bytes ({report['up_bytes_to_target']:,} up, "
        f"{report['down_bytes_to_target']:,} down)"
    ]
