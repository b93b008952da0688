"""The lesson's no-op clients under Flower's secure aggregation (SecAgg+), every message metered at the Grid.

Flower 1.42 offers SecAgg+ on the legacy API only: `SecAggPlusWorkflow` as the fit workflow of a
`DefaultWorkflow` on the server, `secaggplus_mod` on the ClientApp. A round is four exchanges (stages) instead
of one: setup (public keys up), share keys (each node's neighbours' keys down, encrypted key shares up),
collect masked vectors (the shares and the model down, the masked model up as int64 in a ConfigRecord),
unmask (who survived down, the shares that remove the masks up). The strategy hooks see none of it as bytes;
the Grid meter sees all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from ..checks import ConfigError, check_count
from ..client_app import make_legacy_app
from ..ledger import Ledger
from ..meter import SECAGG_CONFIGS, STAGE_KEY, message_stage, metered
from ..model import TensorSpec
from ..names import PARTITION_ID
from ..simulation import NOOP_BACKEND_CONFIG, legacy_parameters, run
from ..theory import sampled_nodes
from .formula import SecAggPlan
from .packing import pack_mod, unpacking
from .stages import round_id_digits, stage_rows

# Flower's SecAgg+ defaults (SecAggPlusWorkflow.__init__), and the stages of one round, in order.
CLIPPING_RANGE, QUANTIZATION_RANGE, MODULUS_RANGE, MAX_WEIGHT = 8.0, 2**22, 2**32, 1000.0
AGGREGATE_DTYPE = "float64"  # SecAgg+ dequantizes the sum in float64: the model goes down so from round 2 on


@dataclass(frozen=True)
class SecAggConfig:
    """A SecAgg+ run of no-op clients; invalid values raise ConfigError naming the parameter."""

    supernodes: int = 3  # simulated clients (SuperNodes)
    rounds: int = 1  # federated rounds
    shares: int = 3  # --secagg-shares: shares each node's secrets are split into (its neighbours, itself included)
    threshold: int = 2  # --secagg-threshold: shares needed to rebuild a secret (2 <= threshold < shares)
    clipping_range: float = CLIPPING_RANGE  # parameters are clipped to [-c, c] before quantization
    quantization_range: int = QUANTIZATION_RANGE  # quantized to integers in [0, q)
    modulus_range: int = MODULUS_RANGE  # masks and masked values live in [0, m); a power of 2, > q, <= 2**32
    pack: bool = False  # --secagg-pack: the masked vector travels in the bytes its modulus needs, not int64
    drop_partitions: tuple[int, ...] = field(default_factory=tuple)  # nodes that die after sharing their keys
    keep_dtype: bool = True  # the aggregate back in the model's dtype; False: Flower's float64 (2x down from round 2)
    api: str = "legacy"  # Flower has SecAgg+ for the legacy API only

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        if self.api != "legacy":
            raise ConfigError(f"--api must be legacy with --secagg (Flower has no SecAgg+ for the {self.api} API)")
        check_count("--secagg-shares", self.shares, minimum=3)  # Flower: an int num_shares must be > 2
        if self.shares > self.supernodes:
            raise ConfigError(f"--secagg-shares must be <= --supernodes ({self.supernodes}), got {self.shares}")
        if self.shares % 2 == 0 and self.shares != self.supernodes:
            raise ConfigError(
                f"--secagg-shares must be odd or equal --supernodes, got {self.shares}: Flower 1.42 tells the clients "
                "an even count but builds a ring of count + 1, and its clients fail"
            )
        check_count("--secagg-threshold", self.threshold, minimum=2)
        if self.threshold >= self.shares:
            raise ConfigError(f"--secagg-threshold must be < --secagg-shares ({self.shares}), got {self.threshold}")
        check_modulus(self.quantization_range, self.modulus_range)
        if self.clipping_range <= 0:
            raise ConfigError(f"--secagg-clipping-range must be > 0, got {self.clipping_range}")

    @property
    def sampled(self) -> int:
        """Nodes in each round's SecAgg+ (all of them: fraction 1.0)."""
        return sampled_nodes(self.supernodes, 1.0)


