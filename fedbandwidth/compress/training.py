"""Federated training of the real task with codecs: the run's config, its ClientApp and ServerApp.

Clients train ``local-steps`` AdamW steps a round on their partition and reply with their weights;
the codec mod encodes the reply (and decodes the model coming down). The server averages the decoded
updates with ``CompressedFedAvg`` and evaluates the held-out loss after every round.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from ..adapters import RULES, LoraSpec, parse_targets
from ..checks import ConfigError, check_choice, check_count, check_fraction
from ..ledger import Ledger
from ..names import ARRAYS, BACKENDS, CONFIG, METRICS, NUM_EXAMPLES, NUM_PARTITIONS, PARTITION_ID
from ..tracking import sampling
from . import lora, models, task, warm, zeroth
from .chain import check_downlink, check_layers, parse_codec
from .messages import COMPUTE_SECONDS, CompressedFedAvg, make_codec_mod, message_codecs, to_numpy, to_record

# Sizes of a run by name. "ci" is small enough for a test. "scratch" and "warm-start" are the two regimes of
# benchmarks/compression_study.py: 5 clients x 5 rounds x 20 local steps of 4 x 128 tokens, evaluated on 256
# validation and 256 test sequences of 128 tokens each round; from a random init on IID data, or fine-tuning the
# warm start (pre-trained on half the documents until flattened, at most 3,000 steps of 16 x 128 tokens) on the
# other documents, Dirichlet (alpha 0.5) over document groups. A 5-round run: about a minute here
# (1 round of scratch, whole process: 24 s; 2.2 s of compute a client a round; 2026-12-03).
PRESETS = {
    "ci": {"supernodes": 2, "rounds": 2, "local_steps": 2},
    "scratch": {"supernodes": 5, "rounds": 5, "local_steps": 20, "lr": 4e-3, "seq_len": 128, "eval_sequences": 256},
    "warm-start": {
        "supernodes": 5,
        "rounds": 5,
        "local_steps": 20,
        "lr": 1e-3,
        "seq_len": 128,
        "eval_sequences": 256,
        "warm_start": 3000,
        "partitioning": "dirichlet",
    },
}


def check_positive(name: str, value) -> float:
    """Return `value` if it is a number > 0, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class TrainConfig:
    """One federated training run; invalid values raise ConfigError before anything starts."""

    supernodes: int = 2  # simulated clients (SuperNodes)
    rounds: int = 2  # federated rounds
    local_steps: int = 2  # optimizer steps each sampled client takes a round
    up_codec: str = "none"  # uplink codec chain, e.g. "delta+topk:0.01+int8"
    down_codec: str = "none"  # downlink codec chain, e.g. "fp16"
    fraction: float = 1.0  # fraction of nodes sampled for training each round (at least 1)
    partitioning: str = "iid"  # "iid" or "dirichlet" (seeded, alpha 0.5, over document groups)
    batch_size: int = 4  # sequences per step
    seq_len: int = 32  # tokens per sequence
    lr: float = 2e-3  # AdamW learning rate of the clients
    eval_sequences: int = 32  # held-out sequences the server evaluates on (the same for every run)
    seed: int = 0  # model init, batches and adapters' A: every party builds the same initial weights
    backend: str = "inprocess"  # Simulation Engine backend: "inprocess" (threads) or "ray"
    warm_start: int = 0  # central pre-training of the start, at most this many steps (0: random init, from scratch)
    lora_rank: int | None = None  # LoRA adapters of this rank train and travel instead of the weights
    lora_targets: str = lora.DEFAULT_TARGETS  # modules that get adapters (peft's matching rule)
    lora_rule: str = "ffa"  # how adapters are averaged: "ffa" (A frozen, exact) or "fedit" (A and B, inexact)
    target_loss: float | None = None  # after `rounds`, go on until the held-out loss is at most this ...
    max_rounds: int | None = None  # ... for at most this many rounds in all
    zeroth_seeds: int | None = None  # zeroth-order lever (FedKSeed): K shared seeds; messages carry K scalars
    zeroth_eps: float = 1e-3  # zeroth-order lever: perturbation scale of the two-point loss difference

    def __post_init__(self) -> None:
        for name in ("supernodes", "rounds", "local_steps", "batch_size", "seq_len", "eval_sequences"):
            check_count(name.replace("_", "-"), getattr(self, name))
        for name in ("seed", "warm_start"):
            check_count(name.replace("_", "-"), getattr(self, name), minimum=0)
        check_fraction("fraction", self.fraction)
        check_choice("partitioning", self.partitioning, task.PARTITIONINGS)
        check_choice("backend", self.backend, BACKENDS)
        check_choice("lora-rule", self.lora_rule, RULES)
        check_positive("lr", self.lr)
        self.check_stopping()
        if self.lora_rank is not None and not self.warm_start:
            raise ConfigError("lora-rank: adapters fine-tune a pre-trained model; give --warm-start STEPS too")
        self.codecs()

    def check_stopping(self) -> None:
        """target-loss must be > 0; max-rounds needs it and must be >= rounds."""
        if self.target_loss is not None:
            check_positive("target-loss", self.target_loss)
        if self.max_rounds is not None:
            if self.target_loss is None:
                raise ConfigError("max-rounds needs --target-loss (without a target a run stops after --rounds)")
            if check_count("max-rounds", self.max_rounds) < self.rounds:
                raise ConfigError(f"max-rounds must be >= rounds ({self.rounds}), got {self.max_rounds}")

    @property
    def part(self) -> str:
        """The topics clients train and the server evaluates on: all, or those the warm start never saw."""
        return "finetune" if self.warm_start else "all"

    @property
    def pretraining(self) -> warm.Pretraining:
        """The central pre-training of the warm start (used only if warm_start > 0)."""
        return warm.Pretraining(steps=self.warm_start, seq_len=self.seq_len)

    @property
    def lora_spec(self) -> LoraSpec | None:
        """The adapters' spec, or None when the weights themselves train and travel."""
        return None if self.lora_rank is None else LoraSpec(self.lora_rank, parse_targets(self.lora_targets))

    def codecs(self):
        """(uplink, downlink) codecs, checked against each other and the names of the tensors that travel."""
        if self.zeroth_seeds is not None:
            check_count("zeroth-seeds", self.zeroth_seeds)
            check_positive("zeroth-eps", self.zeroth_eps)
            if (self.up_codec, self.down_codec) != ("none", "none") or self.lora_rank is not None:
                raise ConfigError(
                    "zeroth-seeds: the zeroth-order lever sends K scalars, not weights (no codecs, no LoRA)"
                )
        names = list(models.sent_shapes(self))
        up = check_layers(parse_codec(self.up_codec, "up-codec"), names, "up-codec")
        down = check_layers(check_downlink(parse_codec(self.down_codec, "down-codec")), names, "down-codec")
        if down.stage("layers") and down.stage("layers") != up.stage("layers"):
            raise ConfigError(
                "down-codec: layers on the downlink needs the same layers on the uplink "
                "(a tensor not sent down must stay frozen on the client)"
            )
        return up, down


