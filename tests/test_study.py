"""The compression study's numbers on hand-made runs: the staged plan, the reference's choice, bytes each way to
each target, the summary's schema, and the committed results being what the committed CSV gives."""

import json
from pathlib import Path

import pandas as pd
import pytest

from fedbandwidth.compress.study import regime_targets, study_frame, study_summary
from fedbandwidth.compress.study_levers import planned
from fedbandwidth.compress.study_plan import Plan, Setting, targets
from fedbandwidth.compress.study_rows import COLUMNS, csv_row, flattened, with_targets
from fedbandwidth.compress.study_tables import NO_RUNS, findings_markdown
from fedbandwidth.compress.train_report import bytes_to_target

ROOT = Path(__file__).resolve().parents[1]
UP, DOWN = 100, 300  # payload bytes a round each way in every hand-made run (adapters: fewer)
PLAN = Plan(
    regimes={"scratch": ("train", "--preset", "scratch")},
    tuning_lrs={"scratch": (0.001, 0.002, 0.004, 0.008)},
    splits=((4, 5), (2, 10)),
    settings=(
        Setting("int8", "int8", ("--up-codec", "int8"), ("scratch",)),
        Setting("int8 down too", "int8", ("--up-codec", "int8", "--down-codec", "int8"), ("scratch",)),
    ),
    reference_seeds=(0, 1, 2),
    seeds=(0, 1),
    top_seeds=(2,),
    top=1,
    max_splits=2,  # the grid does not widen here (test_the_split_widens_... does)
)


def report(argv: list[str], val: list[float], test: list[float], up: int = UP) -> dict:
    """A `train --json` as the study reads it, for a run of `argv` with these curves."""
    value = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
    config = {"lr": float(value["--lr"]), "rounds": int(value["--rounds"]), "local_steps": int(value["--local-steps"]),
              "up_codec": value.get("--up-codec", "none"), "lora_rank": None}  # fmt: skip
    rounds = [{"round": r, "val_loss": v, "test_loss": t, "up_bytes": up, "down_bytes": DOWN, "compute_seconds": 0.5}
              for r, (v, t) in enumerate(zip(val, test, strict=True), 1)]  # fmt: skip
    return {"config": config, "rounds": rounds, "wall_seconds": 10.0}


