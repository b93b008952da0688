"""`simulate --secagg` and `predict --secagg`: stages in --json, bad input refused in one line, the 2 GiB ceiling."""

import json

import pytest

from conftest import PARAMETERS, run_cli_probe
from fedbandwidth.cli import main
from fedbandwidth.ledger import Ledger
from fedbandwidth.privacy.stages import STAGE_FIELDS

MASKED_UPLOAD = 26 + 20 + 13 + 77 * 128 + 8 * (PARAMETERS + 1)  # pythia-14m: status, weight, int64 .npy of 77 arrays


@pytest.mark.parametrize(
    "command,args,needle",
    [
        ("simulate", ["--secagg", "--supernodes", "3", "--secagg-shares", "5"], "--secagg-shares must be <="),
        ("simulate", ["--secagg", "--supernodes", "5", "--secagg-threshold", "4"], "--secagg-threshold must be <"),
        ("simulate", ["--secagg-pack"], "--secagg-pack needs --secagg"),
        ("simulate", ["--secagg", "--supernodes", "3", "--api", "message"], "--api must be legacy with --secagg"),
        ("simulate", ["--secagg", "--supernodes", "3", "--model", "llama-3.2-1b"], "over Flower's 2 GiB gRPC message"),
        ("predict", ["--secagg", "--supernodes", "2"], "--secagg-shares must be <= --supernodes (2)"),
        ("predict", ["--secagg-pack"], "--secagg-pack needs --secagg"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_anything_starts(command, args, needle):
    stdout, stderr = run_cli_probe(command, *args)
    assert stdout.split() == ["2", "False", "False"]  # exit code 2; neither Ray nor Flower's simulation imported
    assert stderr.count("\n") == 1 and needle in stderr and "Traceback" not in stderr


def test_predict_secagg_json_for_pythia(capsys):
    assert main(["predict", "--secagg", "--supernodes", "10", "--rounds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stages = report["stages"]
    assert len(stages) == 16 and all(tuple(s) == STAGE_FIELDS for s in stages)
    upload = [s for s in stages if s["stage"] == "collect_masked_vectors" and s["direction"] == "up"]
    assert [s["bytes"] for s in upload] == [10 * MASKED_UPLOAD] * 2 and MASKED_UPLOAD == 112_551_619
    assert report["secagg"]["upload_message_bytes"] == MASKED_UPLOAD and not report["secagg"]["over_ceiling"]
    assert report["secagg"]["ceiling_bytes"] == 2**31 - 1
    assert main(["predict", "--secagg", "--secagg-pack", "--supernodes", "3", "--json"]) == 0
    packed = json.loads(capsys.readouterr().out)
    assert packed["secagg"]["upload_message_bytes"] <= MASKED_UPLOAD / 2


def test_simulate_secagg_json_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["simulate", "--secagg", "--model", "tiny-gptneox", "--supernodes", "3", "--json", "--out", str(out)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["stages"]) == 8 and all(tuple(s) == STAGE_FIELDS for s in report["stages"])
    assert all(s["bytes"] == s["predicted_bytes"] for s in report["stages"])
    ledger = Ledger.from_csv(out / "ledger.csv")
    assert ledger.total_bytes() == report["total_bytes"] == sum(s["bytes"] for s in report["stages"])
    assert {t.meter for t in ledger.transfers} == {"grid"} and report["config"]["secagg"]["shares"] == 3


def test_simulate_secagg_text_says_measured_equals_formula(tmp_path, capsys):
    args = ["simulate", "--secagg", "--secagg-pack", "--model", "tiny-gptneox", "--supernodes", "3"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["round", "stage", "dir", "msgs", "bytes", "predicted"] and len(lines) == 1 + 8 + 3
    assert lines[-1].startswith("measured = the formula, every stage")
