"""What a run of a notebook leaves in its out_dir and prints (L5, L5b, L5c, L5d): one check, whichever runner ran it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

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
L5B = {"num_supernodes": 2, "num_rounds": 1, "local_steps": 1, "codecs": ["int8", "layers:-gpt_neox.embed_in.weight"]}
L5D = {"model": TINY, "num_nodes": 3, "num_rounds": 1, "big_models": ["pythia-160m"]}  # both runners stage L5d so
FROZEN_UP_BYTES = 6_869_464  # L5b's upload without the 4,096-row input embedding: the 75 other tensors, 1.31x fewer


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


def l5b_parameters(out: Path) -> dict:
    """L5B, with a complete hand-made study (tests/test_study.py's) written into `out` as the study it reads."""
    from test_study import complete_frame

    from fedbandwidth.compress.study import study_frame, study_summary

    out.mkdir(parents=True, exist_ok=True)
    frame = complete_frame()
    study_frame(frame).to_csv(out / "study.csv", index=False)
    summary = {**study_summary(frame), "complete": True, "pending": [], "resume": "python study.py"}
    (out / "summary.json").write_text(json.dumps(summary))
    return {**L5B, "study_csv": str(out / "study.csv"), "summary_json": str(out / "summary.json")}


def check_l5b(out: Path, text: str) -> None:
    """L5b counted the dead vocabulary, read the complete study, and trained with the frozen embedding's uploads."""
    from fedbandwidth.compress.chain import parse_codec
    from fedbandwidth.compress.encoding import encode, payload_bytes
    from fedbandwidth.compress.task import model_shapes

    assert "107 distinct byte values" in text and "= 91.3%" in text  # the dead vocabulary, computed
    assert "scratch: best by total bytes int8" in text and "complete: True" in text  # a measured study's cells
    ledger = rows(out / "ledger.csv")
    assert [r["direction"] for r in ledger].count("up") == 2 and len(ledger) == 4
    zeros = {k: np.zeros(s, np.float32) for k, s in model_shapes().items()}
    frozen = payload_bytes(encode(parse_codec("layers:-gpt_neox.embed_in.weight"), zeros).arrays)
    assert {int(r["payload_bytes"]) for r in ledger if r["direction"] == "up"} == {frozen} == {FROZEN_UP_BYTES}


def check_l5d(out: Path, text: str) -> None:
    """L5d measured SecAgg+ (bit-identical, the masked uploads' int64 bytes), packing, a dropout and DP."""
    assert "aggregate bit-identical: True" in text and "(0.500x)" in text
    assert "round completed: True" in text
    assert "11107401" in text  # tiny-gptneox's 3 masked uploads, int64: 3 x 3,702,467 B
    assert "central-client-adaptive" in text


BROWSER_TEST = "test_out_dir_after_run_all_passes_the_headless_checks"  # tests/test_browser.py's, per stem
# notebook stem -> (its small parameters from its out_dir, the check of its out_dir and printed text, the headless
# test the browser run replaces)
BROWSER_CHECKED = {
    "L5_Bandwidth": (lambda out: L5, lambda out, text: check_l5(out), "test_notebook_measures_the_predicted_bytes"),
    "L5b_Reducing_Bandwidth": (l5b_parameters, check_l5b,
                               "test_notebook_trains_with_a_codec_records_encoded_bytes_and_counts_dead_rows"),
    "L5c_On_the_Wire": (lambda out: L5C, lambda out, text: check_l5c_with_echo(out),
                        "test_notebook_runs_the_app_in_simulation_and_on_emulated_links"),
    "L5d_What_Privacy_Costs": (lambda out: L5D, check_l5d, "test_notebook_measures_secagg_packing_dropout_and_dp"),
}  # fmt: skip
