"""benchmarks/compression_study.py's plan meets issue 16's design, and leaves out what `train` refuses."""

import importlib
import json
from pathlib import Path

import pytest

from conftest import benchmark_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compression_study.py"


@pytest.fixture(scope="module")
def study():
    """The study script as a module."""
    return benchmark_script("compression_study")


def test_the_plan_tunes_the_reference_and_runs_enough_seeds(study):
    plan = study.PLAN
    assert set(plan.regimes) == {"scratch", "warm-start"}
    assert all(len(lrs) >= 4 for lrs in plan.tuning_lrs.values()) and len(plan.splits) >= 2
    assert len({r * s for r, s in plan.splits}) == 1  # the same local-step budget, split differently
    assert len(plan.reference_seeds) >= 5 and len(plan.seeds) >= 3 and len(plan.seeds + plan.top_seeds) >= 5
    assert plan.top >= 3 and plan.lever_lrs >= 3


def test_the_settings_table_holds_every_lever_once(study):
    names = [s.name for s in study.SETTINGS]
    assert len(names) == len(set(names))
    argvs = [" ".join(s.argv) for s in study.SETTINGS]
    for lever in (
        "fp16",
        "int8",
        "delta+int4:64",
        "delta+topk:0.01",
        "delta+dgc:0.001",
        "--zeroth-seeds",
        "lowrank:4+int4",
        "lowrank:16+int4",
        "layers:-gpt_neox.embed_in.weight",
        "--fraction 0.4",
        "--supernodes 10 --fraction 0.5",
        "--down-codec fp16",
        "--down-codec int8",
        "--lora-rule fedit",
    ):
        assert any(lever in a for a in argvs), lever  # fmt: skip
    adapters = [s for s in study.SETTINGS if "--lora-rank" in s.argv]
    assert {s.argv[s.argv.index("--lora-rank") + 1] for s in adapters} == {"4", "16"}
    assert all(s.regimes == ("warm-start",) for s in adapters)


def test_a_setting_train_refuses_is_named_with_trains_own_error(study):
    assert study.refusal(["train", "--preset", "ci", "--up-codec", "int8"]) is None
    assert "unrecognized arguments: --no-such-flag" in study.refusal(["train", "--preset", "ci", "--no-such-flag"])
    assert "unknown codec 'int3'" in study.refusal(["train", "--preset", "ci", "--up-codec", "int3"])


def test_the_readme_table_is_replaced_in_place_and_nothing_else(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    study = importlib.import_module("benchlib")
    text = "intro\n\n| a | b |\n|---|---|\n| old | 1 |\n| stale | 2 |\n\nafter\n"
    new = study.replace_table(text, ["| a | b |", "|---|---|", "| new | 3 |"])
    assert new == "intro\n\n| a | b |\n|---|---|\n| new | 3 |\n\nafter\n"
    assert study.replace_table(new, ["| a | b |", "|---|---|", "| new | 3 |"]) == new  # idempotent


def test_a_sweep_of_one_regime_runs_only_its_runs(study, monkeypatch, tmp_path):
    monkeypatch.setattr(study, "CSV_PATH", tmp_path / "study.csv")
    seen = []
    monkeypatch.setattr(study, "run_train", lambda argv, seed: seen.append(argv[2]) or (_ for _ in ()).throw(
        RuntimeError("not run here")))  # fmt: skip
    assert study.sweep(study.PLAN, minutes=60, regime="warm-start") is False
    assert seen and set(seen) == {"warm-start"}  # each planned warm-start run was tried (and failed), no scratch one
    seen.clear()
    assert study.sweep(study.PLAN, minutes=60, setting="no such setting") is False and seen == []


def test_the_summary_records_the_pinned_warm_start_without_building_it(study, monkeypatch, tmp_path):
    monkeypatch.setattr(study, "RESULTS", tmp_path)
    monkeypatch.chdir(tmp_path)  # no build/ here: nothing is pre-trained
    assert study.warm_start_block() == {}
    pinned = study.pinned_checkpoint()
    pinned.parent.mkdir()
    pinned.write_bytes(b"weights"), pinned.with_suffix(".json").write_text('{"step": [100, 200], "flattened": true}')
    block = study.warm_start_block()
    assert block == {
        "checkpoint": pinned.name,
        "sha256": study.sha256_of(pinned),
        "step": [100, 200],
        "flattened": True,
    }
    assert not (tmp_path / "build").exists()


def test_the_warm_start_is_pinned_so_every_warm_start_row_trains_from_the_same_checkpoint(study, tmp_path):
    built, pinned = tmp_path / "build" / "w.npz", tmp_path / "results" / "w.npz"
    built.parent.mkdir()
    built.write_bytes(b"built here"), built.with_suffix(".json").write_text('{"step": [1700]}')
    first = study.pin_checkpoint(built, pinned)  # none pinned yet: the one built here is
    assert pinned.read_bytes() == b"built here" and first == study.sha256_of(built)
    assert json.loads(pinned.with_suffix(".json").read_text()) == {"step": [1700]}
    built.write_bytes(b"another CPU"), built.with_suffix(".json").write_text('{"step": [1900]}')
    assert study.pin_checkpoint(built, pinned) == first  # a rebuild elsewhere is replaced by the pinned one
    assert built.read_bytes() == b"built here" and built.with_suffix(".json").read_text() == '{"step": [1700]}'
    built.unlink()
    assert study.pin_checkpoint(built, pinned) == first and built.read_bytes() == b"built here"
