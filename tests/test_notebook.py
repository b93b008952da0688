"""The lesson notebook: it runs headless (where the browser test does not run it), measures exact bytes, is clean."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
from notebook_checks import L5, check_l5

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5_Bandwidth.ipynb"
SCRIPT = NOTEBOOKS / "L5_Bandwidth.py"


def run_notebook(out_dir: Path, **parameters) -> nbformat.NotebookNode:
    """Execute the lesson through papermill with `parameters`; outputs go under `out_dir`."""
    return papermill.execute_notebook(
        str(NOTEBOOK),
        str(out_dir / "L5_Bandwidth.out.ipynb"),
        parameters={"out_dir": str(out_dir), **parameters},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )


def cell_sources(notebook) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, the part of a notebook its paired script holds."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_notebook_measures_the_predicted_bytes(tmp_path):
    run_notebook(tmp_path, **L5)
    check_l5(tmp_path)


def test_bad_parameter_is_named_before_the_model_loads(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook(tmp_path, num_supernodes=0)
    assert error.value.ename == "ConfigError"
    assert "num_supernodes" in str(error.value)
    assert not (tmp_path / "ledger.csv").exists()  # stopped before anything ran


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert code[0].metadata.get("tags") == ["parameters"]


def test_notebook_and_paired_script_agree():
    from_ipynb = nbformat.read(NOTEBOOK, as_version=4)
    from_script = jupytext.read(SCRIPT)
    assert cell_sources(from_ipynb) == cell_sources(from_script)
