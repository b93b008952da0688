"""The exact bytes of a federated run without running it, for any model and LoRA adapter.

The model's tensors come from its real architecture on the meta device (`architecture`), read back from the
facts kept of it when its config was seen before (`shapes`: no torch then). One train message
carries the whole state dict, as ``ArrayRecord(model.state_dict())`` sends it (tied weights under both
keys), or with LoRA the adapters alone, as FlowerTune sends them; each array travels as an .npy file under
its key, cut into Flower's chunks. The run's total follows the lesson's prediction (`theory.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .adapters import RULES, LoraSpec, travels
from .architecture import DTYPES, specs_from, zero_arrays
from .catalog import resolve
from .checks import check_choice, check_count, check_fraction
from .model import TensorSpec
from .names import APIS
from .payload import CHUNK_BYTES, chunk_count
from .report import render_table
from .shapes import adapter_facts, model_facts
from .theory import FLOWERTUNE_BUDGET_MB, Prediction, course_formula_bytes, flowertune_mib, predict
from .units import format_bytes


@dataclass(frozen=True)
class ForecastConfig:
    """A FedAvg run to forecast; invalid values raise ConfigError naming the parameter."""

    model: str = "pythia-14m"  # a shipped name, a hub id or a path to a config.json
    supernodes: int = 2  # SuperNodes (clients)
    rounds: int = 1  # federated rounds
    fraction: float = 1.0  # fraction of nodes sampled for training each round
    fraction_evaluate: float = 0.0  # fraction sampled for evaluation (the model goes down once more)
    lora: LoraSpec | None = None  # LoRA adapters: then only they travel; None = the whole model
    dtype: str = "float32"  # dtype the floating-point arrays travel in
    api: str = "legacy"  # "legacy" (keys "0".."N-1") or "message" (state-dict names as keys)
    lora_rule: str = "fedit"  # which adapters travel: "fedit" A and B (as FlowerTune), "ffa" only B (as train)

    def __post_init__(self) -> None:
        resolve(self.model)
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_fraction("fraction-evaluate", self.fraction_evaluate, allow_zero=True)
        check_choice("dtype", self.dtype, DTYPES)
        check_choice("api", self.api, APIS)
        check_choice("lora-rule", self.lora_rule, RULES)


def message_specs(cfg: ForecastConfig) -> list[TensorSpec]:
    """What one train message carries: the adapters' specs with LoRA, else the whole state dict's."""
    if cfg.lora:
        rows = adapter_facts(cfg.model, cfg.lora)["state"]
        return specs_from([row for row in rows if travels(row[0], cfg.lora_rule)], cfg.dtype)
    return specs_from(model_facts(cfg.model)["state"], cfg.dtype)


def message_arrays(cfg: ForecastConfig) -> dict[str, np.ndarray]:
    """Arrays of zeros shaped like one train message (to simulate it: bytes depend on nothing else)."""
    return zero_arrays(message_specs(cfg))


def tensor_part(specs: list[TensorSpec]) -> dict:
    """Parameters, tensors and raw tensor bytes of some specs."""
    return {
        "parameters": sum(s.numel for s in specs),
        "tensors": len(specs),
        "tensor_bytes": sum(s.nbytes for s in specs),
    }


def model_part(cfg: ForecastConfig) -> dict:
    """The model: where its config came from, its class, parameters (tied once), state-dict tensors and bytes."""
    source, facts = resolve(cfg.model), model_facts(cfg.model)
    return {
        "name": cfg.model,
        "origin": source.origin,
        "config": str(source.path),
        "architecture": facts["architecture"],
        **tensor_part(specs_from(facts["state"], cfg.dtype)),
        "parameters": facts["parameters"],
        "tied_keys": facts["tied_keys"],
        "dtype": cfg.dtype,
    }


def adapter_part(cfg: ForecastConfig, specs: list[TensorSpec]) -> dict:
    """The LoRA adapters: rank, alpha, targets (and those matching nothing), tensors, peft's trainable count."""
    facts = adapter_facts(cfg.model, cfg.lora)
    return {
        "type": "dora" if cfg.lora.dora else "lora",
        "rank": cfg.lora.rank,
        "alpha": cfg.lora.alpha or cfg.lora.rank,
        "targets": list(cfg.lora.targets),
        "unmatched_targets": facts["unmatched_targets"],
        "rule": cfg.lora_rule,
        **tensor_part(specs),
        "peft_trainable_parameters": facts["peft_trainable_parameters"],
    }


def message_part(specs: list[TensorSpec], prediction: Prediction, api: str) -> dict:
    """One train message: arrays, keys, tensor and payload bytes, and the chunks Flower cuts it into."""
    return {
        "arrays": len(specs),
        "keys": "state-dict names" if api == "message" else '"0".."N-1"',
        "tensor_bytes": prediction.message_tensor_bytes,
        "payload_bytes": prediction.message_payload_bytes,
        "chunks": chunk_count(specs),
        "chunk_bytes": CHUNK_BYTES,
    }