def client_train(msg: Message, context: Context, cfg: TrainConfig) -> Message:
    """Load the received tensors, train `local-steps` steps on this node's partition, reply with what travels."""
    import torch

    torch.set_num_threads(1)  # one CPU per client (Ray actor or engine thread)
    partition = int(context.node_config[PARTITION_ID])
    config = msg.content[CONFIG]
    num_partitions = int(context.node_config[NUM_PARTITIONS])
    data = task.partition(partition, num_partitions, cfg.partitioning, cfg.seq_len, cfg.part, cfg.seed)
    model = models.start_model(cfg)  # tensors not sent down keep these values
    models.load_sent(cfg, model, to_numpy(msg.content[ARRAYS]))
    batches = task.sample_batches(
        data, int(config["local-steps"]), cfg.batch_size, (cfg.seed, partition, int(config["server-round"]))
    )
    up, _ = message_codecs(msg)
    started = time.perf_counter()
    loss = task.train_steps(model, batches, float(config["lr"]), trainable=models.trainable(cfg, up))
    metrics = {NUM_EXAMPLES: len(batches) * len(batches[0]), "train-loss": loss, PARTITION_ID: partition}
    metrics[COMPUTE_SECONDS] = time.perf_counter() - started
    content = {ARRAYS: to_record(models.sent_arrays(cfg, model)), METRICS: MetricRecord(metrics)}
    return Message(RecordDict(content), reply_to=msg)


def make_client_app(cfg: TrainConfig) -> ClientApp:
    """The training ClientApp, with the codec mod around it (the zeroth-order lever has its own client round)."""
    if cfg.zeroth_seeds is not None:
        app, spec = ClientApp(), zeroth.zeroth_spec(cfg)

        @app.train()
        def train_zeroth(msg: Message, context: Context) -> Message:
            return zeroth.client_round(msg, context, cfg, spec)

        return app
    app = ClientApp(mods=[make_codec_mod(models.sent_shapes(cfg))])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return client_train(msg, context, cfg)

    return app


def should_stop(cfg: TrainConfig, eval_loss: dict[int, float]) -> bool:
    """True once the last evaluated round is `rounds` or later and reached `target_loss` (if any), or is the last."""
    last = max(eval_loss)
    if last >= (cfg.max_rounds or cfg.rounds):
        return True
    return last >= cfg.rounds and (cfg.target_loss is None or eval_loss[last] <= cfg.target_loss)


