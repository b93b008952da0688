"""Shared fixtures: pythia-14m's specs and arrays, built once (no hub, no torch)."""

import os
import shutil

import pytest

os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

# Exact figures of EleutherAI/pythia-14m in float32 (76 tensors).
PARAMETERS = 14_067_712
TENSOR_BYTES = 56_270_848
LEGACY_MESSAGE_BYTES = 56_280_718  # ArrayRecord.count_bytes() with keys "0".."75"
MESSAGE_BYTES = 56_283_760  # ArrayRecord.count_bytes() with state-dict keys


@pytest.fixture(scope="session")
def specs():
    from fedbandwidth.model import tensor_specs

    return tensor_specs("pythia-14m")


@pytest.fixture(scope="session")
def arrays():
    from fedbandwidth.model import random_arrays

    return random_arrays("pythia-14m")


def benchmark_script(name: str):
    """benchmarks/<name>.py as a module (nothing runs on import: the scripts keep their work in main())."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Runs the CLI's main() in a fresh interpreter and prints: exit code, whether Ray and Flower's
# simulation were imported (bad input must be rejected before either is).
CLI_PROBE = """
import sys
from fedbandwidth.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    print(exit.code, "ray" in sys.modules, "flwr.simulation" in sys.modules)
"""


def run_cli_probe(command: str, *args: str) -> tuple[str, str]:
    """Run `fedbandwidth COMMAND ARGS` through main() in a fresh interpreter; (stdout, stderr)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CLI_PROBE, command, *args], capture_output=True, text=True, timeout=120
    )
    return done.stdout, done.stderr


def assert_clean_and_paired(notebook_path, script_path) -> None:
    """A committed notebook holds no outputs, starts with a `parameters` cell, and matches its script."""
    import jupytext
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].metadata.get("tags") == ["parameters"]
    script = jupytext.read(script_path)
    assert [(c.cell_type, c.source) for c in notebook.cells] == [(c.cell_type, c.source) for c in script.cells]


def processes_with_flwr_home(flwr_home, under: bool = False):
    """Live processes whose environment has FLWR_HOME=`flwr_home` (every Flower process of one run), or with
    `under`, any FLWR_HOME inside that folder (every Flower process of all the runs a notebook started)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            home = proc.environ().get("FLWR_HOME", "")
            mine = home.startswith(str(flwr_home)) if under else home == str(flwr_home)
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


BROWSER_HOWTO = (
    "the browser tests (pytest -m browser) need Debian's Chromium: run `make browser` (apt-get install chromium, "
    "as root), then `make test`; .ci/run does both"
)


@pytest.hookimpl(trylast=True)  # after `-m` / `-k` deselection: only the tests that will run are in `items`
def pytest_collection_modifyitems(config, items):
    """Skip the `browser` tests where Chromium is missing, unless FEDBANDWIDTH_BROWSER=required (as in CI)."""
    if shutil.which("chromium") or os.environ.get("FEDBANDWIDTH_BROWSER") == "required":
        skip_what_the_browser_checks(items)
        return
    skip = pytest.mark.skip(reason="Chromium is not installed; " + BROWSER_HOWTO)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


def skip_what_the_browser_checks(items) -> None:
    """A notebook runs once: where the browser test runs it and checks its out_dir, its headless run is skipped."""
    from notebook_checks import BROWSER_CHECKED, BROWSER_TEST

    names = {item.name for item in items}
    replaced = {headless for stem, (_, _, headless) in BROWSER_CHECKED.items() if f"{BROWSER_TEST}[{stem}]" in names}
    skip = pytest.mark.skip(reason="run in JupyterLab: tests/test_browser.py makes the same checks on its out_dir")
    for item in items:
        if item.name in replaced:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end, that the browser tests were skipped and how to run them."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "browser" in r.keywords]
    if skipped:
        terminalreporter.write_sep("=", f"{len(skipped)} browser tests SKIPPED: Chromium is not installed", yellow=True)
        terminalreporter.write_line(BROWSER_HOWTO)


def start_deploy(out, *args: str):
    """`fedbandwidth deploy --out OUT ARGS` in the background; return its Popen once `flwr run` has started."""
    import subprocess
    import sys
    import time

    running = subprocess.Popen(
        [sys.executable, "-m", "fedbandwidth", "deploy", "--out", str(out), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "logs" / "flwr-run.log").exists() and running.poll() is None:
        assert time.monotonic() < deadline, "the deployment did not start"
        time.sleep(0.1)
    return running
