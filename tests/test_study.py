"""The compression study's numbers: bytes to target on hand-made curves, early stopping, the summary's schema."""

import json

import pandas as pd
import pytest

from fedbandwidth.compress.study import rerun_differences, study_summary, target_loss
from fedbandwidth.compress.train_report import bytes_to_target


def test_bytes_to_target_counts_up_to_the_first_round_at_or_below_it():
    rounds = [{"round": r, "up_bytes": 100 * r, "eval_loss": loss} for r, loss in enumerate([3.5, 3.0, 2.9, 3.1], 1)]
    assert bytes_to_target(rounds, 3.0) == (2, 300)  # rounds 1 and 2: 100 + 200 bytes
    assert bytes_to_target(rounds, 2.95) == (3, 600)  # the first round below, not the best one
    assert bytes_to_target(rounds, 2.5) == (None, None)  # never reached: reported as such


def test_a_run_chasing_the_target_stops_after_reaching_it_and_its_rounds():
    from fedbandwidth.compress.training import TrainConfig, should_stop

    cfg = TrainConfig(rounds=3, target_loss=2.0, max_rounds=6)
    assert not should_stop(cfg, {0: 9, 1: 1.9, 2: 1.8})  # reached, but not yet `rounds` rounds
    assert should_stop(cfg, {0: 9, 1: 3, 2: 3, 3: 1.9}) and not should_stop(cfg, {0: 9, 1: 3, 2: 3, 3: 2.1})
    assert should_stop(cfg, {r: 3.0 for r in range(7)})  # max_rounds: a seed that never reaches it stops too
    assert should_stop(TrainConfig(rounds=3), {0: 9, 1: 3, 2: 3, 3: 3})  # no target: after `rounds`


def test_replies_are_averaged_in_partition_order():
    from flwr.app import Message, Metadata, MetricRecord, RecordDict

    from fedbandwidth.compress.messages import partition_order

    def reply(node, partition):
        metadata = Metadata(1, f"m{node}", node, 0, "x", "1", 0.0, 60.0, "train")
        return Message(RecordDict({"metrics": MetricRecord({"partition-id": partition})}), metadata=metadata)

    arrived = [reply(7, 2), reply(3, 0), reply(9, 1)]
    assert [m.metadata.src_node_id for m in sorted(arrived, key=partition_order)] == [3, 9, 7]


def study_frame():
    """Two seeds: a reference (final 2.0, 2.02), a setting reaching L* with both seeds, one with one seed only."""
    rows = []

    def add(setting, phase, seed, final, to_target, up):
        command = json.dumps(["train", "--preset", "scratch"] + ([] if setting == "reference" else ["--x", setting]))
        rows.append(dict(regime="scratch", setting=setting, phase=phase, seed=seed, command=command,
                         final_eval_loss=final, bytes_to_target=to_target, up_bytes=up, rounds_run=2,
                         eval_losses=f"3.0 {final}", up_bytes_per_round=f"{up // 2} {up // 2}"))  # fmt: skip

    for seed, final in ((0, 2.0), (1, 2.02)):
        add("reference", "fixed", seed, final, None, 1000)
        if seed == 0:
            add("reference", "target", seed, final, 1000, 1000)  # a rerun of seed 0
        add("int8", "target", seed, final + 0.001, 250 + 50 * seed, 275)
        add("topk", "target", seed, 2.1, [10, None][seed], 20)
    return pd.DataFrame(rows)


def test_summary_has_the_issues_schema_and_never_drops_a_seed():
    frame = study_frame()
    assert target_loss(frame, "scratch") == pytest.approx(1.01 * 2.01)
    summary = study_summary(frame)
    regime = summary["regimes"]["scratch"]
    assert set(regime) == {"reference", "target_loss", "settings", "best"}
    assert regime["reference"] == {
        "command": ["train", "--preset", "scratch"],
        "seeds": [0, 1],
        "final_loss_mean": pytest.approx(2.01),
        "final_loss_sd": pytest.approx(0.0141421, abs=1e-6),
        "up_bytes_to_target_mean": 1000.0,
    }
    int8, topk = regime["settings"]
    assert set(int8) == {"name", "command", "seeds", "seeds_reaching_target", "up_bytes_to_target_mean",
                         "ratio_to_reference", "final_loss_mean", "final_loss_sd"}  # fmt: skip
    assert (int8["name"], int8["seeds_reaching_target"], int8["up_bytes_to_target_mean"]) == ("int8", 2, 275.0)
    assert int8["ratio_to_reference"] == pytest.approx(1000 / 275) and int8["command"][-1] == "int8"
    assert (topk["seeds"], topk["seeds_reaching_target"], topk["up_bytes_to_target_mean"]) == ([0, 1], 1, None)
    assert topk["ratio_to_reference"] is None and regime["best"] == "int8"  # topk's 100x needs every seed
    json.dumps(summary)  # JSON-ready: plain ints, floats, strings, lists, None


