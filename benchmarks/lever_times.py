"""Which lever finishes first: each study setting's time to L* on three fleets (datacenter, home broadband, a
mobile mix), its bytes, compute and codec seconds included (fedbandwidth/wire/lever_time.py).

Reads the study's CSV (benchmarks/results/compression_study.csv): for every setting (and the reference) whose
every seed reached L* = 1.01 x the reference's mean final test loss, each seed's rounds to L*, the bytes a
sampled client moved a round each way through them, and a client's compute + encode + decode seconds a round
as measured in the study (this machine, its load then): fedbandwidth/explore/levers.py. Writes
results/lever_times.json and lever_times.png, prints the markdown table (README's).

    .venv/bin/python benchmarks/lever_times.py [--calibration F]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
    args = parser.parse_args()
    calibration = load(args.calibration)
    rows = lever_table(study_runs(RESULTS / "compression_study.csv"), calibration)
    (RESULTS / "lever_times.json").write_text(json.dumps({"calibration": calibration.source, "rows": rows}, indent=2))
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    if regimes:
        fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 5), layout="constrained", squeeze=False)
        for ax, regime in zip(axes[0], regimes, strict=True):
            plot_lever_times(rows, regime, ax=ax)
        fig.savefig(RESULTS / "lever_times.png", dpi=110)
    print("| regime | setting | fleet | seeds | time to L* (s, mean ± sd) |\n|---|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['regime']} | {r['setting']} | {r['fleet']} | {r['seeds']} | "
              f"{r['seconds_mean']:,.0f} ± {r['seconds_sd']:,.0f} |")  # fmt: skip
    if not rows:
        print("| — | no setting has reached L* at every seed yet | | | |")


if __name__ == "__main__":
    main()
