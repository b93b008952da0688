import json
import subprocess
import sys

import pytest

from conftest import LEGACY_MESSAGE_BYTES, PARAMETERS, TENSOR_BYTES, run_cli_probe


def run_cli(*args):
    """Run `fedbandwidth simulate ARGS` in a fresh interpreter; (stdout, stderr)."""
    return run_cli_probe("simulate", *args)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--supernodes", "0"], "argument --supernodes: must be >= 1, got 0"),
        (["--supernodes", "-3"], "argument --supernodes: must be >= 1, got -3"),
        (["--rounds", "0"], "argument --rounds: must be >= 1, got 0"),
        (["--fraction", "1.5"], "argument --fraction: must lie in (0, 1], got 1.5"),
        (["--fraction", "-0.1"], "argument --fraction: must lie in (0, 1], got -0.1"),
        (["--supernodes", "two"], "argument --supernodes: must be a whole number, got 'two'"),
        (["--rounds", "1.5"], "argument --rounds: must be a whole number, got '1.5'"),
        (["--api", "grpc"], "argument --api: invalid choice: 'grpc'"),
        (["--backend", "dask"], "argument --backend: invalid choice: 'dask'"),
        (["--out", "/proc/no/such/dir"], "--out '/proc/no/such/dir' is not writable"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_ray(args, needle):
    stdout, stderr = run_cli(*args)
    assert stdout.split() == ["2", "False", "False"]  # exit code 2; Ray never imported
    assert stderr.count("\n") == 1 and needle in stderr and "Traceback" not in stderr


def test_out_under_a_file_is_rejected(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    stdout, stderr = run_cli("--out", str(blocker / "sub"))
    assert stdout.split()[0] == "2" and "is not writable" in stderr


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "simulate", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--supernodes" in done.stdout and "--json" in done.stdout


def test_simulate_json_end_to_end(tmp_path):
    """One real run: JSON on stdout only, exact bytes, CSV and (with --plot) PNG written."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedbandwidth",
            "simulate",
            "--supernodes",
            "3",
            "--rounds",
            "2",
            "--fraction",
            "0.5",
            "--out",
            str(tmp_path),
            "--json",
            "--plot",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["model"] == {
        "name": "pythia-14m",
        "parameters": PARAMETERS,
        "tensor_bytes": TENSOR_BYTES,
        "message_payload_bytes": LEGACY_MESSAGE_BYTES,
    }
    assert report["rounds"] == [
        {
            "round": r,
            "nodes": 2,
            "down_bytes": 2 * LEGACY_MESSAGE_BYTES,
            "up_bytes": 2 * LEGACY_MESSAGE_BYTES,
            "total_bytes": 4 * LEGACY_MESSAGE_BYTES,
        }
        for r in (1, 2)
    ]
    assert report["total_bytes"] == report["predicted_bytes"] == 8 * LEGACY_MESSAGE_BYTES
    assert report["course_formula_bytes"] == 2 * TENSOR_BYTES * 3 * 0.5 * 2
    assert (tmp_path / "bandwidth_per_round.png").stat().st_size > 10_000
    assert len((tmp_path / "ledger.csv").read_text().splitlines()) == 1 + 8
    report_run = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "report", str(tmp_path / "ledger.csv")], capture_output=True, text=True
    )
    assert f"total {8 * LEGACY_MESSAGE_BYTES:,} B" in report_run.stdout