def test_reruns_of_a_seed_compare_round_by_round():
    frame = study_frame()
    frame.loc[(frame.setting == "reference") & (frame.phase == "target"), "eval_losses"] = "3.0 2.0005"
    assert rerun_differences(frame)["scratch"] == pytest.approx(0.0005)


def test_the_references_bytes_to_target_come_from_its_fixed_runs_history():
    from fedbandwidth.compress.study import chase_runs

    frame = study_frame()
    frame.loc[(frame.phase == "fixed") & (frame.seed == 1), "eval_losses"] = "2.03 2.02"  # L* = 2.0301
    rows = chase_runs(frame, "scratch", "reference")
    assert list(rows.phase) == ["fixed", "fixed"]  # never the rerun
    assert list(rows.reached_target_round) == [2, 1] and list(rows.bytes_to_target) == [1000, 500]
    assert study_summary(frame)["regimes"]["scratch"]["reference"]["up_bytes_to_target_mean"] == 750.0
    one_seed = study_summary(frame[(frame.setting != "int8") | (frame.seed == 0)])["regimes"]["scratch"]
    assert one_seed["settings"][0]["ratio_to_reference"] == pytest.approx(750 / 250)
    assert one_seed["best"] is None  # a setting is best only once it has run at every seed of the reference


def test_bytes_to_target_plot_marks_unreached_seeds_and_the_goals():
    from fedbandwidth.compress.study_plots import plot_bytes_to_target

    ax = plot_bytes_to_target(study_frame(), "scratch")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["reference (2 seeds)", "int8 (2 seeds)", "topk (2 seeds)"]
    labels = ax.get_legend_handles_labels()[1]
    assert {"reference (float32)", "100x fewer", "1,000x fewer"} <= set(labels)
    assert any("other tasks" in label for label in labels) and ax.get_xscale() == "log"


def test_summary_table_lists_the_reference_first():
    from fedbandwidth.compress.study import summary_table

    table = summary_table(study_summary(study_frame()), "scratch")
    assert list(table.index) == ["reference", "int8", "topk"]
    assert table.loc["int8", "seeds reaching L*"] == "2/2" and table.loc["topk", "seeds reaching L*"] == "1/2"
    assert table.loc["reference", "x fewer than float32"] == 1.0 and pd.isna(table.loc["topk", "x fewer than float32"])


def test_findings_markdown_gives_mean_sd_ratio_and_names_seeds_that_missed():
    from fedbandwidth.compress.study import findings_markdown

    frame = study_frame()
    lines = findings_markdown(study_summary(frame), frame)
    assert lines[2] == "| scratch | reference (float32) | 2/2 | 1,000 ± 0 | 1x | 2.0100 ± 0.0141 |"
    assert lines[3] == "| scratch | int8 | 2/2 | 275 ± 35 | 3.64x | 2.0110 ± 0.0141 |"
    missed = "seed(s) 1 never reached L* in 2 rounds (sent 20 B)"
    assert lines[4] == f"| scratch | topk | 1/2 | {missed} | — | 2.1000 ± 0.0000 |"


def test_the_readmes_findings_tables_are_the_committed_studys():
    """The summary JSON, README and benchmarks/README show what the committed CSV gives (`--markdown`)."""
    from pathlib import Path

    from fedbandwidth.compress.study import findings_markdown

    root = Path(__file__).resolve().parents[1]
    frame = pd.read_csv(root / "benchmarks" / "results" / "compression_study.csv")
    summary = study_summary(frame)
    committed = json.loads((root / "benchmarks" / "results" / "compression_summary.json").read_text())
    assert committed["regimes"] == summary["regimes"]  # the summary JSON is the CSV's, not stale
    table = findings_markdown(summary, frame)
    for readme in (root / "README.md", root / "benchmarks" / "README.md"):
        lines = [line.strip() for line in readme.read_text().splitlines()]
        start = lines.index(table[0])
        assert lines[start : start + len(table)] == table, readme.name
        assert lines[start + len(table)] == "", readme.name  # no stale row after the table
