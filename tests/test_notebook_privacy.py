"""Notebook L5d runs headless with small parameters (SecAgg+, packing, dropout, DP) and is committed clean."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill

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
        parameters={"model": "tiny-gptneox", "num_nodes": 3, "num_rounds": 1, "big_models": ["pythia-160m"]},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    text = outputs_text(nbformat.read(tmp_path / "L5d.out.ipynb", as_version=4))
    assert "aggregate bit-identical: True" in text and "(0.500x)" in text
    assert "round completed: True" in text
    assert "11107401" in text  # tiny-gptneox's 3 masked uploads, int64: 3 x 3,702,467 B
    assert "central-client-adaptive" in text


def test_notebook_is_committed_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