def make_evaluate_fn(cfg: TrainConfig, eval_loss: dict[int, float], test_loss: dict[int, float] | None = None):
    """Server-side evaluation: validation loss of the global model per round in `eval_loss` (and test loss in
    `test_loss`, if given), on fixed sequences of each split.

    Everything heavy (model, data, round 0) happens here, before the simulation starts: torch work
    in the server thread while Ray boots can starve Ray's start-up on a busy 2-core machine.
    Rounds after the run stopped (no client trained) are not evaluated.
    """
    model = models.start_model(cfg)
    data = task.held_out(cfg.seq_len, cfg.eval_sequences)
    test = task.held_out(cfg.seq_len, cfg.eval_sequences, "test") if test_loss is not None else None

    def measure(server_round: int) -> None:
        eval_loss[server_round] = task.evaluate(model, data)
        if test_loss is not None:
            test_loss[server_round] = task.evaluate(model, test)

    def evaluate(server_round: int, arrays) -> MetricRecord | None:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)  # every core: no client trains while the server evaluates
        if server_round not in eval_loss and not should_stop(cfg, eval_loss):
            models.load_sent(cfg, model, to_numpy(arrays))
            measure(server_round)
        return MetricRecord({"eval-loss": eval_loss[server_round]}) if server_round in eval_loss else None

    measure(0)  # the initial model is the one `model` holds
    return evaluate


def initial_arrays(cfg: TrainConfig) -> dict[str, np.ndarray]:
    """What the server sends in round 1: the starting model's weights, or its adapters."""
    return models.sent_arrays(cfg, models.start_model(cfg))


def make_server_app(
    cfg: TrainConfig,
    ledger: Ledger,
    eval_loss: dict[int, float],
    timing: dict | None = None,
    test_loss: dict[int, float] | None = None,
) -> ServerApp:
    """The ServerApp: CompressedFedAvg for `rounds` (up to `max_rounds` chasing `target_loss`), loss each round.

    `timing` (if given) is filled with round -> mean client compute/encode/decode seconds and server seconds;
    `test_loss` (if given) with round -> test loss, next to the validation loss in `eval_loss`.
    """
    initial = initial_arrays(cfg)
    evaluate_fn = make_evaluate_fn(cfg, eval_loss, test_loss)
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        up, down = cfg.codecs()
        common = {
            "stop": lambda: should_stop(cfg, eval_loss),
            "timing": timing,
            "expected_nodes": cfg.supernodes,  # round 1 samples from every node, not from those registered so far
            **sampling(cfg.fraction, 0.0, 1, cfg.supernodes),
        }
        if cfg.zeroth_seeds is not None:
            strategy = zeroth.ZerothFedAvg(ledger, zeroth.zeroth_spec(cfg), **common)
        else:
            strategy = CompressedFedAvg(ledger, up, down, **common)
        strategy.start(
            grid=grid,
            initial_arrays=to_record(initial),
            num_rounds=cfg.max_rounds or cfg.rounds,
            train_config=ConfigRecord({"local-steps": cfg.local_steps, "lr": cfg.lr}),
            evaluate_fn=evaluate_fn,
        )

    return server


@dataclass
class TrainResult:
    """What a training run measured."""

    config: TrainConfig  # the run
    ledger: Ledger  # every encoded message, with its payload bytes
    eval_loss: dict[int, float]  # round -> validation loss (round 0: the initial model)
    timing: dict[int, dict] = field(default_factory=dict)  # round -> mean client compute/encode/decode s, server s
    test_loss: dict[int, float] = field(default_factory=dict)  # round -> test loss, when the server measured it

    @property
    def final_eval_loss(self) -> float:
        """Held-out loss after `rounds` rounds (the fixed-rounds result, also when the run went on)."""
        return self.eval_loss[min(self.config.rounds, max(self.eval_loss))]


def train(cfg: TrainConfig, ledger: Ledger | None = None) -> TrainResult:
    """Run federated training of the task in simulation; return the ledger and held-out losses."""
    from ..simulation import run

    if cfg.warm_start:
        warm.checkpoint(cfg.pretraining)  # built (once) before any client thread asks for it
    ledger = ledger if ledger is not None else Ledger()
    eval_loss: dict[int, float] = {}
    timing: dict[int, dict] = {}
    test_loss: dict[int, float] = {}
    server = make_server_app(cfg, ledger, eval_loss, timing, test_loss)
    run(server, make_client_app(cfg), cfg.supernodes, backend=cfg.backend)
    return TrainResult(cfg, ledger, dict(sorted(eval_loss.items())), timing, dict(sorted(test_loss.items())))


def uncompressed_message_bytes() -> int:
    """Payload bytes of one float32 model message with state-dict keys (the baseline)."""
    from ..payload import predicted_payload_bytes

    specs = task.tensor_specs()
    return predicted_payload_bytes(specs, [s.name for s in specs])
