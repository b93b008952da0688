"""No-op clients, as in the lesson: they send back the model they received, without training.

Ray actors import this module, so it stays light: flwr and numpy only, no torch, no model.
Two flavours: ``legacy_app`` (the legacy API, as the course) and ``app`` (Flower's Message API). The course's
client is ``NoOpClient``, a ``NumPyClient``; the apps hand each node an ``EchoClient``, the same reply without
NumPyClient's round trip (Flower's wrapper deserializes the parameters into arrays and serializes the same arrays
again: byte for byte what came in), which is most of a legacy round's cost here. The Message-API
app reads the run config's ``client``: ``"echo"`` (the default) or ``"perturb"``, which changes every array a
little, as training would, so a deployment's uplink really carries every byte (Flower does not upload objects
the SuperLink still holds, and an echoed array is one of them). A node whose node config has ``compute-seconds``
waits that long before it replies (a straggler, as a slow device would be). Where the environment names a folder
(``FEDBANDWIDTH_CLIENTAPP_LOG``, set by ``fedbandwidth deploy``), each train message's ClientApp appends its own
clock to ``clientapp-<partition>.csv`` there: its process's start, this module's load (after Flower pulled the
message), the train function's entry and exit. No message byte changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.client import Client, NumPyClient
from flwr.clientapp import ClientApp
from flwr.common import Code, EvaluateIns, EvaluateRes, FitIns, FitRes, Status

from .app_rounds import server_round
from .checks import check_choice
from .names import ARRAYS, CLIENTAPP_LOG_ENV, CLIENTS, COMPUTE_SECONDS, METRICS, NUM_EXAMPLES, PARTITION_ID

LOADED_AT = time.time()  # when Flower loaded this app: a ClientApp process loads it once, after pulling its message


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


def process_started_at() -> float:
    """Unix time this process started (Linux: /proc/self/stat's start tick against the boot clock; else nan)."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError, IndexError):
        return float("nan")
    return time.time() - age


def log_turn(msg: Message, context: Context, entered: float) -> None:
    """Append round, process start, app load, train entry and exit to $FEDBANDWIDTH_CLIENTAPP_LOG, if it is set."""
    folder = os.environ.get(CLIENTAPP_LOG_ENV)
    if not folder:
        return
    row = (server_round(msg), process_started_at(), LOADED_AT, entered, time.time())
    with open(os.path.join(folder, f"clientapp-{context.node_config.get(PARTITION_ID)}.csv"), "a") as f:
        f.write(",".join(map(str, row)) + "\n")


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
        entered = time.time()
        time.sleep(float(context.node_config.get(COMPUTE_SECONDS, 0.0)))  # a slow node, as if it trained
        if check_choice("client", context.run_config.get("client", "echo"), CLIENTS) == "perturb":
            reply = perturb_reply(msg, context)
        else:
            reply = echo_reply(msg, context, failing)
        log_turn(msg, context, entered)
        return reply

    @client.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        metrics = MetricRecord({NUM_EXAMPLES: 1, "loss": 0.0})
        return Message(content=RecordDict({METRICS: metrics}), reply_to=msg)

    return client


legacy_app = make_legacy_app()
app = make_message_app()
