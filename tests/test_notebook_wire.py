"""Notebook L5c runs headless (2 SuperNodes x 1 round): simulation and deployment agree, wire is measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import papermill

from conftest import MESSAGE_BYTES, assert_clean_and_paired
from fedbandwidth.wire.commands import PROJECT

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5c_On_the_Wire.ipynb"
SCRIPT = NOTEBOOKS / "L5c_On_the_Wire.py"


def rows(path: Path) -> list[dict]:
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


def test_notebook_runs_the_app_in_simulation_and_deployment(tmp_path):
    parameters = {
        "num_supernodes": 2,
        "num_rounds": 1,
        "out_dir": str(tmp_path),
        "run_tls": False,
    }  # test_deploy.py runs TLS deployments; this keeps CI under budget
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "L5c.out.ipynb"),
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        parameters=parameters,
    )

    for engine in ("simulation", "deployment"):
        ledger = rows(tmp_path / engine / "ledger.csv")
        assert len(ledger) == 4 and {int(r["payload_bytes"]) for r in ledger} == {MESSAGE_BYTES}, engine
        summary = json.loads((tmp_path / engine / "summary.json").read_text())
        assert summary["run"]["status"] == "finished:completed", engine
        assert summary["total_bytes"] == summary["predicted_bytes"] == 4 * MESSAGE_BYTES
    assert not (tmp_path / "tls").exists()  # run_tls=False skipped the TLS deployment
    flwr_run = (tmp_path / "simulation" / "logs" / "flwr-run.log").read_text().splitlines()[0].split()
    assert flwr_run[2:4] == ["run", str(PROJECT)]  # `flwr run .` in the project folder
    assert (tmp_path / "simulation" / "flwr_home" / "local-superlink" / "superlink.log").exists()
    assert processes_with_flwr_home_under(tmp_path) == []  # local SuperLink, SuperLink, SuperNodes: gone
    wire = rows(tmp_path / "payload_vs_wire.csv")
    assert [(r["partition"], r["direction"]) for r in wire] == [("0", "down"), ("0", "up"), ("1", "down"), ("1", "up")]
    for row in wire:
        payload, wire_bytes = int(row["payload_bytes"]), int(row["wire_bytes"])
        assert payload == MESSAGE_BYTES
        if row["direction"] == "down":
            assert payload <= wire_bytes <= 1.03 * payload
    for figure in ("payload_vs_wire.png", "round_time.png"):
        assert (tmp_path / figure).stat().st_size > 10_000, figure


def test_committed_notebook_is_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
