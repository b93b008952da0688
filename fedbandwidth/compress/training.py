"""Federated training of the real task with codecs: the run's config, its ClientApp and ServerApp.

Clients train ``local-steps`` AdamW steps a round on their partition and reply with their weights;
the codec mod encodes the reply (and decodes the model coming down). The server averages the decoded
updates with ``CompressedFedAvg`` and evaluates the held-out loss after every round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from ..checks import ConfigError, check_choice, check_count, check_fraction
from ..ledger import Ledger
from ..names import ARRAYS, BACKENDS, CONFIG, METRICS, NUM_EXAMPLES, NUM_PARTITIONS, PARTITION_ID
from ..tracking import sampling
from . import task
from .chain import check_downlink, check_layers, parse_codec
from .messages import CompressedFedAvg, make_codec_mod, message_codecs, to_numpy, to_record

# Sizes of a run by name: "ci" is small enough for a test; "study" is one run of benchmarks/compression_study.py.
PRESETS = {
    "ci": {"supernodes": 2, "rounds": 2, "local_steps": 2},
    "study": {"supernodes": 5, "rounds": 6, "local_steps": 3},
}


@dataclass(frozen=True)
class TrainConfig:
    """One federated training run; invalid values raise ConfigError before anything starts."""

    supernodes: int = 2  # simulated clients (SuperNodes)
    rounds: int = 2  # federated rounds
    local_steps: int = 2  # optimizer steps each sampled client takes a round
    up_codec: str = "none"  # uplink codec chain, e.g. "delta+topk:0.01+int8"
    down_codec: str = "none"  # downlink codec chain, e.g. "fp16"
    fraction: float = 1.0  # fraction of nodes sampled for training each round (at least 1)
    partitioning: str = "iid"  # "iid" or "topic" (each client gets whole topics)
    batch_size: int = 4  # sequences per step
    seq_len: int = 32  # bytes per sequence
    lr: float = 2e-3  # AdamW learning rate of the clients
    eval_sequences: int = 32  # held-out sequences the server evaluates on
    seed: int = 0  # model init and data split; every party builds the same initial weights
    backend: str = "inprocess"  # Simulation Engine backend: "inprocess" (threads) or "ray"

    def __post_init__(self) -> None:
        for name in ("supernodes", "rounds", "local_steps", "batch_size", "seq_len", "eval_sequences"):
            check_count(name.replace("_", "-"), getattr(self, name))
        check_count("seed", self.seed, minimum=0)
        check_fraction("fraction", self.fraction)
        check_choice("partitioning", self.partitioning, task.PARTITIONINGS)
        check_choice("backend", self.backend, BACKENDS)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.partitioning == "topic" and self.supernodes > 79:
            raise ConfigError(f"supernodes must be <= 79 (the number of topics), got {self.supernodes}")
        self.codecs()

    def codecs(self):
        """(uplink, downlink) codecs, checked against each other and the model's tensor names."""
        names = list(task.model_shapes())
        up = check_layers(parse_codec(self.up_codec, "up-codec"), names, "up-codec")
        down = check_layers(check_downlink(parse_codec(self.down_codec, "down-codec")), names, "down-codec")
        if down.stage("layers") and down.stage("layers") != up.stage("layers"):
            raise ConfigError(
                "down-codec: layers on the downlink needs the same layers on the uplink "
                "(a tensor not sent down must stay frozen on the client)"
            )
        return up, down


def client_train(msg: Message, context: Context, cfg: TrainConfig) -> Message:
    """Load the received weights, train `local-steps` steps on this node's partition, reply."""
    import torch

    torch.set_num_threads(1)  # one CPU per client (Ray actor or engine thread)
    partition = int(context.node_config[PARTITION_ID])
    config = msg.content[CONFIG]
    data = task.partition(partition, int(context.node_config[NUM_PARTITIONS]), cfg.partitioning, cfg.seq_len, cfg.seed)
    model = task.build_model(cfg.seed)  # tensors not sent down keep these seeded values
    task.load_arrays(model, to_numpy(msg.content[ARRAYS]))
    batches = task.sample_batches(
        data, int(config["local-steps"]), cfg.batch_size, (cfg.seed, partition, int(config["server-round"]))
    )
    up, _ = message_codecs(msg)
    loss = task.train_steps(model, batches, float(config["lr"]), trainable=up.selects)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    metrics = MetricRecord({NUM_EXAMPLES: len(batches) * len(batches[0]), "train-loss": loss, PARTITION_ID: partition})
    return Message(RecordDict({ARRAYS: to_record(weights), METRICS: metrics}), reply_to=msg)


