"""The compression study's tables: the findings table README prints (markdown) and a summary as a DataFrame.

Both are read from the CSV and its summary (study.py): total bytes (down + up) to L* = 1.01 x the reference's
mean final test loss first, then each direction; adapters also name the one-time download of the base model.
"""

from __future__ import annotations

from .study import ratio, reference_rows, setting_rows, study_frame
from .study_plan import REFERENCE
from .study_rows import HEADLINE, target_columns

MARKDOWN_HEADER = [
    "| regime | setting | lr | seeds reaching L* | total bytes to L* (mean ± sd) | uplink bytes to L* "
    "| downlink bytes to L* | fewer total bytes than the reference | fewer total bytes than the best float32 "
    "| fewer uplink bytes than the reference | test loss after its rounds (mean ± sd) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
TOTAL_MEAN = "total_bytes_to_target_mean"  # the summary's headline field
NO_RUNS = "| — | no runs yet: the new study's results are pending | | | | | | | | | |"


def mean_sd_cell(values) -> str:
    """Bytes as "mean ± sd" over seeds (sd 0 for one seed)."""
    values = values.astype(float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():,.0f} ± {sd:,.0f}"


def total_cell(rows) -> str:
    """Total bytes to L* (mean ± sd), or which seeds never reached it and what they sent; adapters add the base
    model's one-time download."""
    round_, _, _, total = target_columns(HEADLINE)
    if rows[total].notna().all():
        cell = mean_sd_cell(rows[total])
    else:
        missed = rows[rows[total].isna()]
        sent = ", ".join(f"{int(v):,}" for v in missed.total_bytes)
        seeds = ", ".join(str(int(s)) for s in missed.seed)
        cell = f"seed(s) {seeds} never reached L* in {int(missed.rounds_run.max())} rounds (sent {sent} B)"
    base = int(rows.base_download_bytes.fillna(0).max())
    return f"{cell} (+ {base:,} B once: the base model)" if base else cell


def direction_cell(rows, column: str) -> str:
    """Bytes to L* in one direction (mean ± sd), "—" unless every seed reached it."""
    return mean_sd_cell(rows[column]) if rows[column].notna().all() else "—"


def times(value: float | None) -> str:
    """A ratio as "12.34x", or "—" when unknown."""
    return "—" if value is None else f"{value:,.2f}x"


def floor_total(result: dict) -> float | None:
    """The mean total bytes to L* of a regime's best float32 FedAvg (the reference's, or a split's)."""
    entries = [{**result["reference"], "name": REFERENCE}, *result["settings"]]
    return next(e[TOTAL_MEAN] for e in entries if e["name"] == result["best_float32"])


def label_of(name: str, result: dict) -> str:
    """A setting's label in the table, marked when it is the regime's best float32 FedAvg."""
    return f"{name} (float32: the best float32 here)" if name == result["best_float32"] else name


def markdown_row(rows, regime: str, entry: dict, label: str) -> str:
    """One line of the findings table: a setting's (or the reference's) summary entry and its rows."""
    _, up, down, total = target_columns(HEADLINE)
    reach = f"{int(rows[total].notna().sum())}/{len(rows)}"
    loss = f"{entry['final_loss_mean']:.4f} ± {entry['final_loss_sd']:.4f}"
    ratios = " | ".join(times(entry.get(k, 1.0)) for k in ("ratio_total", "ratio_total_best_float32", "ratio_up"))
    cells = f"{total_cell(rows)} | {direction_cell(rows, up)} | {direction_cell(rows, down)}"
    return f"| {regime} | {label} | {entry['lr']:g} | {reach} | {cells} | {ratios} | {loss} |"


def findings_markdown(summary: dict, frame) -> list[str]:
    """The findings table (markdown lines): each regime's reference (with its L*), then its settings."""
    frame = study_frame(frame)
    lines = list(MARKDOWN_HEADER)
    for regime, result in summary["regimes"].items():
        reference = result["reference"]
        star = result["targets"][str(HEADLINE)]
        flat = "" if reference.get("flattened", True) else ", not flattened"
        label = f"reference (float32, {reference['rounds']} x {reference['local_steps']} steps{flat}; L* = {star:.4f})"
        floor = {**reference, "ratio_total_best_float32": ratio(floor_total(result), reference[TOTAL_MEAN])}
        lines.append(markdown_row(reference_rows(frame, regime), regime, floor, label))
        lines += [
            markdown_row(setting_rows(frame, regime, s["name"]), regime, s, label_of(s["name"], result))
            for s in result["settings"]
        ]
    return lines if len(lines) > len(MARKDOWN_HEADER) else [*lines, NO_RUNS]


def summary_table(summary: dict, regime: str):
    """A regime's summary as a DataFrame: one row per setting (the reference first), bytes to L* and loss."""
    import pandas as pd

    result = summary["regimes"][regime]
    floor = ratio(floor_total(result), result["reference"][TOTAL_MEAN])
    reference = {"name": REFERENCE, **result["reference"], "ratio_total": 1.0, "ratio_up": 1.0}
    entries = [{**reference, "ratio_total_best_float32": floor}, *result["settings"]]
    rows = [
        {
            "setting": e["name"],
            "lr": e["lr"],
            "seeds": len(e["seeds"]),
            "total bytes to L* (mean)": e["total_bytes_to_target_mean"],
            "up bytes to L* (mean)": e["up_bytes_to_target_mean"],
            "down bytes to L* (mean)": e["down_bytes_to_target_mean"],
            "x fewer total bytes": e["ratio_total"],
            "x fewer total bytes than the best float32": e.get("ratio_total_best_float32"),
            "x fewer uplink bytes": e["ratio_up"],
            "test loss (mean)": e["final_loss_mean"],
            "test loss (sd)": e["final_loss_sd"],
        }
        for e in entries
    ]
    return pd.DataFrame(rows).set_index("setting")