def check_modulus(quantization_range: int, modulus_range: int) -> None:
    """Flower's rules for the ranges: q >= 1, m a power of 2 with q < m <= 2**32; else ConfigError."""
    check_count("--secagg-quantization-range", quantization_range)
    check_count("--secagg-modulus-range", modulus_range, minimum=2)
    if modulus_range & (modulus_range - 1) or modulus_range > MODULUS_RANGE:
        raise ConfigError(f"--secagg-modulus-range must be a power of 2 up to 2**32, got {modulus_range}")
    if modulus_range <= quantization_range:
        raise ConfigError(
            f"--secagg-modulus-range must be > --secagg-quantization-range ({quantization_range}), got {modulus_range}"
        )


def dropout_mod(partitions: Collection[int]) -> Callable:
    """A client mod: nodes in `partitions` die after sharing their keys (fail at 'collect masked vectors')."""
    dying = frozenset(partitions)

    def mod(msg: Message, context: Context, call_next) -> Message:
        configs = msg.content.config_records.get(SECAGG_CONFIGS) if msg.has_content() else None
        stage = configs.get(STAGE_KEY) if configs is not None else None
        if stage == "collect_masked_vectors" and context.node_config.get(PARTITION_ID) in dying:
            raise RuntimeError("this node died after sharing its keys")
        return call_next(msg, context)

    return mod


def seeded_rounding(msg: Message, context: Context, call_next) -> Message:
    """A client mod: seed numpy's global generator per node and round, so SecAgg+'s stochastic quantization
    draws the same in two runs (with one ClientApp at a time): their aggregates can then be compared bit by bit."""
    np.random.seed(1000 * int(context.node_config[PARTITION_ID]) + int(msg.metadata.group_id or 0))
    return call_next(msg, context)


def size_mod_view(seen: list[dict]) -> Callable:
    """A client mod that notes, per reply, the bytes Flower's `arrays_size_mod` logs as sent (its ArrayRecords)."""
    from flwr.clientapp.mod.comms_mods import _get_array_record_size_stats  # what arrays_size_mod logs

    def mod(msg: Message, context: Context, call_next) -> Message:
        stage = message_stage(msg)
        reply = call_next(msg, context)
        sent = sum(stat["bytes"] for stat in _get_array_record_size_stats(reply).values())
        seen.append({"stage": stage, "node_id": msg.metadata.dst_node_id, "size_mod_bytes": sent})
        return reply

    return mod


def secagg_client_app(cfg: SecAggConfig, outer_mods: Iterable[Callable] = ()) -> ClientApp:
    """The lesson's no-op clients behind secaggplus_mod (and the packing and dropout mods the config asks for)."""
    mods = [*outer_mods, *([dropout_mod(cfg.drop_partitions)] if cfg.drop_partitions else [])]
    mods += [pack_mod(cfg.modulus_range)] if cfg.pack else []
    return make_legacy_app(mods=[*mods, secaggplus_mod])


