"""How fast the forecast answers: `fedbandwidth predict` for a 7B model with LoRA (a whole process, cold), and the
explorer's response to each kind of control change (in process, the kernel's side of a slider move).

    .venv/bin/python benchmarks/bench_predict.py [--repeats 5]   ->  benchmarks/results/predict.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from benchlib import RESULTS_DIR, machine_facts, median, system_busy_percent

PREDICT = "predict --model mistral-7b-v0.1 --lora-rank 16 --lora-targets q_proj,v_proj --supernodes 10 --json".split()
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


def time_predict(repeats: int) -> dict:
    """Wall seconds of whole `fedbandwidth predict` processes (imports, meta model, LoRA, JSON)."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "fedbandwidth", *PREDICT], capture_output=True, check=True)
        seconds.append(round(time.perf_counter() - started, 2))
    report = json.loads(out.stdout)
    return {
        "command": "fedbandwidth " + " ".join(PREDICT),
        "wall_seconds": seconds,
        "median_seconds": median(seconds),
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
