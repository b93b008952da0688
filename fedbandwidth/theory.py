"""What the bytes should be, before running anything: the course formula and the exact prediction.

Course formula: bandwidth = (model sent + update received) x clients x fraction sampled x rounds.
The exact prediction adds what the formula leaves out: the .npy header and key name of each
array, Flower's sampling rule ``max(int(N * fraction), min_nodes)``, and the evaluate phase,
which sends the model down once more to each node sampled for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import TensorSpec
from .names import APIS
from .payload import legacy_keys, npy_header_length, predicted_payload_bytes

FLOWER_MIN_NODES = 2  # FedAvg's default min_fit_clients / min_train_nodes
FLOWERTUNE_BUDGET_MB = 200_000  # FlowerTune's CommunicationTracker warns past this (its "MB" are MiB)


def default_min_nodes(num_nodes: int) -> int:
    """Flower's default minimum of 2 sampled nodes, lowered when fewer exist (so 1 node never hangs)."""
    return min(FLOWER_MIN_NODES, num_nodes)


def sampled_nodes(num_nodes: int, fraction: float, min_nodes: int | None = None) -> int:
    """Nodes Flower's FedAvg samples in a round: max(int(N * fraction), min_nodes); 0 if fraction is 0."""
    if fraction == 0.0:
        return 0
    min_nodes = default_min_nodes(num_nodes) if min_nodes is None else min_nodes
    return max(int(num_nodes * fraction), min_nodes)


def course_formula_bytes(model_bytes: int, clients: int, fraction: float, rounds: int) -> float:
    """The course's formula: (model sent + update received) x clients x fraction x rounds."""
    return (model_bytes + model_bytes) * clients * fraction * rounds


def message_keys(specs: list[TensorSpec], api: str) -> list[str]:
    """Keys the model's arrays get in a message: state-dict names (Message API) or "0".."N-1" (legacy)."""
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}; choose from {', '.join(APIS)}")
    return legacy_keys(len(specs)) if api == "legacy" else [s.name for s in specs]


@dataclass(frozen=True)
class Prediction:
    """Exact bytes a no-op FedAvg run will move."""

    rounds: int  # federated rounds
    train_nodes: int  # nodes sampled for training each round
    evaluate_nodes: int  # nodes sampled for evaluation each round (model goes down again)
    message_payload_bytes: int  # payload bytes of one model message
    message_tensor_bytes: int  # raw tensor bytes of one model message

    @property
    def down_bytes_per_round(self) -> int:
        """Payload bytes sent to clients in one round (train + evaluate)."""
        return (self.train_nodes + self.evaluate_nodes) * self.message_payload_bytes

    @property
    def up_bytes_per_round(self) -> int:
        """Payload bytes received from clients in one round (evaluate replies carry no arrays)."""
        return self.train_nodes * self.message_payload_bytes

    @property
    def total_bytes(self) -> int:
        """Payload bytes of the whole run."""
        return self.rounds * (self.down_bytes_per_round + self.up_bytes_per_round)


def predict(
    specs: list[TensorSpec],
    supernodes: int,
    rounds: int,
    fraction: float = 1.0,
    fraction_evaluate: float = 0.0,
    api: str = "legacy",
) -> Prediction:
    """Predict the payload bytes of a no-op FedAvg run from the model's tensor specs."""
    keys = message_keys(specs, api)
    return Prediction(
        rounds=rounds,
        train_nodes=sampled_nodes(supernodes, fraction),
        evaluate_nodes=sampled_nodes(supernodes, fraction_evaluate),
        message_payload_bytes=predicted_payload_bytes(specs, keys),
        message_tensor_bytes=sum(s.nbytes for s in specs),
    )


def tracker_mib(message_bytes: int, nodes: int, rounds: int) -> float:
    """What FlowerTune's CommunicationTracker prints last: one call down and one up a round, each adding
    nodes x bytes / 1024**2 to a float, printed with two decimals (as "MB"); the evaluate phase is never tracked."""
    used = 0.0
    for _ in range(2 * rounds):
        used += nodes * message_bytes / 1024**2
    return float(f"{used:.2f}")


def flowertune_mib(specs: list[TensorSpec], nodes: int, rounds: int) -> dict[str, float]:
    """Both FlowerTune trackers' last figure: legacy (each array's .npy bytes, no key) and Message API
    (ArrayRecord.count_bytes(): .npy bytes plus each state-dict key)."""
    npy_bytes = sum(npy_header_length(s.shape, s.dtype) + s.nbytes for s in specs)
    record_bytes = predicted_payload_bytes(specs, [s.name for s in specs])
    return {"legacy": tracker_mib(npy_bytes, nodes, rounds), "message": tracker_mib(record_bytes, nodes, rounds)}


def component_of(name: str) -> str:
    """Which part of a GPTNeoX model a state-dict key belongs to."""
    for key, component in (
        ("embed_in", "input embedding"),
        ("lm_head", "output embedding"),
        ("embed_out", "output embedding"),
        ("norm", "layer norms"),
        ("attention", "attention"),
        ("mlp", "MLP"),
    ):
        if key in name:
            return component
    return "other"


def tensor_breakdown(specs: list[TensorSpec]):
    """Bytes per model component (embeddings, attention, MLP, norms), largest first, with shares."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "component": [component_of(s.name) for s in specs],
            "parameters": [s.numel for s in specs],
            "tensor_bytes": [s.nbytes for s in specs],
        }
    )
    table = frame.groupby("component", as_index=False).agg(
        tensors=("parameters", "size"), parameters=("parameters", "sum"), tensor_bytes=("tensor_bytes", "sum")
    )
    table["share"] = table.tensor_bytes / table.tensor_bytes.sum()
    return table.sort_values("tensor_bytes", ascending=False, ignore_index=True)
