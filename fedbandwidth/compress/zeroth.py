"""The zeroth-order lever: clients step along perturbations of K shared seeds and send K scalars (FedKSeed).

FedKSeed (Qin et al. 2023, arXiv 2312.06353): every party knows K seeds; seed j draws a perturbation z_j,
one standard normal value per weight. A client's local step picks a seed j at random, measures the loss of
a batch at w + eps z_j and w - eps z_j, and steps w -= lr g z_j with g = (L+ - L-) / (2 eps), the estimate
of the loss's slope along z_j. Its round's update is sum_j c_j z_j with c_j = -lr x (the sum of its g for
seed j), so it replies with the K scalars c, a (seed index, scalar) pair each, the index being the position.
The server averages them (weighted by examples, as FedAvg) and replays the average on its model,
w += sum_j cbar_j z_j; its next broadcast is that round's K scalars, and a node that missed rounds gets
the scalars of every round since the model it holds, a (rounds, K) array, and replays them as the server
did, bit for bit. Both directions are K float32 a round, plus an .npy header and a key, in the ledger like
any ArrayRecord; round 1 sends a node that holds nothing an empty (0, K) history (it builds the start model).
The price is compute: two forward passes a step and the perturbations drawn again on every side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict

from ..names import ARRAYS, CONFIG, METRICS, NUM_EXAMPLES, NUM_PARTITIONS, PARTITION_ID, TRAIN, UP
from ..tracking import record_messages
from .messages import (
    COMPUTE_SECONDS,
    DECODE_SECONDS,
    ENCODE_SECONDS,
    CompressedFedAvg,
    partition_order,
    to_numpy,
    to_record,
)

SCALARS_KEY = "zo#scalars"  # the ArrayRecord key of the K scalars (up: (K,); down: (rounds, K))
FROM_KEY = "zo-from"  # config key: how many rounds of history the node's model already holds
HELD_KEY, ROUNDS_KEY = "zo-held", "zo-rounds"  # context.state: the model a node holds, and its rounds


@dataclass(frozen=True)
class ZerothSpec:
    """The shared seeds: how many, the run's seed, the step along them, and the weights they perturb."""

    seeds: int  # K, the number of shared seeds
    eps: float  # perturbation scale of the two-point loss difference
    seed: int  # the run's seed: seed j draws from (seed, j)
    shapes: tuple[tuple[str, tuple], ...]  # (name, shape) of every perturbed tensor, sorted by name


def perturbation(spec: ZerothSpec, j: int) -> dict[str, np.ndarray]:
    """z_j: a standard normal float32 array per tensor, drawn from seed (spec.seed, j) in name order."""
    rng = np.random.default_rng([spec.seed, j])
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in spec.shapes}


def replay(spec: ZerothSpec, arrays: dict[str, np.ndarray], history: np.ndarray) -> dict[str, np.ndarray]:
    """The model after each row of scalars in turn: w += sum_j c_j z_j (float32, the same on every party)."""
    out = {k: np.array(v, dtype=np.float32) for k, v in arrays.items()}
    for row in np.asarray(history, dtype=np.float32).reshape(-1, spec.seeds):
        for j in np.flatnonzero(row):
            for name, z in perturbation(spec, int(j)).items():
                out[name] += row[j] * z
    return out


def zeroth_steps(
    model, spec: ZerothSpec, batches: list[np.ndarray], lr: float, seed: tuple
) -> tuple[np.ndarray, float]:
    """Take a zeroth-order step a batch (seeds picked at random by `seed`); (the K scalars c, mean loss)."""
    import torch

    params = dict(model.named_parameters())
    rng, scalars, losses = np.random.default_rng(list(seed)), np.zeros(spec.seeds, dtype=np.float32), []
    model.eval()
    with torch.inference_mode():
        for batch in batches:
            j = int(rng.integers(spec.seeds))
            z = {k: torch.from_numpy(v) for k, v in perturbation(spec, j).items()}
            ids = torch.from_numpy(batch)
            loss = [
                shift(params, z, a) or model(input_ids=ids, labels=ids).loss.item() for a in (spec.eps, -2 * spec.eps)
            ]
            shift(params, z, spec.eps)
            step = np.float32(-lr * (loss[0] - loss[1]) / (2 * spec.eps))
            shift(params, z, float(step))
            scalars[j] += step
            losses.append((loss[0] + loss[1]) / 2)
    return scalars, float(np.mean(losses))


def shift(params: dict, z: dict, scale: float) -> None:
    """Add scale x z to the named parameters, in place."""
    for name, value in z.items():
        params[name].add_(value, alpha=scale)


