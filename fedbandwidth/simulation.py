"""The one place that calls Flower's simulation runner, for both APIs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, Context
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import ServerAppComponents, ServerConfig
from flwr.serverapp import Grid, ServerApp

from .checks import check_choice, check_count, check_fraction
from .ledger import Ledger
from .logs import QUIET_RAY
from .model import known_models
from .names import APIS, BACKENDS
from .theory import default_min_nodes
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
    model: str = "pythia-14m"  # a model whose config ships in fedbandwidth/configs
    backend: str = "inprocess"  # Simulation Engine backend: "inprocess" (threads) or "ray" (the course's)

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_fraction("fraction_evaluate", self.fraction_evaluate, allow_zero=True)
        check_choice("api", self.api, APIS)
        check_choice("model", self.model, known_models())
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


def legacy_server_app(cfg: SimulationConfig, arrays: list[np.ndarray], ledger: Ledger) -> ServerApp:
    """The lesson's ServerApp: BandwidthTrackingFedAvg on the legacy API."""
    initial = ndarrays_to_parameters(arrays)

    def server_fn(context: Context) -> ServerAppComponents:
        sample = sampling(cfg.fraction, cfg.fraction_evaluate, cfg.min_nodes, api="legacy")
        strategy = BandwidthTrackingFedAvg(ledger, cfg.supernodes, initial_parameters=initial, **sample)
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=cfg.rounds))

    return ServerApp(server_fn=server_fn)


def message_server_app(cfg: SimulationConfig, arrays: dict[str, np.ndarray], ledger: Ledger) -> ServerApp:
    """The same run on the Message API: MessageTrackingFedAvg driven by strategy.start()."""
    initial = ArrayRecord({name: Array(a) for name, a in arrays.items()})
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        sample = sampling(cfg.fraction, cfg.fraction_evaluate, cfg.min_nodes)
        strategy = MessageTrackingFedAvg(ledger, cfg.supernodes, **sample)
        strategy.start(grid=grid, initial_arrays=initial, num_rounds=cfg.rounds)

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
    arrays: dict[str, np.ndarray],
    ledger: Ledger | None = None,
    client_app: ClientApp | None = None,
) -> Ledger:
    """Run `cfg` with no-op clients, starting from `arrays` (name -> ndarray); return the ledger."""
    from . import client_app as clients

    ledger = ledger if ledger is not None else Ledger()
    if cfg.api == "legacy":
        server = legacy_server_app(cfg, list(arrays.values()), ledger)
        client = client_app or clients.legacy_app
    else:
        server = message_server_app(cfg, arrays, ledger)
        client = client_app or clients.app
    attempts = 2 if cfg.backend == "ray" else 1  # Ray's start-up can time out on a busy machine
    for attempt in range(1, attempts + 1):
        try:
            run(server, client, cfg.supernodes, backend=cfg.backend)
            break
        except RuntimeError:
            if ledger.transfers or attempt == attempts:
                raise
            log.warning("the simulation runtime failed before the first round; retrying once")
    return ledger