def forecast(cfg: ForecastConfig) -> dict:
    """The forecast, JSON-ready: model, adapter (with LoRA), message, nodes, rounds, bytes down, up, total."""
    specs = message_specs(cfg)
    p = predict(specs, cfg.supernodes, cfg.rounds, cfg.fraction, cfg.fraction_evaluate, cfg.api)
    formula = course_formula_bytes(p.message_tensor_bytes, cfg.supernodes, cfg.fraction, cfg.rounds)
    return {
        "model": model_part(cfg),
        **({"adapter": adapter_part(cfg, specs)} if cfg.lora else {}),
        "message": message_part(specs, p, cfg.api),
        "config": {
            "supernodes": cfg.supernodes,
            "fraction": cfg.fraction,
            "fraction_evaluate": cfg.fraction_evaluate,
            "api": cfg.api,
            "dtype": cfg.dtype,
        },
        "train_nodes": p.train_nodes,
        "evaluate_nodes": p.evaluate_nodes,
        "rounds": cfg.rounds,
        "down_bytes_per_round": p.down_bytes_per_round,
        "up_bytes_per_round": p.up_bytes_per_round,
        "down_bytes": cfg.rounds * p.down_bytes_per_round,
        "up_bytes": cfg.rounds * p.up_bytes_per_round,
        "total_bytes": p.total_bytes,
        "course_formula_bytes": formula,
        "flowertune_mib": flowertune_mib(specs, p.train_nodes, cfg.rounds),
    }


def predicted_rounds(report: dict):
    """The forecast as the per-round table a ledger gives (round, nodes, down/up/total/cumulative bytes)."""
    import pandas as pd

    rounds = range(1, report["rounds"] + 1)
    down, up = report["down_bytes_per_round"], report["up_bytes_per_round"]
    table = pd.DataFrame({"round": list(rounds), "nodes": report["train_nodes"], "down_bytes": down, "up_bytes": up})
    table["total_bytes"] = table.down_bytes + table.up_bytes
    table["cumulative_bytes"] = table.total_bytes.cumsum()
    return table


def describe_model(report: dict) -> list[str]:
    """Text lines: the model, its tied weights, and the adapters."""
    model = report["model"]
    lines = [
        f"{model['name']} ({model['origin']} config, {model['architecture']}): {model['parameters']:,} "
        f"parameters; {model['tensors']} state-dict tensors = {format_bytes(model['tensor_bytes'])} in {model['dtype']}"
    ]
    if model["tied_keys"]:
        lines.append(
            f"  tied: {', '.join(model['tied_keys'])} repeats another tensor; "
            "ArrayRecord(model.state_dict()) sends it twice"
        )
    if adapter := report.get("adapter"):
        share = adapter["parameters"] / model["parameters"]
        lines.append(
            f"{'DoRA' if adapter['type'] == 'dora' else 'LoRA'} r={adapter['rank']} on {','.join(adapter['targets'])}: "
            f"{adapter['parameters']:,} "
            f"parameters ({share:.3%} of the model) in {adapter['tensors']} tensors travel "
            f"({'B only, FFA-LoRA' if adapter['rule'] == 'ffa' else 'A and B, FedIT'})"
        )
        if adapter["unmatched_targets"]:
            lines.append(
                f"  warning: {', '.join(adapter['unmatched_targets'])} matched no module (peft goes on without)"
            )
    return lines


def flowertune_line(mib: dict) -> str:
    """One line: what FlowerTune's CommunicationTracker would print at the end, next to its budget."""
    over = " (over budget)" if max(mib.values()) > FLOWERTUNE_BUDGET_MB else ""
    return (
        f"FlowerTune's tracker: used {mib['legacy']:.2f} MB (legacy API) / {mib['message']:.2f} MB (Message API) "
        f"of {FLOWERTUNE_BUDGET_MB:,} MB{over} (its MB are MiB; train messages only)"
    )


LINK_COLUMNS = [
    ("link", 15, lambda r: r["link"]),
    ("s a round", 12, lambda r: f"{r['round_seconds']:,.1f}"),
    ("s in all", 12, lambda r: f"{r['total_seconds']:,.1f}"),
]


def render_forecast(report: dict) -> str:
    """The forecast as text: model and adapters, one train message, the run's bytes, time on each link."""
    message = report["message"]
    lines = [
        *describe_model(report),
        f"one train message: {message['arrays']} arrays, {format_bytes(message['payload_bytes'])} payload "
        f"({message['tensor_bytes']:,} B of tensors), {message['chunks']} chunks of <= {message['chunk_bytes']:,} B",
        f"{report['train_nodes']} nodes train and {report['evaluate_nodes']} evaluate a round, "
        f"{report['rounds']} rounds:",
        f"down  {format_bytes(report['down_bytes'])}",
        f"up    {format_bytes(report['up_bytes'])}",
        f"total {format_bytes(report['total_bytes'])}",
        flowertune_line(report["flowertune_mib"]),
    ]
    links = [{"link": name, **times} for name, times in report.get("links", {}).items()]
    return "\n".join(lines + (render_table(LINK_COLUMNS, links) if links else []))
