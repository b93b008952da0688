"""The lesson notebook: it runs headless with tiny parameters, measures exact bytes, and is committed clean."""

from __future__ import annotations

import csv
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from fedbandwidth.model import tensor_specs
from fedbandwidth.theory import predict

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "L5_Bandwidth.ipynb"
SCRIPT = NOTEBOOKS / "L5_Bandwidth.py"
LEGACY_TOTAL_2x1 = 225_122_872  # 2 nodes x 1 round: 4 messages x 56,280,718 B (legacy API keys "0".."75")


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


def csv_column_sum(path: Path, column: str) -> tuple[int, int]:
    """(number of rows, sum of an integer column) of a ledger CSV."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(int(row[column]) for row in rows)


def cell_sources(notebook) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, the part of a notebook its paired script holds."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_notebook_measures_the_predicted_bytes(tmp_path):
    run_notebook(tmp_path, num_supernodes=2, num_rounds=1)

    rows, total = csv_column_sum(tmp_path / "ledger.csv", "payload_bytes")
    assert rows == 4  # 2 nodes x (down + up) x 1 round
    assert total == LEGACY_TOTAL_2x1
    assert total == predict(tensor_specs("pythia-14m"), 2, 1, api="legacy").total_bytes

    rows, message_total = csv_column_sum(tmp_path / "ledger_message.csv", "payload_bytes")
    assert rows == 4
    assert message_total == predict(tensor_specs("pythia-14m"), 2, 1, api="message").total_bytes

    for figure in ("bandwidth_per_round.png", "tensor_breakdown.png"):
        png = tmp_path / figure
        assert png.exists() and png.stat().st_size > 0, figure


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
