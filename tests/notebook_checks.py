"""What a run of a notebook leaves in its out_dir (L5, L5c): one check, whichever runner ran it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import processes_with_flwr_home
from fedbandwidth.model import tensor_specs
from fedbandwidth.theory import predict
from fedbandwidth.wire.commands import PROJECT

TINY = "tiny-gptneox"  # 1.85 MB a message: the notebook's deployments take seconds
TINY_BYTES = predict(tensor_specs(TINY), 1, 1, api="message").message_payload_bytes
APP_BYTES = 400_000  # more than the app (FAB) a node fetches with its first message
PAIRS = [("0", "down"), ("0", "up"), ("1", "down"), ("1", "up")]  # (node, direction) of 2 nodes x 1 round
LEGACY_TOTAL_2x1 = 225_122_872  # L5, 2 nodes x 1 round: 4 messages x 56,280,718 B (legacy API keys "0".."75")
L5 = {"num_supernodes": 2, "num_rounds": 1}  # both runners stage L5 with these
L5C = {"model": TINY, "links": "50/20/10,100/50/5", "run_tls": False}  # both runners stage L5c with these


def rows(path: Path) -> list[dict]:
    """A CSV file's rows as dicts."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


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
    assert processes_with_flwr_home(out, under=True) == []  # local SuperLink, SuperLink, SuperNodes: gone


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


def column_sum(path: Path, column: str) -> tuple[int, int]:
    """(number of rows, sum of an integer column) of a ledger CSV."""
    found = rows(path)
    return len(found), sum(int(row[column]) for row in found)


def check_l5(out: Path) -> None:
    """The lesson's two ledgers (legacy and Message API, 2 nodes x 1 round) hold the predicted bytes; figures drawn."""
    count, total = column_sum(out / "ledger.csv", "payload_bytes")
    assert count == 4  # 2 nodes x (down + up) x 1 round
    assert total == LEGACY_TOTAL_2x1 == predict(tensor_specs("pythia-14m"), 2, 1, api="legacy").total_bytes
    count, message_total = column_sum(out / "ledger_message.csv", "payload_bytes")
    assert count == 4
    assert message_total == predict(tensor_specs("pythia-14m"), 2, 1, api="message").total_bytes
    for figure in ("bandwidth_per_round.png", "tensor_breakdown.png"):
        assert (out / figure).stat().st_size > 0, figure


def check_l5c_with_echo(out: Path) -> None:
    """An L5c run with the echo experiment (as JupyterLab runs it): every check, and the echo deployment ran."""
    from fedbandwidth.wire.network import emulation_problem

    check_l5c(out, shaped=not emulation_problem())
    assert json.loads((out / "echo" / "summary.json").read_text())["run"]["status"] == "finished:completed"


BROWSER_TEST = "test_out_dir_after_run_all_passes_the_headless_checks"  # tests/test_browser.py's, per stem
# notebook stem -> (its small parameters, the check of its out_dir, the headless test the browser run replaces)
BROWSER_CHECKED = {
    "L5_Bandwidth": (L5, check_l5, "test_notebook_measures_the_predicted_bytes"),
    "L5c_On_the_Wire": (L5C, check_l5c_with_echo, "test_notebook_runs_the_app_in_simulation_and_on_emulated_links"),
}