def add(frame, runs: list[dict], curves: dict) -> pd.DataFrame:
    """The frame with these runs done: curves[(setting, lr, seed or "RxS")], else [(setting, lr)], is (val, test);
    a run without a target trains its rounds, one chasing a target the whole curve."""
    rows = []
    for r in runs:
        argv, key = r["argv"], (r["setting"], r["lr"])
        rounds = int(argv[argv.index("--rounds") + 1])
        split = f"{rounds}x{argv[argv.index('--local-steps') + 1]}"
        val, test = curves.get((*key, r["seed"])) or curves.get((*key, split)) or curves[key]
        n = len(val) if "--target-loss" in argv else rounds
        rows.append(csv_row(r, report(argv, val[:n], test[:n])))
    return pd.concat([frame, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True)


def empty():
    """A CSV with no runs yet."""
    return pd.DataFrame(columns=COLUMNS)


def tuned():
    """Stage 1 done: lr 0.002 in 2 rounds x 10 steps reaches the validation target with the fewest bytes."""
    todo, _ = planned(PLAN, empty())
    curves = {("reference", lr): ([3.0, 2.6, 2.5, 2.5], [3.0, 2.6, 2.5, 2.5]) for lr in PLAN.tuning_lrs["scratch"]}
    curves[("reference", 0.004)] = ([3.0, 2.4, 2.1, 2.02], [3.0, 2.4, 2.1, 2.02])  # reaches it, in 4 rounds
    curves[("reference", 0.002)] = ([2.5, 2.0, 1.9, 1.895], [2.6, 2.1, 2.0, 1.99])  # 2 rounds x 10: the best
    curves[("reference", 0.002, "4x5")] = curves[("reference", 0.001)]
    return add(empty(), todo, curves), curves


def test_stage_1_is_the_float32_grid_and_everything_else_waits():
    todo, waiting = planned(PLAN, empty())
    assert {(r["lr"], r["argv"][-3], r["argv"][-1]) for r in todo} == {
        (lr, r, s) for lr in PLAN.tuning_lrs["scratch"] for r, s in (("4", "5"), ("2", "10"))
    }
    assert {r["stage"] for r in todo} == {"tuning"} and {r["seed"] for r in todo} == {0}
    assert waiting == ["scratch: lever tuning and settings wait for the reference"]


def test_the_reference_is_chosen_by_total_bytes_and_trains_until_flat():
    frame, curves = tuned()
    todo, _ = planned(PLAN, frame)  # 2 rounds are too few to tell flat: seed 0 again at twice the rounds
    assert [(r["stage"], r["seed"], r["argv"][-6:]) for r in todo] == [
        ("flattening", 0, ["--lr", "0.002", "--rounds", "4", "--local-steps", "10"])
    ]
    frame = add(frame, todo, curves)  # its validation loss: 1.9 -> 1.895 over the last quarter, < 1%
    todo, _ = planned(PLAN, frame)  # 40 local steps now, not 20: the grid again at that budget
    assert {(r["stage"], r["lr"], tuple(r["argv"][-4:])) for r in todo} == {
        ("tuning", lr, ("--rounds", r, "--local-steps", s))
        for lr in PLAN.tuning_lrs["scratch"] for r, s in (("4", "10"), ("2", "20"))
    } - {("tuning", 0.002, ("--rounds", "4", "--local-steps", "10"))}  # fmt: skip
    frame = add(frame, todo, curves)  # 2 x 20 at 0.002 ends at 2.0, above 1.01 x 1.895: 4 x 10 stays
    todo, _ = planned(PLAN, frame)
    assert [r["seed"] for r in todo] == [1, 2] and todo[0]["argv"][-6:] == [
        "--lr", "0.002", "--rounds", "4", "--local-steps", "10"
    ]  # fmt: skip
    other = frame[(frame.lr == 0.001) & (frame.rounds == 4)]  # another tuning run's command, at another seed
    seed_9 = other.assign(seed=9, final_val_loss=1.0, val_losses="1.0 1.0 1.0 1.0")
    assert planned(PLAN, pd.concat([frame, seed_9]))[0] == todo  # the choice reads the tuning seed only


def test_a_tuning_run_that_dips_below_the_target_and_drifts_back_up_is_not_the_reference():
    """L* is the reference's final loss: the fastest to touch the target is no reference if it ends above it."""
    from fedbandwidth.compress.study_plan import chosen_split, reference_tuning

    frame, curves = tuned()
    drifter = (frame.lr == 0.008) & (frame.rounds == 2)
    frame.loc[drifter, ["val_losses", "final_val_loss"]] = ["2.01 2.1", 2.1]  # 2.01 <= 1.01 x 2.0 in round 1
    assert chosen_split(PLAN, frame, "scratch") == (0.002, 2, 10)  # reaches 2.02 in round 2 and ends at 2.0
    frame.loc[drifter, ["val_losses", "final_val_loss"]] = ["2.01 2.015", 2.015]  # ends within it: the fastest,
    assert chosen_split(PLAN, frame, "scratch") is None  # but at the grid's top lr: one more past it first
    todo = reference_tuning(PLAN, frame, "scratch")[1]
    assert [(r["lr"], r["argv"][-4:]) for r in todo] == [(0.016, ["--rounds", "2", "--local-steps", "10"])]
    frame = add(frame, todo, {("reference", 0.016): ([2.5, 2.5], [2.5, 2.5])})
    assert chosen_split(PLAN, frame, "scratch") == (0.008, 2, 10)


def test_a_reference_whose_doubled_rounds_gain_under_one_percent_is_flat_at_its_shorter_run():
    frame, curves = tuned()
    todo, _ = planned(PLAN, frame)  # 2 rounds at 0.002 (final validation 2.0), then 4
    curves[("reference", 0.002, "4x10")] = ([2.5, 2.0, 1.99, 1.985], [2.6, 2.1, 2.0, 1.99])  # 0.75% lower: flat
    frame = add(frame, todo, curves)
    todo, _ = planned(PLAN, frame)
    assert [(r["seed"], r["argv"][-4:]) for r in todo] == [
        (s, ["--rounds", "2", "--local-steps", "10"]) for s in (1, 2)
    ]  # the 2-round run (seed 0's tuning run) is the reference
    reference = study_summary(add(frame, todo, curves))["regimes"]["scratch"]["reference"]
    assert (reference["rounds"], reference["seeds"], reference["flattened"]) == (2, [0, 1, 2], True)


def test_the_split_widens_past_an_edge_holding_the_best_as_a_learning_rate_does():
    from dataclasses import replace

    from fedbandwidth.compress.study_plan import chosen_split, wider_split

    plan = replace(PLAN, max_splits=4)
    frame, curves = tuned()  # the best, 2 rounds x 10 steps, has the fewest rounds of the grid
    todo, waiting = planned(plan, frame)
    assert [(r["lr"], r["argv"][-4:]) for r in todo] == [
        (lr, ["--rounds", "1", "--local-steps", "20"]) for lr in PLAN.tuning_lrs["scratch"]
    ]  # the same 20 local steps in one round, at every lr
    assert waiting == ["scratch: lever tuning and settings wait for the reference"]
    better, worse = dict(curves), dict(curves)
    better[("reference", 0.002, "1x20")] = ([1.95], [1.96])  # within 1.01 x its own 1.95: fewest bytes
    assert chosen_split(plan, add(frame, todo, better), "scratch") == (0.002, 1, 20)  # 1 round: nothing wider
    worse[("reference", 0.002, "1x20")] = ([2.3], [2.3])
    assert chosen_split(plan, add(frame, todo, worse), "scratch") == (0.002, 2, 10)  # inside the grid now
    assert wider_split([(20, 10), (10, 20)], (20, 10)) == (40, 5) and wider_split([(5, 40)], (5, 40)) == (2, 100)


def test_a_superseded_reference_run_is_kept_in_the_csv_but_is_not_the_reference():
    from fedbandwidth.compress.study import reference_rows

    frame = with_reference()
    old = frame[frame.stage == "reference"].assign(stage="superseded", rounds=8, command='["old"]')
    rows = reference_rows(pd.concat([frame, old], ignore_index=True), "scratch")
    assert list(rows.seed) == [0, 1, 2] and set(rows.command) == {frame[frame.stage == "reference"].command.iloc[0]}


def test_a_budget_grown_to_flatten_is_tuned_again_and_rows_against_the_old_reference_are_superseded():
    """The best split of 20 local steps need not be the best of 40: the reference is the grid's best at 40."""
    from fedbandwidth.compress.study_levers import superseded
    from fedbandwidth.compress.study_plan import budget_splits

    frame = with_reference()  # the reference 4 x 10 at 0.002, seeds 0-2 (before its budget was tuned again)
    old = frame[frame.stage == "reference"].assign(command=lambda f: f.command.str.replace('"4"', '"9"'))
    frame = pd.concat([frame, old.assign(stage="setting", setting="int8")], ignore_index=True)
    faster = frame.command.map(json.loads).map(lambda a: a[-6:] == ["--lr", "0.002", "--rounds", "2",
                                                                    "--local-steps", "20"])  # fmt: skip
    frame.loc[faster, ["val_losses", "final_val_loss"]] = ["2.0 1.88", 1.88]  # 1.01 x 1.88 in 2 rounds
    todo, _ = planned(PLAN, frame)
    assert [(r["stage"], r["seed"], r["argv"][-4:]) for r in todo] == [
        ("reference", s, ["--rounds", "2", "--local-steps", "20"]) for s in (1, 2)
    ]  # its seed 0 is the tuning run
    marked = superseded(PLAN, frame)
    assert (marked[marked.stage == "superseded"].seed.tolist(), len(marked)) == ([1, 2], len(frame))
    frame = add(frame, todo, {("reference", 0.002): ([2.0, 1.88], [2.0, 1.9])})  # L* known: old settings too
    assert superseded(PLAN, frame).stage.value_counts()["superseded"] == 4
    assert budget_splits((2, 100), 8) == [(8, 100), (2, 400)]


def with_reference():
    """Stages 1 and 2 done: the reference at seeds 0-2, final test losses 1.99, 2.0, 2.01."""
    frame, curves = tuned()
    for _ in range(3):  # flattening, the grid at its budget, seeds 1 and 2
        todo, _ = planned(PLAN, frame)
        for seed, final in ((1, 2.0), (2, 2.01)):
            curves[("reference", 0.002, seed)] = ([2.5, 2.0, 1.9, 1.895], [2.6, 2.1, 2.0, final])
        frame = add(frame, todo, curves)
    return frame


def test_targets_are_factors_of_the_references_mean_final_test_loss():
    frame = with_reference()
    assert targets(PLAN, frame, "scratch") == pytest.approx({1.01: 2.02, 1.02: 2.04, 1.05: 2.1})
    assert regime_targets(frame, "scratch") == pytest.approx({1.01: 2.02, 1.02: 2.04, 1.05: 2.1})
    todo, waiting = planned(PLAN, frame)  # stage 3: one family, lrs around the reference's, seed 0
    assert [r["lr"] for r in todo] == [0.001, 0.002, 0.004] and {r["setting"] for r in todo} == {"int8"}
    assert todo[0]["argv"][-6:] == ["--rounds", "2", "--local-steps", "10", "--up-codec", "int8"]  # tuning split
    assert waiting[0] == "scratch: int8 settings wait for their lr"


def test_a_setting_with_more_local_steps_a_round_chases_with_the_same_local_steps_in_fewer_rounds():
    from fedbandwidth.compress.study_levers import setting_argv

    ref = ["train", "--preset", "scratch", "--lr", "0.002", "--rounds", "40", "--local-steps", "20"]
    fewer = Setting("fewer rounds", "rounds", ("--rounds", "{R4}", "--local-steps", "{S4}"), ("scratch",))
    argv = setting_argv(PLAN, "scratch", ref, fewer, 0.002, 5.0)
    assert argv[-8:] == ["--rounds", "10", "--local-steps", "80", "--target-loss", "5.000000", "--max-rounds", "15"]
    same = setting_argv(PLAN, "scratch", ref, PLAN.settings[0], 0.002, 5.0)  # 1.5 x 40 rounds of 20 steps
    assert same[-2:] == ["--max-rounds", "60"]


def lever_curves():
    """int8's validation curves: best at 0.004 (an edge), worse at 0.008; test losses reaching 2.02 in round 3."""
    good, bad = ([2.4, 2.0, 1.9, 1.9], [2.5, 2.1, 2.01, 2.0]), ([3.0, 2.9, 2.8, 2.7], [3.0, 2.9, 2.8, 2.7])
    curves = {("int8", lr): bad for lr in (0.001, 0.002, 0.008)}
    return {**curves, ("int8", 0.004): good, ("int8 down too", 0.004): good}


def test_a_family_widens_its_grid_past_an_edge_then_runs_every_seed_and_more_for_the_best():
    frame, curves = with_reference(), lever_curves()
    frame = add(frame, planned(PLAN, frame)[0], curves)
    todo, _ = planned(PLAN, frame)
    assert [(r["stage"], r["lr"]) for r in todo] == [("tuning", 0.008)]  # the best was at the grid's edge
    frame = add(frame, todo, curves)
    todo, waiting = planned(PLAN, frame)  # every seed at 0.004, at the reference's rounds, chasing its target
    assert [(r["setting"], r["seed"], r["lr"]) for r in todo] == [
        ("int8", 0, 0.004), ("int8", 1, 0.004), ("int8 down too", 0, 0.004), ("int8 down too", 1, 0.004)
    ]  # fmt: skip
    assert todo[0]["argv"][-10:-4] == ["--rounds", "4", "--local-steps", "10", "--up-codec", "int8"]
    assert todo[0]["argv"][-4:] == ["--target-loss", "1.913950", "--max-rounds", "6"]  # 1.01 x final val; 1.5 x 4
    assert waiting == ["scratch: more seeds for the best 1 wait for every setting"]
    frame = add(frame, todo, curves)
    todo, waiting = planned(PLAN, frame)  # both reach L* with the same bytes: the first is the best 1
    assert [(r["setting"], r["seed"]) for r in todo] == [("int8", 2)] and waiting == []
    assert planned(PLAN, add(frame, todo, curves)) == ([], [])  # complete


def complete_frame():
    """The whole hand-made study; "int8 down too" sends 50 bytes up a round (others 100)."""
    frame, curves = with_reference(), lever_curves()
    while todo := planned(PLAN, frame)[0]:
        frame = add(frame, todo, curves)
    frame.loc[frame.setting == "int8 down too", "up_bytes_per_round"] = "50 50 50 50"
    return frame


def test_every_row_has_bytes_each_way_to_each_target_and_total_is_up_plus_down():
    frame = study_frame(complete_frame())
    for factor in (1.01, 1.02, 1.05):
        reached = frame[frame[f"total_bytes_to_{factor}"].notna()]
        assert len(reached) > 0
        assert (reached[f"total_bytes_to_{factor}"] == reached[f"up_bytes_to_{factor}"]
                + reached[f"down_bytes_to_{factor}"]).all()  # fmt: skip
    assert (frame.total_bytes == frame.up_bytes + frame.down_bytes).all()
    reference = frame[(frame.stage == "reference") & (frame.seed == 1)].iloc[0]
    assert (reference["round_to_1.01"], reference["up_bytes_to_1.01"], reference["down_bytes_to_1.01"]) == (3, 300, 900)
    assert (reference["round_to_1.05"], reference["total_bytes_to_1.05"]) == (2, 800)
    assert frame.compute_seconds.iloc[0] == "0.5 0.5 0.5 0.5"


def test_summary_has_the_issues_schema_and_only_a_setting_every_seed_reached_can_be_best():
    summary = study_summary(complete_frame(), task={"vocab_size": 4096})
    assert set(summary) == {"task", "regimes", "study_seconds"} and summary["task"] == {"vocab_size": 4096}
    regime = summary["regimes"]["scratch"]
    assert set(regime) == {"reference", "targets", "settings", "best_total", "best_up", "best_float32"}
    assert regime["targets"] == pytest.approx({"1.01": 2.02, "1.02": 2.04, "1.05": 2.1})
    reference = regime["reference"]
    assert set(reference) == {
        "command",
        "seeds",
        "lr",
        "rounds",
        "local_steps",
        "final_loss_mean",
        "final_loss_sd",
        "up_bytes_to_target_mean",
        "down_bytes_to_target_mean",
        "total_bytes_to_target_mean",
        "rounds_to_target_mean",  # what `plan --study-setting` reads
        "flattened",  # every seed's validation loss < 1% better over its last quarter
    }
    assert reference["flattened"]  # 1.9 -> 1.895
    assert reference["rounds_to_target_mean"] == 3.0  # every seed reached 2.02 in round 3
    assert (reference["seeds"], reference["lr"], reference["rounds"], reference["local_steps"]) == (
        [0, 1, 2],
        0.002,
        4,
        10,
    )
    assert (reference["final_loss_mean"], reference["total_bytes_to_target_mean"]) == pytest.approx((2.0, 1200.0))
    int8, down = regime["settings"]
    assert set(int8) == {"name", "command", "seeds", "lr", "seeds_reaching_target", "up_bytes_to_target_mean",
                         "down_bytes_to_target_mean", "total_bytes_to_target_mean", "ratio_total", "ratio_up",
                         "final_loss_mean", "final_loss_sd", "rounds_to_target_mean",
                         "ratio_total_best_float32"}  # fmt: skip
    assert (int8["seeds"], int8["lr"], int8["seeds_reaching_target"]) == ([0, 1, 2], 0.004, 3)
    assert int8["command"][-2:] == ["--max-rounds", "6"] and int8["ratio_total"] == pytest.approx(1.0)
    assert (down["seeds"], down["ratio_up"], down["ratio_total"]) == (
        [0, 1],
        pytest.approx(2.0),
        pytest.approx(1200 / 1050),
    )
    assert (regime["best_total"], regime["best_up"]) == ("int8", "int8")  # 2 seeds are too few to be best
    assert regime["best_float32"] == "reference" and down["ratio_total_best_float32"] == down["ratio_total"]
    assert summary["study_seconds"] == 10.0 * len(complete_frame())
    json.dumps(summary)  # JSON-ready


def test_ratios_are_also_against_the_best_float32_fedavg_another_split_of_the_reference_included():
    from fedbandwidth.compress.study import is_float32_fedavg

    frame = complete_frame()
    int8 = (frame.setting == "int8") & (frame.stage == "setting")  # made a float32 split: no codec, 50 B up a round
    split = ["train", "--preset", "scratch", "--lr", "0.004", "--rounds", "2", "--local-steps", "20"]
    assert is_float32_fedavg([*split, "--target-loss", "1.9", "--max-rounds", "3"])
    assert not is_float32_fedavg([*split, "--up-codec", "int8"])
    assert not is_float32_fedavg([*split, "--fraction", "0.5"])
    frame.loc[int8, "command"] = json.dumps(split)
    frame.loc[int8, "up_bytes_per_round"] = "50 50 50 50"
    regime = study_summary(frame)["regimes"]["scratch"]
    float32, down = regime["settings"]
    assert regime["best_float32"] == "int8" and float32["ratio_total"] == pytest.approx(1200 / 1050)
    assert (float32["ratio_total_best_float32"], down["ratio_total_best_float32"]) == (1.0, 1.0)  # both 1,050 B
    lines = findings_markdown(study_summary(frame), frame)
    assert lines[2].split(" | ")[7:9] == ["1.00x", "0.88x"]  # the reference: 1,200 B against the best's 1,050
    assert lines[3].split(" | ")[1] == "int8 (float32: the best float32 here)"


def test_flattening_needs_less_than_one_percent_over_the_last_quarter():
    assert flattened([3.0, 2.5, 2.2, 2.1, 2.05, 2.04, 2.03, 2.02])  # 2.04 -> 2.02 over rounds 6-8: 0.98%
    assert not flattened([3.0, 2.5, 2.2, 2.1, 2.08, 2.06, 2.04, 2.02])  # 2.06 -> 2.02: 1.9%
    assert not flattened([2.0, 2.0, 2.0])  # too few rounds to have a quarter


def test_bytes_to_target_counts_up_to_the_first_round_at_or_below_it():
    rounds = [{"round": r, "up_bytes": 100 * r, "eval_loss": loss} for r, loss in enumerate([3.5, 3.0, 2.9, 3.1], 1)]
    assert bytes_to_target(rounds, 3.0) == (2, 300)  # rounds 1 and 2: 100 + 200 bytes
    assert bytes_to_target(rounds, 2.95) == (3, 600)  # the first round below, not the best one
    assert bytes_to_target(rounds, 2.5) == (None, None)  # never reached: reported as such


def test_a_train_report_counts_both_directions_to_its_target_and_keeps_splits_and_timing():
    from types import SimpleNamespace

    from fedbandwidth.compress.train_report import both_ways_to_target, round_extras

    rounds = [{"round": r, "up_bytes": 10, "down_bytes": 30, "eval_loss": loss} for r, loss in ((1, 3.0), (2, 2.0))]
    assert both_ways_to_target(rounds, 2.5) == (2, 20, 60) and both_ways_to_target(rounds, 1.0) == (None,) * 3
    result = SimpleNamespace(test_loss={1: 2.9}, timing={1: {"compute_seconds": 1.5}})
    assert round_extras(result, 1) == {"test_loss": 2.9, "compute_seconds": 1.5}  # no val_loss recorded: absent
    assert round_extras(SimpleNamespace(), 1) == {}
    run = {"regime": "warm-start", "stage": "setting", "setting": "adapters", "family": "a", "seed": 1}
    adapters = report(["--lr", "0.01", "--rounds", "2", "--local-steps", "3"], [3.0, 2.0], [3.1, 2.1], up=7)
    adapters["config"]["lora_rank"] = 16
    adapters["model"] = {"uncompressed_message_bytes": 56_283_760}
    row = csv_row({**run, "argv": ["train"]}, adapters)
    assert (row["base_download_bytes"], row["up_bytes"], row["total_bytes"]) == (56_283_760, 14, 614)
    assert (row["final_val_loss"], row["test_losses"], row["encode_seconds"]) == (2.0, "3.1 2.1", "")


def test_findings_markdown_gives_totals_each_way_and_ratios():
    frame = complete_frame()
    lines = findings_markdown(study_summary(frame), frame)
    reference = "reference (float32, 4 x 10 steps; L* = 2.0200)"
    assert (
        lines[2] == f"| scratch | {reference} | 0.002 | 3/3 | 1,200 ± 0 | 300 ± 0 | 900 ± 0 | 1.00x | 1.00x | 1.00x "
        "| 2.0000 ± 0.0100 |"
    )
    assert (
        lines[4] == "| scratch | int8 down too | 0.004 | 2/2 | 1,050 ± 0 | 150 ± 0 | 900 ± 0 | 1.14x | 1.14x | 2.00x "
        "| 2.0000 ± 0.0000 |"
    )
    assert findings_markdown(study_summary(empty()), empty())[2] == NO_RUNS
    frame.loc[frame.setting == "int8 down too", "base_download_bytes"] = 56_283_760  # as if it were adapters
    adapters = findings_markdown(study_summary(frame), frame)[4].split(" | ")[4]
    assert adapters == "1,050 ± 0 (+ 56,283,760 B once: the base model)"


def test_the_readmes_findings_tables_and_the_summary_are_the_committed_csvs():
    """The summary JSON, README and benchmarks/README show what the committed CSV gives (`--markdown`)."""
    frame = pd.read_csv(ROOT / "benchmarks" / "results" / "compression_study.csv")
    assert list(frame.columns) == COLUMNS
    summary = study_summary(frame)
    committed = json.loads((ROOT / "benchmarks" / "results" / "compression_summary.json").read_text())
    assert committed["regimes"] == summary["regimes"]  # the summary JSON is the CSV's, not stale
    assert committed["study_seconds"] == summary["study_seconds"]
    assert (with_targets(frame, {}).total_bytes == frame.up_bytes + frame.down_bytes).all()
    table = findings_markdown(summary, frame)
    for readme in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        lines = [line.strip() for line in readme.read_text().splitlines()]
        start = lines.index(table[0])
        assert lines[start : start + len(table)] == table, readme.name
        assert lines[start + len(table)] == "", readme.name  # no stale row after the table


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


def test_bytes_to_target_plot_has_a_row_per_setting_and_no_literature_bands():
    from fedbandwidth.compress.study_plots import plot_bytes_to_target

    ax = plot_bytes_to_target(complete_frame(), "scratch")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["reference (3 seeds)", "int8 down too (2 seeds)", "int8 (3 seeds)"]  # by total bytes
    assert ax.get_legend_handles_labels()[1][0] == "reference (float32)" and not ax.patches  # no shaded bands
    assert ax.get_xscale() == "log" and ax.lines[0].get_xdata()[0] == 1200.0


def test_loss_vs_bytes_marks_the_pareto_frontier():
    from fedbandwidth.compress.study_plots import pareto, plot_loss_vs_bytes

    assert pareto([(1, 3.0), (2, 2.5), (3, 2.7), (4, 2.0)]) == [(1, 3.0), (2, 2.5), (4, 2.0)]
    ax = plot_loss_vs_bytes(complete_frame(), "scratch")
    names = ax.get_legend_handles_labels()[1]
    assert names == ["reference", "int8", "int8 down too", "Pareto frontier", "L*"]
    reference = ax.lines[0]  # 400 bytes a round; mean test loss over seeds 0-2 after each of 4 rounds
    assert list(reference.get_xdata()) == [400, 800, 1200, 1600]
    assert reference.get_ydata()[-1] == pytest.approx(2.0)


def test_study_figure_has_both_plots_for_each_measured_regime():
    from fedbandwidth.compress.study_plots import study_figure

    titles = [ax.get_title() for ax in study_figure(complete_frame()).axes]
    assert titles == ["scratch: test loss after each round vs bytes moved", "scratch: L* = 2.0200"]


def test_pretraining_plot_marks_where_it_stopped_and_why():
    from fedbandwidth.compress.study_plots import plot_pretraining

    curve = {"step": [100, 200, 300, 400], "train_loss": [5, 4, 3.9, 3.9], "val_loss": [5, 4, 3.9, 3.89],
             "flattened": True, "seconds": 61.2}  # fmt: skip
    ax = plot_pretraining(curve)
    assert ax.get_title() == "The warm start: 400 steps, 61 s"
    assert list(ax.lines[1].get_ydata()) == [5, 4, 3.9, 3.89] and list(ax.lines[2].get_xdata()) == [400, 400]
    assert "flattened" in ax.get_legend().get_texts()[2].get_text()


def test_gained_little_is_under_one_percent_lower_or_higher():
    from fedbandwidth.compress.study_rows import gained_little

    assert gained_little(2.0, 1.985) and gained_little(2.0, 2.1)  # 0.75% lower; higher
    assert not gained_little(2.0, 1.97)  # 1.5% lower
