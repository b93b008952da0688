"""The Flower App with secure aggregation as a run-config switch: ``secagg = true`` runs SecAgg+.

``server`` and ``client`` are the components pyproject.toml names. Without ``secagg`` they are the lesson's
app (server_app.run_app, client_app.app: Message API, one exchange a round). With it, the server runs the
lesson's no-op FedAvg under Flower's SecAggPlusWorkflow (legacy API, four stages a round) on a Grid metered
into ``grid_ledger.csv`` (every stage's messages), and the clients are the legacy no-op clients behind
``secaggplus_mod`` (packed with ``secagg-pack``). The SecAgg+ keys (defaults: Flower's):
``secagg-shares``, ``secagg-threshold``, ``secagg-clipping-range``, ``secagg-quantization-range``,
``secagg-modulus-range``, ``secagg-pack``. Every node aggregates: ``fraction-train`` must be 1.0.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from ..checks import ConfigError
from ..client_app import app as plain_client
from ..ledger import Ledger
from ..model import random_arrays
from ..server_app import (
    GRID_LEDGER_CSV,
    LEDGER_CSV,
    ROUND_START,
    RUN_END,
    TIMELINE_COLUMNS,
    TIMELINE_CSV,
    AppSettings,
    append_event,
    read_settings,
    run_app,
)
from .secagg import KeepingFedAvg, SecAggConfig, run_workflow, secagg_client_app

log = logging.getLogger("flwr")

SECAGG = "secagg"  # the run-config switch
KEYS = {  # run-config key -> SecAggConfig field
    "secagg-shares": "shares",
    "secagg-threshold": "threshold",
    "secagg-clipping-range": "clipping_range",
    "secagg-quantization-range": "quantization_range",
    "secagg-modulus-range": "modulus_range",
    "secagg-pack": "pack",
}
CASTS = {"clipping_range": float, "pack": bool}  # the others are integers
CLIENT_KEYS = ("secagg-quantization-range", "secagg-modulus-range", "secagg-pack")  # what a client needs to know


def given_fields(run_config: dict, keys=tuple(KEYS)) -> dict:
    """The SecAggConfig fields the run config gives among `keys`, each cast to its type."""
    return {KEYS[k]: CASTS.get(KEYS[k], int)(run_config[k]) for k in keys if k in run_config}


def secagg_config(run_config: dict, settings: AppSettings) -> SecAggConfig | None:
    """The SecAgg+ run the run config asks for (None without ``secagg``); ConfigError names a bad key."""
    if not run_config.get(SECAGG, False):
        return None
    if settings.fraction_train != 1.0:
        raise ConfigError(
            f"fraction-train must be 1.0 with secagg (every node aggregates), got {settings.fraction_train}"
        )
    given = given_fields(run_config)
    return SecAggConfig(supernodes=settings.min_available_nodes, rounds=settings.num_server_rounds, **given)


class TimedKeepingFedAvg(KeepingFedAvg):
    """KeepingFedAvg that writes each round's start into the timeline (SecAgg+ calls configure_fit first)."""

    def __init__(self, timeline: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.timeline = timeline

    def configure_fit(self, server_round, parameters, client_manager):
        """Note the round's start, then sample as FedAvg does."""
        append_event(self.timeline, server_round, ROUND_START)
        return super().configure_fit(server_round, parameters, client_manager)


def run_secagg_app(grid: Grid, context: Context, settings: AppSettings, cfg: SecAggConfig) -> Ledger:
    """The no-op rounds under SecAgg+: every message into grid_ledger.csv (and ledger.csv: under SecAgg+ the
    model travels in every stage's records, so the ledger of model messages is the Grid's); return it."""
    out = Path(settings.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timeline = out / TIMELINE_CSV
    timeline.write_text(",".join(TIMELINE_COLUMNS) + "\n")
    ledger = Ledger(csv_path=out / GRID_LEDGER_CSV)
    arrays = random_arrays(settings.model)
    strategy = TimedKeepingFedAvg(
        timeline,
        dtypes=[a.dtype for a in arrays.values()],
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=cfg.sampled,
        min_available_clients=cfg.supernodes,
    )
    try:
        run_workflow(grid, context, cfg, ledger, strategy, arrays.items())
    finally:
        append_event(timeline, settings.num_server_rounds, RUN_END)
        (out / LEDGER_CSV).write_text((out / GRID_LEDGER_CSV).read_text())
    log.info("fedbandwidth: SecAgg+, %d messages, %d payload bytes", len(ledger.transfers), ledger.total_bytes())
    return ledger


server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    """Read the run config; run the measured rounds, under SecAgg+ if it says ``secagg``."""
    settings = read_settings(context.run_config)
    cfg = secagg_config(context.run_config, settings)
    if cfg is None:
        run_app(grid, settings)
    else:
        run_secagg_app(grid, context, settings, cfg)


class SwitchingClientApp(ClientApp):
    """A ClientApp that hands each message to the lesson's client, or to the SecAgg+ one if the run says so."""

    def __init__(self) -> None:
        super().__init__()
        self.secagg: dict[tuple, ClientApp] = {}  # one SecAgg+ app per (quantization range, modulus range, packed)

    def __call__(self, message: Message, context: Context) -> Message:
        if not context.run_config.get(SECAGG, False):
            return plain_client(message, context)
        given = given_fields(context.run_config, CLIENT_KEYS)
        key = tuple(sorted(given.items()))
        if key not in self.secagg:
            self.secagg[key] = secagg_client_app(SecAggConfig(**given))
        return self.secagg[key](message, context)


client = SwitchingClientApp()
