"""How fast the forecast answers: `fedbandwidth predict` for a 7B model with LoRA (a whole process each time) on a
shipped config, a config seen before and a new one, next to importing torch, transformers and peft in the same run;
and the explorer's response to each kind of control change (in process, the kernel's side of a slider move).

    .venv/bin/python benchmarks/bench_predict.py [--repeats 5]   ->  benchmarks/results/predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import RESULTS_DIR, machine_facts, median, system_busy_percent
from fedbandwidth.model import CONFIG_DIR

PREDICT = "predict --lora-rank 16 --lora-targets q_proj,v_proj --supernodes 10 --json".split()
IMPORTS = [sys.executable, "-c", "import torch, transformers, peft"]  # the wall a forecast no longer climbs
CHANGES = [
    ("supernodes", 10),
    ("rounds", 5),
    ("fraction", 0.5),
    ("link", "3G"),
    ("dtype", "bfloat16"),
    ("model", "mistral-7b-v0.1"),
    ("lora_rank", 16),
    ("model", "qwen2.5-7b"),
    ("model", "llama-3.1-8b"),
    ("lora_rank", 0),
    ("api", "message"),
    ("model", "mistral-7b-v0.1"),
]  # the last one: a model seen before


def wall(command: list[str], env: dict) -> tuple[float, bytes]:
    """Wall seconds of one whole process, and its stdout."""
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, check=True, env=env).stdout
    return round(time.perf_counter() - started, 3), out


def new_config(folder: Path, index: int) -> str:
    """A config never seen before: Mistral 7B's with a vocabulary one token longer per run."""
    config = json.loads((CONFIG_DIR / "mistral-7b-v0.1.json").read_text())
    path = folder / f"new-{index}" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + index}))
    return str(path)


def time_predict(repeats: int) -> dict:
    """Whole `fedbandwidth predict` processes (shipped, seen, new config) and the import wall, interleaved."""
    rows = {"imports": [], "shipped": [], "seen": [], "new": []}
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "FEDBANDWIDTH_CACHE": str(Path(folder) / "cache")}
        predict = [sys.executable, "-m", "fedbandwidth", *PREDICT, "--model"]
        for index in range(repeats):
            path = new_config(Path(folder), index)
            rows["imports"].append(wall(IMPORTS, env)[0])
            seconds, out = wall([*predict, "mistral-7b-v0.1"], env)
            rows["shipped"].append(seconds)
            rows["new"].append(wall([*predict, path], env)[0])
            rows["seen"].append(wall([*predict, path], env)[0])
    report, imports = json.loads(out), median(rows["imports"])
    return {
        "command": "fedbandwidth " + " ".join(PREDICT) + " --model mistral-7b-v0.1 | a new config.json",
        "wall_seconds": rows,
        "median_seconds": {k: median(v) for k, v in rows.items()},
        "ratio_to_imports": {k: round(median(v) / imports, 3) for k, v in rows.items() if k != "imports"},
        "new_minus_imports_seconds": round(median(rows["new"]) - imports, 3),
        "adapter_parameters": report["adapter"]["parameters"],
        "peft_trainable_parameters": report["adapter"]["peft_trainable_parameters"],
    }


def time_explorer() -> dict:
    """Seconds of Explorer.update() after each control change (a first-seen model builds on the meta device)."""
    from fedbandwidth.explore import Explorer

    started = time.perf_counter()
    explorer = Explorer()
    rows = [{"change": "start (imports, first figure)", "seconds": round(time.perf_counter() - started, 3)}]
    for name, value in CHANGES:
        started = time.perf_counter()
        explorer.controls[name].value = value
        rows.append({"change": f"{name}={value}", "seconds": round(time.perf_counter() - started, 3)})
    return {"changes": rows, "max_change_seconds": max(r["seconds"] for r in rows[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    busy = system_busy_percent()
    result = {
        "machine": machine_facts(),
        "busy_percent_before": busy,
        "predict": time_predict(args.repeats),
        "explorer": time_explorer(),
    }
    (RESULTS_DIR / "predict.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("predict", "explorer")}, indent=2))


if __name__ == "__main__":
    main()
