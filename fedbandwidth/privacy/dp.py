"""Differential privacy's bill: Flower's central DP (server- and client-side clipping) and local DP, metered.

The same run of near no-op clients (legacy API; each reply shifted a little, so that clipping has a norm)
under each of Flower's DP wrappers, every message metered at the Grid, next to plain FedAvg. Noise changes
values, not sizes: what DP adds in bytes is what its wrappers send besides the model. Client-side clipping
sends the clipping norm down with every instruction (`clipping_norm`, one float: 8 B + key); adaptive
client-side clipping also gets a norm bit back (`norm_bit`, one bool: 1 B + key, in the reply's metrics, a
ConfigRecord on the legacy API). Server-side clipping and LocalDpMod add no byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from flwr.client import NumPyClient
from flwr.client.mod import LocalDpMod, adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp import ClientApp
from flwr.server import ServerAppComponents, ServerConfig
from flwr.server.strategy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
)
from flwr.serverapp import ServerApp

from ..ledger import Ledger
from ..meter import MeteredServerApp
from ..names import DOWN, UP
from ..simulation import NOOP_BACKEND_CONFIG, legacy_parameters, run

VARIANTS = ("fedavg", "central-server-fixed", "central-server-adaptive", "central-client-fixed")
VARIANTS += ("central-client-adaptive", "local")
ADDS = {  # what each variant sends besides FedAvg's messages (Flower's keys)
    "fedavg": "",
    "central-server-fixed": "nothing: the server clips and adds noise",
    "central-server-adaptive": "nothing: the server clips, counts norm bits itself, adds noise",
    "central-client-fixed": "clipping_norm (a float) down with each instruction",
    "central-client-adaptive": "clipping_norm down; norm_bit (a bool) up with each reply",
    "local": "nothing: each client clips and adds noise before it replies",
}


@dataclass(frozen=True)
class DpConfig:
    """One DP comparison: the same no-op run under each variant."""

    supernodes: int = 2  # simulated clients
    rounds: int = 1  # federated rounds
    noise_multiplier: float = 0.1  # central DP's Gaussian noise, in units of the clipping norm
    clipping_norm: float = 1.0  # central DP's fixed norm, local DP's clipping norm
    epsilon: float = 1.0  # local DP (LocalDpMod)
    delta: float = 1e-5  # local DP (LocalDpMod)


class ShiftClient(NumPyClient):
    """A no-op client whose reply differs from what it got (every value + 1e-3, same dtype), as after training:
    Flower's clipping divides by the update's norm, and a no-op client's update is zero."""

    def fit(self, parameters, config):
        """Send the model back shifted by 1e-3."""
        return [p + p.dtype.type(1e-3) for p in parameters], 1, {}


def shift_app(mods: list) -> ClientApp:
    """A legacy ClientApp of ShiftClients behind `mods`."""
    return ClientApp(client_fn=lambda context: ShiftClient().to_client(), mods=mods)


def dp_strategy(variant: str, cfg: DpConfig):
    """The legacy strategy of a variant: FedAvg, or FedAvg inside one of Flower's DP wrappers."""
    base = FedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=cfg.supernodes,
                  min_available_clients=cfg.supernodes)  # fmt: skip
    n, z, c = cfg.supernodes, cfg.noise_multiplier, cfg.clipping_norm
    wrappers: dict[str, Callable] = {
        "fedavg": lambda: base,
        "central-server-fixed": lambda: DifferentialPrivacyServerSideFixedClipping(base, z, c, n),
        "central-server-adaptive": lambda: DifferentialPrivacyServerSideAdaptiveClipping(base, z, n),
        "central-client-fixed": lambda: DifferentialPrivacyClientSideFixedClipping(base, z, c, n),
        "central-client-adaptive": lambda: DifferentialPrivacyClientSideAdaptiveClipping(base, z, n),
        "local": lambda: base,
    }
    return wrappers[variant]()


def dp_mods(variant: str, cfg: DpConfig) -> list:
    """The client mods a variant needs (Flower's own)."""
    if variant == "central-client-fixed":
        return [fixedclipping_mod]
    if variant == "central-client-adaptive":
        return [adaptiveclipping_mod]
    if variant == "local":
        return [LocalDpMod(cfg.clipping_norm, cfg.clipping_norm, cfg.epsilon, cfg.delta)]
    return []


def run_dp(variant: str, cfg: DpConfig, arrays: dict[str, np.ndarray]) -> Ledger:
    """Run one variant from `arrays`; return its Grid ledger."""
    ledger = Ledger()

    def server_fn(context) -> ServerAppComponents:
        strategy = dp_strategy(variant, cfg)
        base = getattr(strategy, "strategy", strategy)
        base.initial_parameters = legacy_parameters(arrays.items())
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=cfg.rounds))

    server = MeteredServerApp(ServerApp(server_fn=server_fn), ledger)
    run(server, shift_app(dp_mods(variant, cfg)), cfg.supernodes, NOOP_BACKEND_CONFIG)
    return ledger


def bill_row(variant: str, ledger: Ledger, plain: dict | None = None) -> dict:
    """One line of DP's bill: bytes down/up by record kind, and what it adds over plain FedAvg."""
    rows = ledger.transfers
    row = {"variant": variant}
    for direction in (DOWN, UP):
        for kind in ("array_bytes", "config_bytes", "metric_bytes"):
            row[f"{direction}_{kind}"] = sum(getattr(t, kind) for t in rows if t.direction == direction)
    row["total_bytes"] = ledger.total_bytes()
    row["added_bytes"] = row["total_bytes"] - (plain["total_bytes"] if plain else row["total_bytes"])
    row["adds"] = ADDS[variant]
    return row


def dp_bill(cfg: DpConfig, arrays: dict[str, np.ndarray], variants=VARIANTS) -> list[dict]:
    """DP's bill: every variant's bytes next to plain FedAvg (run first), one row each."""
    plain = bill_row("fedavg", run_dp("fedavg", cfg, arrays))
    return [plain] + [bill_row(v, run_dp(v, cfg, arrays), plain) for v in variants if v != "fedavg"]
