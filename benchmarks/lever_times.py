"""Which lever finishes first: each study setting's time to L* on three fleets (datacenter, home broadband, a
mobile mix), its bytes, compute and codec seconds included (fedbandwidth/wire/lever_time.py).

Reads the study's CSV (benchmarks/results/compression_study.csv): for every setting (and the reference) whose
every seed reached L* = 1.01 x the reference's mean final test loss, each seed's rounds to L*, the bytes a
sampled client moved a round each way through them, and a client's compute + encode + decode seconds a round
as measured in the study (this machine, its load then): fedbandwidth/explore/levers.py. Writes
results/lever_times.json and lever_times.png, prints the markdown table (README's).

    .venv/bin/python benchmarks/lever_times.py [--calibration F] [--readme]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


HEADER = "| regime | setting | seeds | datacenter | home broadband | mobile (4G 50%, 5G 30%, 3G 20%) |"


def wide_table(rows: list[dict]) -> list[str]:
    """The markdown table of README: a row per (regime, setting), the time to L* on each fleet (mean ± sd)."""
    cells: dict[tuple, list[str]] = {}
    for r in rows:
        cells.setdefault((r["regime"], r["setting"], r["seeds"]), []).append(
            f"{r['seconds_mean']:,.0f} ± {r['seconds_sd']:,.0f} s"
        )
    lines = [HEADER, "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {g} | {s} | {n} | {' | '.join(c)} |" for (g, s, n), c in cells.items()]
    return lines if cells else [*lines, "| — | no setting has reached L* at every seed yet | | | | |"]


def main() -> None:
    """Build the table from the CSV; write the JSON and the plot; print markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedbandwidth.explore.levers import study_runs
    from fedbandwidth.wire.calibration import load
    from fedbandwidth.wire.lever_time import lever_table
    from fedbandwidth.wire.plots import plot_lever_times

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, default=None, help="calibration file (default: this machine's)")
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md, in place")
    args = parser.parse_args()
    calibration = load(args.calibration)
    rows = lever_table(study_runs(RESULTS / "compression_study.csv"), calibration)
    (RESULTS / "lever_times.json").write_text(json.dumps({"calibration": calibration.source, "rows": rows}, indent=2))
    regimes = list(dict.fromkeys(r["regime"] for r in rows)) or ["scratch"]  # none yet: the plot says so
    fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 5), layout="constrained", squeeze=False)
    for ax, regime in zip(axes[0], regimes, strict=True):
        plot_lever_times(rows, regime, ax=ax)
    fig.savefig(RESULTS / "lever_times.png", dpi=110)
    table = wide_table(rows)
    print("\n".join(table))
    if args.readme:
        import benchlib  # benchmarks/, next to this script

        readme = RESULTS.parents[1] / "README.md"
        readme.write_text(benchlib.replace_table(readme.read_text(), table))


if __name__ == "__main__":
    main()