class KeepingFedAvg(FedAvg):
    """FedAvg under SecAgg+, which keeps each round's aggregate (as ndarrays).

    SecAgg+ unmasks the weighted average itself and hands every result that same Parameters object;
    FedAvg would deserialize it once per node to average N copies of it. Here it is taken as it is.
    """

    def __init__(self, dtypes: list | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dtypes = dtypes  # cast the aggregate's arrays back to these (None: keep SecAgg+'s float64)
        self.aggregates: list[list[np.ndarray]] = []

    def aggregate_fit(self, server_round, results, failures):
        """The average SecAgg+ unmasked (every result carries it), kept; FedAvg's own path otherwise."""
        shared = {id(res.parameters) for _, res in results}
        if len(shared) != 1:
            parameters, metrics = super().aggregate_fit(server_round, results, failures)
        else:
            parameters, metrics = results[0][1].parameters, {}
        if parameters is None:
            return parameters, metrics
        arrays = parameters_to_ndarrays(parameters)
        if self.dtypes is not None:
            arrays = [a.astype(dtype, copy=False) for a, dtype in zip(arrays, self.dtypes, strict=True)]
            parameters = ndarrays_to_parameters(arrays)
        self.aggregates.append(arrays)
        return parameters, metrics


def workflow(cfg: SecAggConfig) -> DefaultWorkflow:
    """Flower's DefaultWorkflow with SecAggPlusWorkflow as its fit workflow, configured from `cfg`."""
    secagg = SecAggPlusWorkflow(
        cfg.shares,
        cfg.threshold,
        max_weight=MAX_WEIGHT,
        clipping_range=cfg.clipping_range,
        quantization_range=cfg.quantization_range,
        modulus_range=cfg.modulus_range,
    )
    return DefaultWorkflow(fit_workflow=secagg)


def run_workflow(grid: Grid, context: Context, cfg: SecAggConfig, ledger: Ledger, strategy: FedAvg, pairs) -> None:
    """Run `strategy` under SecAgg+ from the (name, array) `pairs` on `grid`, metered into `ledger` (masked
    vectors unpacked after the meter, so it counts what crossed)."""
    grid = metered(grid, ledger)
    grid = unpacking(grid) if cfg.pack else grid
    strategy.initial_parameters = legacy_parameters(pairs)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=cfg.rounds), strategy=strategy)
    workflow(cfg)(grid, legacy)


def secagg_server_app(cfg: SecAggConfig, pairs: Callable[[], Iterable], ledger: Ledger, strategy: FedAvg) -> ServerApp:
    """A ServerApp running `strategy` under SecAgg+ on a metered Grid (see run_workflow)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_workflow(grid, context, cfg, ledger, strategy, pairs())

    return app


def run_secagg(
    cfg: SecAggConfig, arrays: dict[str, np.ndarray], ledger: Ledger | None = None, outer_mods=(), workers: int = 2
):
    """Run `cfg` from `arrays` in simulation; return (the Grid meter's ledger, each round's aggregate).
    `outer_mods`: client mods placed before all others (e.g. one that seeds the quantizer's random rounding);
    `workers`: ClientApps at once (2 on this idle 2-core machine: 13.1-14.1 s against 19.3-21.5 s with 1, 10
    nodes x 2 rounds of pythia-14m; 1 where each node must own numpy's global seed)."""
    ledger = ledger if ledger is not None else Ledger()
    n = cfg.sampled
    dtypes = [a.dtype for a in arrays.values()] if cfg.keep_dtype else None
    strategy = KeepingFedAvg(
        dtypes, fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=cfg.supernodes
    )
    server = secagg_server_app(cfg, lambda: arrays.items(), ledger, strategy)
    backend = {**NOOP_BACKEND_CONFIG, "inprocess": {"workers": workers}}
    run(server, secagg_client_app(cfg, outer_mods), cfg.supernodes, backend)
    return ledger, strategy.aggregates


def round_specs(specs, round: int, keep_dtype: bool = True) -> tuple[TensorSpec, ...]:
    """The model's tensors as they go down in `round`: as given, or from round 2 on float64 (SecAgg+'s own sum)."""
    if keep_dtype or round == 1:
        return tuple(specs)
    return tuple(TensorSpec(s.name, s.shape, AGGREGATE_DTYPE) for s in specs)


def secagg_plan(cfg: SecAggConfig, specs, round: int = 1, id_digits: int | None = None) -> SecAggPlan:
    """What the formula needs to know of `cfg`, the model's tensor specs and the round (node-id digits: or None)."""
    dropped = len([p for p in cfg.drop_partitions if p < cfg.supernodes])
    return SecAggPlan(
        cfg.sampled,
        cfg.shares,
        round_specs(specs, round, cfg.keep_dtype),
        cfg.modulus_range,
        cfg.pack,
        dropped,
        id_digits,
    )


def run_stages(cfg: SecAggConfig, ledger: Ledger, specs) -> list[dict]:
    """A run's stages, measured and predicted (with the round's node ids), in the --json shape."""
    return stage_rows(ledger, lambda r: secagg_plan(cfg, specs, r, round_id_digits(ledger, r)))
