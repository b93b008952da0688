"""Notebook L5b runs headless (where the browser test does not run it), measures encoded bytes, is committed clean."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest
from notebook_checks import check_l5b, l5b_parameters

from conftest import assert_clean_and_paired

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5b_Reducing_Bandwidth.ipynb"
SCRIPT = NOTEBOOKS / "L5b_Reducing_Bandwidth.py"


def run_notebook(out_dir: Path, **parameters):
    """Execute L5b through papermill with `parameters`; outputs go under `out_dir`."""
    return papermill.execute_notebook(
        str(NOTEBOOK),
        str(out_dir / "L5b.out.ipynb"),
        parameters={"out_dir": str(out_dir), **parameters},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )


def printed(notebook) -> str:
    """Everything the executed notebook's cells printed."""
    return "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))


def test_notebook_trains_with_a_codec_records_encoded_bytes_and_counts_dead_rows(tmp_path):
    notebook = run_notebook(tmp_path, **l5b_parameters(tmp_path))
    check_l5b(tmp_path, printed(notebook))


def test_bad_codec_is_named_before_anything_runs(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook(tmp_path, codecs=["int3"])
    assert error.value.ename == "ConfigError" and "unknown codec 'int3'" in str(error.value)
    assert not (tmp_path / "ledger.csv").exists()


def test_committed_notebook_is_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
