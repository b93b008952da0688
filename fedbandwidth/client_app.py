"""No-op clients, as in the lesson: they send back the model they received, without training.

Ray actors import this module, so it stays light: flwr and numpy only, no torch, no model.
Two flavours: ``legacy_app`` (the legacy API, as the course) and ``app`` (Flower's Message API). The course's
client is ``NoOpClient``, a ``NumPyClient``; the apps hand each node an ``EchoClient``, the same reply without
NumPyClient's round trip (Flower's wrapper deserializes the parameters into arrays and serializes the same arrays
again: byte for byte what came in), which is most of a legacy round's cost here. The Message-API
app reads the run config's ``client``: ``"echo"`` (the default) or ``"perturb"``, which changes every array a
little, as training would, so a deployment's uplink really carries every byte (Flower does not upload objects
the SuperLink still holds, and an echoed array is one of them). A node whose node config has ``compute-seconds``
waits that long before it replies (a straggler, as a slow device would be).
"""

from __future__ import annotations

import time
from collections.abc import Collection

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import Client, NumPyClient
from flwr.clientapp import ClientApp
from flwr.common import Code, EvaluateIns, EvaluateRes, FitIns, FitRes, Status

from .checks import check_choice
from .names import ARRAYS, CLIENTS, COMPUTE_SECONDS, METRICS, NUM_EXAMPLES, PARTITION_ID


class NoOpClient(NumPyClient):
    """The lesson's client: returns the parameters it received; trains and evaluates nothing."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail  # raise in fit, to show what a failed client costs

    def fit(self, parameters, config):
        """Send the received model straight back (no training here)."""
        if self.fail:
            raise RuntimeError("this client was told to fail during fit")
        return parameters, 1, {}

    def evaluate(self, parameters, config):
        """Report a dummy loss (no evaluation here)."""
        return 0.0, 1, {"accuracy": 0.0}


class EchoClient(Client):
    """NoOpClient's replies, built without NumPyClient's wrapper: fit hands back the Parameters it received."""

    def fit(self, ins: FitIns) -> FitRes:
        """The received model, as it came (no training here)."""
        return FitRes(status=Status(code=Code.OK, message="Success"), parameters=ins.parameters, num_examples=1,
                      metrics={})  # fmt: skip

    def evaluate(self, ins: EvaluateIns) -> EvaluateRes:
        """A dummy loss (no evaluation here)."""
        return EvaluateRes(status=Status(code=Code.OK, message="Success"), loss=0.0, num_examples=1,
                           metrics={"accuracy": 0.0})  # fmt: skip


def client_fn(context: Context) -> Client:
    """Build the no-op client for one SuperNode."""
    return EchoClient()


def make_legacy_app(fail_partitions: Collection[int] = (), mods: list | None = None) -> ClientApp:
    """A legacy ClientApp of no-op clients; those in `fail_partitions` raise during fit."""
    failing = frozenset(fail_partitions)

    def build(context: Context) -> Client:
        return NoOpClient(fail=context.node_config.get(PARTITION_ID) in failing).to_client()

    return ClientApp(client_fn=build if failing else client_fn, mods=mods or [])


def echo_reply(msg: Message, context: Context, fail_partitions: Collection[int] = ()) -> Message:
    """Reply with the received arrays untouched, plus the metric FedAvg weights by."""
    if context.node_config.get(PARTITION_ID) in fail_partitions:
        raise RuntimeError("this client was told to fail during train")
    content = RecordDict({ARRAYS: msg.content[ARRAYS], METRICS: MetricRecord({NUM_EXAMPLES: 1})})
    return Message(content=content, reply_to=msg)


def perturb_reply(msg: Message, context: Context) -> Message:
    """Reply with every array shifted by its own tiny random offset (1e-7..1e-6): all new bytes, as after training."""
    rng = np.random.default_rng()
    arrays = ArrayRecord(
        {key: Array(array.numpy() + np.float32(rng.uniform(1e-7, 1e-6))) for key, array in msg.content[ARRAYS].items()}
    )
    return Message(content=RecordDict({ARRAYS: arrays, METRICS: MetricRecord({NUM_EXAMPLES: 1})}), reply_to=msg)


def make_message_app(fail_partitions: Collection[int] = (), mods: list | None = None) -> ClientApp:
    """A Message-API ClientApp that echoes the model; nodes in `fail_partitions` raise in train."""
    client = ClientApp(mods=mods or [])
    failing = frozenset(fail_partitions)

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        time.sleep(float(context.node_config.get(COMPUTE_SECONDS, 0.0)))  # a slow node, as if it trained
        if check_choice("client", context.run_config.get("client", "echo"), CLIENTS) == "perturb":
            return perturb_reply(msg, context)
        return echo_reply(msg, context, failing)

    @client.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        metrics = MetricRecord({NUM_EXAMPLES: 1, "loss": 0.0})
        return Message(content=RecordDict({METRICS: metrics}), reply_to=msg)

    return client


legacy_app = make_legacy_app()
app = make_message_app()
