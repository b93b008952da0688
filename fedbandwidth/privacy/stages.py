"""SecAgg+'s ledger per round and stage, measured (the Grid meter) next to predicted (the formula)."""

from __future__ import annotations

from collections.abc import Callable

from ..ledger import Ledger
from ..names import DOWN
from ..report import render_table
from .formula import STAGES, SecAggPlan, stage_bytes

STAGE_FIELDS = ("round", "stage", "direction", "messages", "bytes", "predicted_bytes")  # --json "stages" entries


def measured_stages(ledger: Ledger) -> list[dict]:
    """Messages and bytes per (round, stage, direction) of a Grid-metered SecAgg+ run, in protocol order."""
    totals: dict[tuple[int, str, str], list[int]] = {}
    for t in ledger.transfers:
        if t.stage in STAGES:
            entry = totals.setdefault((t.round, t.stage, t.direction), [0, 0])
            entry[0], entry[1] = entry[0] + 1, entry[1] + t.payload_bytes
    order = sorted(totals, key=lambda k: (k[0], STAGES.index(k[1]), k[2] != DOWN))
    return [{"round": r, "stage": s, "direction": d, "messages": totals[r, s, d][0], "bytes": totals[r, s, d][1]}
            for r, s, d in order]  # fmt: skip


def round_id_digits(ledger: Ledger, round: int) -> int:
    """Total decimal digits of the ids of the nodes a round's setup went to (what 'share keys' depends on)."""
    return sum(
        len(str(t.node_id))
        for t in ledger.transfers
        if t.round == round and t.stage == STAGES[0] and t.direction == DOWN
    )


def stage_rows(ledger: Ledger, plan_of: Callable[[int], SecAggPlan]) -> list[dict]:
    """Measured stages with the formula's bytes beside them; `plan_of(round)` gives that round's plan."""
    rows = measured_stages(ledger)
    predicted = {}
    for r in sorted({row["round"] for row in rows}):
        for p in stage_bytes(plan_of(r)):
            predicted[r, p["stage"], p["direction"]] = p["bytes"]
    return [{**row, "predicted_bytes": predicted.get((row["round"], row["stage"], row["direction"]))} for row in rows]


def predicted_stages(plan_of: Callable[[int], SecAggPlan], rounds: int) -> list[dict]:
    """The formula's stages for `rounds` rounds, in the --json shape (no measurement: bytes is the prediction)."""
    return [
        {"round": r, **p, "predicted_bytes": p["bytes"]} for r in range(1, rounds + 1) for p in stage_bytes(plan_of(r))
    ]


STAGE_COLUMNS = [
    ("round", 5, lambda r: str(r["round"])),
    ("stage", 22, lambda r: r["stage"]),
    ("dir", 4, lambda r: r["direction"]),
    ("msgs", 5, lambda r: str(r["messages"])),
    ("bytes", 15, lambda r: f"{r['bytes']:,}"),
    ("predicted", 15, lambda r: "" if r["predicted_bytes"] is None else f"{r['predicted_bytes']:,}"),
]


def render_stages(rows: list[dict]) -> list[str]:
    """SecAgg+'s stages as text lines: round, stage, direction, messages, bytes, predicted bytes."""
    return render_table(STAGE_COLUMNS, rows)
