"""What a run of notebook L5c leaves in its out_dir: one check, whichever runner ran it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fedbandwidth.model import tensor_specs
from fedbandwidth.theory import predict
from fedbandwidth.wire.commands import PROJECT

TINY = "tiny-gptneox"  # 1.85 MB a message: the notebook's deployments take seconds
TINY_BYTES = predict(tensor_specs(TINY), 1, 1, api="message").message_payload_bytes
APP_BYTES = 400_000  # more than the app (FAB) a node fetches with its first message
PAIRS = [("0", "down"), ("0", "up"), ("1", "down"), ("1", "up")]  # (node, direction) of 2 nodes x 1 round
L5C = {"model": TINY, "links": "50/20/10,100/50/5", "run_tls": False}  # both runners stage L5c with these


def rows(path: Path) -> list[dict]:
    """A CSV file's rows as dicts."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def processes_with_flwr_home_under(folder: Path) -> list[int]:
    """Live processes whose FLWR_HOME lies under `folder` (every Flower process the notebook started)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            home = proc.environ().get("FLWR_HOME", "")
            if home.startswith(str(folder)) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def check_engines(out: Path) -> None:
    """Simulation and deployment moved the same exact bytes, `flwr run .` ran, no Flower process is left."""
    for engine in ("simulation", "deployment"):
        ledger = rows(out / engine / "ledger.csv")
        assert len(ledger) == 4 and {int(r["payload_bytes"]) for r in ledger} == {TINY_BYTES}, engine
        summary = json.loads((out / engine / "summary.json").read_text())
        assert summary["run"]["status"] == "finished:completed", engine
        assert summary["total_bytes"] == summary["predicted_bytes"] == 4 * TINY_BYTES
    assert not (out / "tls").exists()  # skipped as asked
    flwr_run = (out / "simulation" / "logs" / "flwr-run.log").read_text().splitlines()[0].split()
    assert flwr_run[2:4] == ["run", str(PROJECT)]  # `flwr run .` in the project folder
    assert (out / "simulation" / "flwr_home" / "local-superlink" / "superlink.log").exists()
    assert processes_with_flwr_home_under(out) == []  # local SuperLink, SuperLink, SuperNodes: gone


def check_wire_and_time(out: Path, shaped: bool) -> None:
    """Wire bytes a little above payload both ways; with shaped links, measured time between formula and 3x model."""
    wire = rows(out / "payload_vs_wire.csv")
    assert [(r["partition"], r["direction"]) for r in wire] == PAIRS
    for row in wire:  # perturbed replies: every byte goes up, so wire >= payload both ways
        assert TINY_BYTES <= int(row["wire_bytes"]) <= 1.05 * TINY_BYTES + APP_BYTES, row
    timing = rows(out / "timing.csv")
    assert sorted((r["node"], r["direction"]) for r in timing) == PAIRS
    if shaped:
        for row in timing:
            measured, formula = float(row["measured_seconds"]), float(row["formula_seconds"])
            assert 0.9 * formula <= measured <= 3 * float(row["predicted_seconds"]), row
        kernel = rows(out / "kernel_vs_relay.csv")
        assert len(kernel) == 4 and all(abs(float(r["unexplained"])) < 0.005 for r in kernel)
    for figure in ("payload_vs_wire.png", "timeline.png", "lever_times.png"):
        assert (out / figure).stat().st_size > 10_000, figure


def check_l5c(out: Path, shaped: bool) -> None:
    """Every check of an L5c run (2 SuperNodes x 1 round of tiny-gptneox) on its out_dir."""
    check_engines(out)
    check_wire_and_time(out, shaped)