def make_client_app(cfg: TrainConfig) -> ClientApp:
    """The training ClientApp, with the codec mod around it."""
    app = ClientApp(mods=[make_codec_mod(task.model_shapes())])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return client_train(msg, context, cfg)

    return app


def make_evaluate_fn(cfg: TrainConfig, eval_loss: dict[int, float]):
    """Server-side evaluation: held-out loss of the global model, stored per round in `eval_loss`.

    Everything heavy (model, data, round 0) happens here, before the simulation starts: torch work
    in the server thread while Ray boots can starve Ray's start-up on a busy 2-core machine.
    """
    model = task.build_model(cfg.seed)
    data = task.held_out(cfg.seq_len, cfg.eval_sequences, cfg.seed)

    def evaluate(server_round: int, arrays) -> MetricRecord:
        if server_round not in eval_loss:
            task.load_arrays(model, to_numpy(arrays))
            eval_loss[server_round] = task.evaluate(model, data)
        return MetricRecord({"eval-loss": eval_loss[server_round]})

    eval_loss[0] = task.evaluate(model, data)  # the initial model is the seeded one `model` holds
    return evaluate


def initial_arrays(cfg: TrainConfig) -> dict[str, np.ndarray]:
    """The seeded initial weights, as every client also builds them."""
    return {k: v.detach().numpy() for k, v in task.build_model(cfg.seed).state_dict().items()}


def make_server_app(cfg: TrainConfig, ledger: Ledger, eval_loss: dict[int, float]) -> ServerApp:
    """The ServerApp: CompressedFedAvg over `cfg.rounds`, held-out loss after each round."""
    initial = initial_arrays(cfg)
    evaluate_fn = make_evaluate_fn(cfg, eval_loss)
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        up, down = cfg.codecs()
        strategy = CompressedFedAvg(ledger, up, down, **sampling(cfg.fraction, 0.0, 1, cfg.supernodes))
        strategy.start(
            grid=grid,
            initial_arrays=to_record(initial),
            num_rounds=cfg.rounds,
            train_config=ConfigRecord({"local-steps": cfg.local_steps, "lr": cfg.lr}),
            evaluate_fn=evaluate_fn,
        )

    return server


@dataclass
class TrainResult:
    """What a training run measured."""

    config: TrainConfig  # the run
    ledger: Ledger  # every encoded message, with its payload bytes
    eval_loss: dict[int, float]  # round -> held-out loss (round 0: the initial model)

    @property
    def final_eval_loss(self) -> float:
        """Held-out loss after the last round."""
        return self.eval_loss[max(self.eval_loss)]


def train(cfg: TrainConfig, ledger: Ledger | None = None) -> TrainResult:
    """Run federated training of the task in simulation; return the ledger and held-out losses."""
    from ..simulation import run

    ledger = ledger if ledger is not None else Ledger()
    eval_loss: dict[int, float] = {}
    run(make_server_app(cfg, ledger, eval_loss), make_client_app(cfg), cfg.supernodes, backend=cfg.backend)
    return TrainResult(cfg, ledger, dict(sorted(eval_loss.items())))


def uncompressed_message_bytes() -> int:
    """Payload bytes of one float32 model message with state-dict keys (the baseline)."""
    from ..model import tensor_specs
    from ..payload import predicted_payload_bytes

    specs = tensor_specs(task.MODEL)
    return predicted_payload_bytes(specs, [s.name for s in specs])
