"""Notebook L5d runs headless (where the browser test does not run it): SecAgg+, packing, dropout, DP; clean."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
from notebook_checks import L5D, check_l5d

from conftest import assert_clean_and_paired

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5d_What_Privacy_Costs.ipynb"
SCRIPT = NOTEBOOKS / "L5d_What_Privacy_Costs.py"


def outputs_text(notebook) -> str:
    """Every text output of an executed notebook, joined."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(str(output.get("text") or output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_notebook_measures_secagg_packing_dropout_and_dp(tmp_path):
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "L5d.out.ipynb"),
        parameters=L5D,
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    check_l5d(tmp_path, outputs_text(nbformat.read(tmp_path / "L5d.out.ipynb", as_version=4)))


def test_notebook_is_committed_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
