"""Which lever finishes first on a fleet: the time to L* of a study run, its bytes, compute and codec included.

A study run (benchmarks/compression_study.py) says how many rounds a setting needed to reach L*, how many bytes
each sampled client moved a round each way, and how long a client computed, encoded and decoded a round on this
machine. On a fleet, each of those rounds takes what wire/plan.py says (the K-th reply of the sampled clients,
each on its own link, the course's formula per message) plus the calibration's pickup and ClientApp turnaround
(which grows with a slow download: turnaround.py); the time to L* is their sum. On a fast link a codec's CPU
seconds can cost more than the bytes it saves; on a slow one bytes rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from .calibration import Calibration
from .fleet import fleet_from_mix
from .plan import PlanConfig, plan

FLEETS = {  # the three fleets of the lever table: name -> a mix of the built-in profiles
    "datacenter": "datacenter:1",
    "home broadband": "home broadband:1",
    "mobile": "4G:0.5,5G:0.3,3G:0.2",
}


@dataclass(frozen=True)
class LeverRun:
    """What one seed of a study setting needed to reach L*, per round and per sampled client."""

    rounds: int  # rounds until its test loss reached L*
    down_bytes: int  # payload bytes a sampled client downloaded a round (mean over those rounds)
    up_bytes: int  # payload bytes a sampled client uploaded a round
    client_seconds: float  # a client's compute + encode + decode seconds a round, measured on this machine
    clients: int  # clients in the federation
    fraction: float  # fraction sampled a round


def time_to_target(run: LeverRun, mix: str, calibration: Calibration, trials: int = 200, seed: int = 0) -> float:
    """Seconds until `run` reaches L* on a fleet of `run.clients` clients of the profile `mix` (sum of the
    rounds' median close times)."""
    fleet = fleet_from_mix(mix, run.clients, run.client_seconds)
    cfg = PlanConfig(run.down_bytes, run.up_bytes, 1, run.fraction, rounds=run.rounds, trials=trials, seed=seed,
                     calibration=calibration, turns=True)  # fmt: skip
    return float(plan(fleet, cfg)["seconds_median"])


def lever_table(runs: dict[tuple[str, str], list[LeverRun]], calibration: Calibration) -> list[dict]:
    """Per (regime, setting) and fleet: the mean and sd over its seeds of the time to L* (every seed reached)."""
    import numpy as np

    rows = []
    for (regime, setting), seeds in runs.items():
        for fleet, mix in FLEETS.items():
            times = np.array([time_to_target(r, mix, calibration) for r in seeds])
            sd = float(times.std(ddof=1)) if len(times) > 1 else 0.0
            rows.append({"regime": regime, "setting": setting, "fleet": fleet, "seeds": len(times),
                         "seconds_mean": float(times.mean()), "seconds_sd": sd})  # fmt: skip
    return rows
