"""Notebook L5c runs headless (2 SuperNodes x 1 round) where the browser test does not run it: same checks."""

from __future__ import annotations

from pathlib import Path

import papermill
from notebook_checks import L5C, check_l5c

from conftest import assert_clean_and_paired
from fedbandwidth.wire.network import emulation_problem

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5c_On_the_Wire.ipynb"
SCRIPT = NOTEBOOKS / "L5c_On_the_Wire.py"


def test_notebook_runs_the_app_in_simulation_and_on_emulated_links(tmp_path):
    problem = emulation_problem()
    if problem:
        print(f"L5c runs on loopback here, its timing is not checked: {problem}")
    parameters = {
        "num_supernodes": 2,
        "num_rounds": 1,
        **L5C,  # tiny-gptneox on two shaped links, no TLS (test_deploy.py and test_emulated.py run TLS deployments)
        "links": "" if problem else L5C["links"],
        "out_dir": str(tmp_path),
        "run_dedup": False,  # the echo run: the browser test (tests/test_browser.py) runs it
    }
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "L5c.out.ipynb"),
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
        parameters=parameters,
    )

    assert not (tmp_path / "echo").exists()  # the echo run: the browser test runs it
    check_l5c(tmp_path, shaped=not problem)


def test_committed_notebook_is_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
