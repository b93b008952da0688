"""Notebook L5b runs headless with small parameters, measures encoded bytes, and is committed clean."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import papermill
import pytest

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


def hand_made_study(out_dir: Path) -> dict:
    """A complete hand-made study (tests/test_study.py's) as a CSV and its summary JSON; the notebook's paths."""
    import json

    from test_study import complete_frame

    from fedbandwidth.compress.study import study_frame, study_summary

    frame = complete_frame()
    study_frame(frame).to_csv(out_dir / "study.csv", index=False)
    summary = {**study_summary(frame), "complete": True, "pending": [], "resume": "python study.py"}
    (out_dir / "summary.json").write_text(json.dumps(summary))
    return {"study_csv": str(out_dir / "study.csv"), "summary_json": str(out_dir / "summary.json")}


def test_notebook_trains_with_a_codec_records_encoded_bytes_and_counts_dead_rows(tmp_path):
    from fedbandwidth.compress.chain import parse_codec
    from fedbandwidth.compress.encoding import encode, payload_bytes
    from fedbandwidth.compress.task import model_shapes

    notebook = run_notebook(
        tmp_path,
        num_supernodes=2,
        num_rounds=1,
        local_steps=1,
        codecs=["int8", "layers:-gpt_neox.embed_in.weight"],
        **hand_made_study(tmp_path),
    )
    text = printed(notebook)
    assert "107 distinct byte values" in text and "= 91.3%" in text  # the dead vocabulary, computed
    assert "scratch: best by total bytes int8" in text and "complete: True" in text  # a measured study's cells
    with (tmp_path / "ledger.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["direction"] for r in rows].count("up") == 2 and len(rows) == 4
    zeros = {k: np.zeros(s, np.float32) for k, s in model_shapes().items()}
    frozen = payload_bytes(encode(parse_codec("layers:-gpt_neox.embed_in.weight"), zeros).arrays)
    assert {int(r["payload_bytes"]) for r in rows if r["direction"] == "up"} == {frozen}
    assert frozen == 6_869_464  # the 75 tensors left when the 4,096-row input embedding stays home: 1.31x fewer


def test_bad_codec_is_named_before_anything_runs(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebook(tmp_path, codecs=["int3"])
    assert error.value.ename == "ConfigError" and "unknown codec 'int3'" in str(error.value)
    assert not (tmp_path / "ledger.csv").exists()


def test_committed_notebook_is_clean_and_paired():
    assert_clean_and_paired(NOTEBOOK, SCRIPT)