def client_round(msg: Message, context: Context, cfg, spec: ZerothSpec) -> Message:
    """Replay the broadcast history on the model this node holds, take the zeroth-order steps, reply with c."""
    from . import models, task

    config = msg.content[CONFIG]
    held, rounds = held_model(context, cfg)
    started = time.perf_counter()
    if int(config[FROM_KEY]) != rounds:
        raise ValueError(f"the server sent history from round {config[FROM_KEY]}, this node holds {rounds}")
    history = to_numpy(msg.content[ARRAYS])[SCALARS_KEY]
    received = replay(spec, held, history)
    decoded = time.perf_counter()
    partition, server_round = int(context.node_config[PARTITION_ID]), int(config["server-round"])
    data = task.partition(partition, int(context.node_config[NUM_PARTITIONS]), cfg.partitioning, cfg.seq_len, cfg.part)
    model = models.start_model(cfg)
    models.load_sent(cfg, model, received)
    batches = task.sample_batches(data, int(config["local-steps"]), cfg.batch_size, (cfg.seed, partition, server_round))
    computing = time.perf_counter()
    scalars, loss = zeroth_steps(model, spec, batches, float(config["lr"]), (cfg.seed, partition, server_round, 1))
    encoding = time.perf_counter()
    sent = to_record({SCALARS_KEY: scalars})
    context.state[HELD_KEY] = to_record(received)
    context.state[ROUNDS_KEY] = ConfigRecord({"rounds": rounds + len(history)})
    metrics = {NUM_EXAMPLES: len(batches) * len(batches[0]), "train-loss": loss, PARTITION_ID: partition}
    seconds = {
        DECODE_SECONDS: decoded - started,
        COMPUTE_SECONDS: encoding - computing,
        ENCODE_SECONDS: time.perf_counter() - encoding,
    }
    return Message(RecordDict({ARRAYS: sent, METRICS: MetricRecord({**metrics, **seconds})}), reply_to=msg)


def held_model(context: Context, cfg) -> tuple[dict[str, np.ndarray], int]:
    """(the model this node holds, how many rounds of history it holds); the start model the first time."""
    from . import models

    if HELD_KEY not in context.state.array_records:
        return models.sent_arrays(cfg, models.start_model(cfg)), 0
    return to_numpy(context.state.array_records[HELD_KEY]), int(context.state.config_records[ROUNDS_KEY]["rounds"])


class ZerothFedAvg(CompressedFedAvg):
    """FedAvg of the clients' K scalars: the global model is the start model with every round's average replayed."""

    def __init__(self, ledger, spec: ZerothSpec, **kwargs) -> None:
        super().__init__(ledger, **kwargs)
        self.spec = spec
        self.history: list[np.ndarray] = []  # row r: the average scalars of round r + 1
        self.held_rounds: dict[int, int] = {}  # node -> rounds of history its model holds (after its last reply)

    def encode_train(self, messages, arrays, config):
        """Send each sampled node the rounds of history it lacks, and from which round they start."""
        started = time.perf_counter()
        self.global_arrays = self.global_arrays or to_numpy(arrays)
        out = []
        for m in messages:
            since = self.held_rounds.get(m.metadata.dst_node_id, 0)
            rows = np.array(self.history[since:], dtype=np.float32).reshape(-1, self.spec.seeds)
            content = {
                self.arrayrecord_key: to_record({SCALARS_KEY: rows}),
                self.configrecord_key: ConfigRecord({**config, FROM_KEY: since}),
            }
            out.append(
                Message(RecordDict(content), message_type=m.metadata.message_type, dst_node_id=m.metadata.dst_node_id)
            )
        self.add_server_seconds(int(config["server-round"]), time.perf_counter() - started)
        return out

    def aggregate_train(self, server_round, replies):
        """Record the replies, average their scalars (partition order), replay them on the global model."""
        started = time.perf_counter()
        replies = sorted(replies, key=partition_order)
        record_messages(self.ledger, server_round, TRAIN, UP, replies, self.arrayrecord_key)
        self.ledger.end_round(server_round)
        valid = [r for r in replies if not r.has_error() and self.arrayrecord_key in r.content.array_records]
        if not valid:
            return None, None
        self.record_client_seconds(server_round, valid)
        for reply in valid:
            self.held_rounds[reply.metadata.src_node_id] = len(self.history)
        weights = np.array([r.content[METRICS][NUM_EXAMPLES] for r in valid], dtype=np.float64)
        scalars = np.stack([to_numpy(r.content.array_records[self.arrayrecord_key])[SCALARS_KEY] for r in valid])
        average = (weights @ scalars.astype(np.float64) / weights.sum()).astype(np.float32)
        self.history.append(average)
        self.global_arrays = replay(self.spec, self.global_arrays, average)
        metrics = self.train_metrics_aggr_fn([r.content for r in valid], self.weighted_by_key)
        self.add_server_seconds(server_round, time.perf_counter() - started)
        return to_record(self.global_arrays), metrics


def zeroth_spec(cfg) -> ZerothSpec:
    """The run's shared seeds: `zeroth_seeds` of them over every tensor a message would carry."""
    from .models import sent_shapes

    return ZerothSpec(cfg.zeroth_seeds, cfg.zeroth_eps, cfg.seed, tuple(sorted(sent_shapes(cfg).items())))
