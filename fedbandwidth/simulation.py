"""The one place that calls Flower's simulation runner, for both APIs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, Context
from flwr.clientapp import ClientApp
from flwr.common import Parameters, ndarray_to_bytes
from flwr.server import Server, ServerAppComponents, ServerConfig, SimpleClientManager
from flwr.serverapp import Grid, ServerApp

from .catalog import resolve
from .checks import check_choice, check_count, check_fraction
from .ledger import Ledger
from .logs import QUIET_RAY
from .meter import MeteredServerApp
from .model import iter_random_arrays
from .names import APIS, BACKENDS
from .theory import default_min_nodes, sampled_nodes
from .tracking import BandwidthTrackingFedAvg, MessageTrackingFedAvg, sampling

log = logging.getLogger("fedbandwidth")


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated federated run of no-op clients; invalid values raise ConfigError."""

    supernodes: int = 2  # simulated clients (SuperNodes)
    rounds: int = 1  # federated rounds
    fraction: float = 1.0  # fraction of nodes sampled for training each round
    fraction_evaluate: float = 0.0  # fraction sampled for evaluation; the course sets 0.0
    api: str = "legacy"  # "legacy" (NumPyClient, as the course) or "message" (Message API)
    model: str = "pythia-14m"  # a shipped model, a hub id or a path to a config.json (catalog.resolve)
    backend: str = "inprocess"  # Simulation Engine backend: "inprocess" (threads) or "ray" (the course's)

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_fraction("fraction_evaluate", self.fraction_evaluate, allow_zero=True)
        check_choice("api", self.api, APIS)
        resolve(self.model)
        check_choice("backend", self.backend, BACKENDS)

    @property
    def min_nodes(self) -> int:
        """Minimum nodes to sample: Flower's default 2, or fewer if fewer exist."""
        return default_min_nodes(self.supernodes)


def check_lesson_parameters(num_supernodes, num_rounds, fraction_fit) -> SimulationConfig:
    """Check the lesson notebook's parameters cell; raise ConfigError naming the bad one."""
    check_count("num_supernodes", num_supernodes)
    check_count("num_rounds", num_rounds)
    check_fraction("fraction_fit", fraction_fit)
    return SimulationConfig(num_supernodes, num_rounds, fraction_fit)


# One CPU per client actor: on 2 cores, 2 actors serve all SuperNodes in turn.
BACKEND_CONFIG = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": QUIET_RAY}
# No-op clients only (de)serialize, mostly holding the GIL: one in-process worker is as fast as two,
# and keeps one message in flight instead of two (benchmarks/README.md).
NOOP_BACKEND_CONFIG = {**BACKEND_CONFIG, "inprocess": {"workers": 1}}
MAX_SERVER_THREADS = 64  # a legacy round's messages go out in waves of at most this many (Flower's default: 6)


Pairs = Callable[[], Iterable[tuple[str, np.ndarray]]]  # gives the initial model's (name, array) pairs


def legacy_parameters(pairs: Iterable[tuple[str, np.ndarray]]) -> Parameters:
    """Legacy Parameters from (name, array) pairs, serializing one array at a time."""
    return Parameters(tensors=[ndarray_to_bytes(array) for _, array in pairs], tensor_type="numpy.ndarray")


def array_record(pairs: Iterable[tuple[str, np.ndarray]]) -> ArrayRecord:
    """A Message-API ArrayRecord from (name, array) pairs, serializing one array at a time."""
    record = ArrayRecord()
    for name, array in pairs:
        record[name] = Array(array)
    return record


def legacy_components(cfg: SimulationConfig, pairs: Pairs, ledger: Ledger) -> ServerAppComponents:
    """BandwidthTrackingFedAvg in a legacy Server that sends each round in one wave (a thread per node).

    The initial model is serialized now and handed to Flower, which lets go of it after round 1.
    """
    sample = sampling(cfg.fraction, cfg.fraction_evaluate, cfg.min_nodes, api="legacy")
    initial = legacy_parameters(pairs())
    strategy = BandwidthTrackingFedAvg(ledger, cfg.supernodes, initial_parameters=initial, **sample)
    server = Server(client_manager=SimpleClientManager(), strategy=strategy)
    wave = max(sampled_nodes(cfg.supernodes, f) for f in (cfg.fraction, cfg.fraction_evaluate))
    server.set_max_workers(min(wave, MAX_SERVER_THREADS))
    return ServerAppComponents(server=server, config=ServerConfig(num_rounds=cfg.rounds))


def legacy_server_app(cfg: SimulationConfig, pairs: Pairs, ledger: Ledger) -> ServerApp:
    """The lesson's ServerApp: BandwidthTrackingFedAvg on the legacy API, built when the run starts."""
    return ServerApp(server_fn=lambda context: legacy_components(cfg, pairs, ledger))


def message_server_app(cfg: SimulationConfig, pairs: Pairs, ledger: Ledger) -> ServerApp:
    """The same run on the Message API: MessageTrackingFedAvg driven by strategy.start()."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        sample = sampling(cfg.fraction, cfg.fraction_evaluate, cfg.min_nodes)
        strategy = MessageTrackingFedAvg(ledger, cfg.supernodes, **sample)
        strategy.start(grid=grid, initial_arrays=array_record(pairs()), num_rounds=cfg.rounds)

    return server


def run(
    server_app: ServerApp,
    client_app: ClientApp,
    supernodes: int,
    backend_config: dict | None = None,
    backend: str = "inprocess",
) -> None:
    """Run a ServerApp against `supernodes` simulated SuperNodes on `backend` (quiet logs)."""
    from flwr.simulation import run_simulation

    from .backends import use_backend

    if backend == "ray":  # on a busy machine the raylet can time out (default 30 s) waiting for its agent
        os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    with use_backend(backend):
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=supernodes,
            backend_config=backend_config or BACKEND_CONFIG,
        )


def simulate(
    cfg: SimulationConfig,
    arrays: Mapping[str, np.ndarray] | None = None,
    ledger: Ledger | None = None,
    client_app: ClientApp | None = None,
    grid_ledger: Ledger | None = None,
) -> Ledger:
    """Run `cfg` with no-op clients from `arrays` (name -> ndarray), or from random arrays of
    `cfg.model` made one at a time as they are serialized (None); return the ledger.
    With `grid_ledger`, the Grid meter also writes every message the ServerApp moves into it."""
    from . import client_app as clients

    ledger = ledger if ledger is not None else Ledger()
    pairs = (lambda: arrays.items()) if arrays is not None else (lambda: iter_random_arrays(cfg.model))
    if cfg.api == "legacy":
        server = legacy_server_app(cfg, pairs, ledger)
        client = client_app or clients.legacy_app
    else:
        server = message_server_app(cfg, pairs, ledger)
        client = client_app or clients.app
    if grid_ledger is not None:
        server = MeteredServerApp(server, grid_ledger)
    attempts = 2 if cfg.backend == "ray" else 1  # Ray's start-up can time out on a busy machine
    for attempt in range(1, attempts + 1):
        try:
            run(server, client, cfg.supernodes, NOOP_BACKEND_CONFIG, backend=cfg.backend)
            break
        except RuntimeError:
            if ledger.transfers or attempt == attempts:
                raise
            log.warning("the simulation runtime failed before the first round; retrying once")
    return ledger
