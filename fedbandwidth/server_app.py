"""The lesson as a Flower App: ``app`` is the ServerApp that `flwr run` starts (simulation or deployment).

It reads the run config (kebab-case keys, defaults in pyproject.toml ``[tool.flwr.app.config]``),
runs MessageTrackingFedAvg from the model's exact arrays, and writes into ``out-dir``:
``ledger.csv`` (one row per model message, as in `simulate`) and ``timeline.csv`` (when each
round started and when the run ended, Unix time), so wire bytes counted elsewhere can be split by round.

It never waits forever for a node: round 1 waits at most the round timeout for ``min-available-nodes``, later
rounds sample from the nodes connected when they start (a node that is gone is not waited for; one that
(re)joined is sampled). A model message is written once its fate is known (app_rounds.py): delivered, or never
fetched (its node written to the timeline as lost, and not sampled again until Flower sees it again). With
``over-commit`` x a round samples ceil(x * K) nodes and closes at the K-th reply (or ``close-at``, or its
``deadline``); later replies are written as late: their bytes crossed, but were wasted.
"""

from __future__ import annotations

import csv
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Array, ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp

from .app_rounds import LATE_REPLY as LATE_REPLY  # timeline events, also read by the wire report
from .app_rounds import NODE_LOST as NODE_LOST
from .app_rounds import RoundGrid, check_at_least, sample_size, wasted_bytes
from .checks import ConfigError, check_choice, check_count, check_fraction
from .ledger import Ledger
from .meter import metered
from .model import known_models, random_arrays
from .names import DOWN, TRAIN
from .tracking import MessageTrackingFedAvg, record_messages, sampling

log = logging.getLogger("flwr")

LEDGER_CSV, GRID_LEDGER_CSV, TIMELINE_CSV = "ledger.csv", "grid_ledger.csv", "timeline.csv"
ROUND_START, RUN_END = "round_start", "run_end"  # timeline events
NO_NODES = "no_nodes"  # no node to sample (NODE_LOST, LATE_REPLY: app_rounds.py)
TIMELINE_COLUMNS = ("round", "event", "unix_time", "node_id")


@dataclass(frozen=True)
class AppSettings:
    """The ServerApp's run config, checked (keys are the kebab-case names in pyproject.toml)."""

    num_server_rounds: int = 1  # federated rounds
    fraction_train: float = 1.0  # fraction of connected nodes sampled for training
    fraction_evaluate: float = 0.0  # fraction sampled for evaluation (the course: 0)
    min_train_nodes: int = 2  # at least this many nodes train each round
    min_available_nodes: int = 2  # wait until this many nodes are connected
    round_timeout: float = 600.0  # seconds to wait for a round's replies
    model: str = "pythia-14m"  # architecture whose exact arrays are sent
    out_dir: str = "build/app"  # ledger.csv and timeline.csv go here
    over_commit: float = 1.0  # sample ceil(over_commit * K) nodes (K: from fraction and minimum) ...
    close_at: int = 0  # ... and close the round at this many replies (0: at K)
    deadline: float = 0.0  # close a round this many seconds after its models went out (0: no deadline)
    solo_rounds: tuple[int, ...] = ()  # rounds that sample one node only (calibrate: messages alone and at once)


def solo_rounds(text) -> tuple[int, ...]:
    """The rounds of a "solo-rounds" run-config value ("2,4"; "" none); anything else raises ConfigError."""
    try:
        rounds = tuple(int(r) for r in str(text).replace(" ", "").split(",") if r)
    except ValueError:
        raise ConfigError(f"solo-rounds must be round numbers separated by commas, got {text!r}") from None
    return tuple(check_count("solo-rounds", r) for r in rounds)


def read_settings(run_config: dict) -> AppSettings:
    """Check the run config and return it as AppSettings; a bad value raises ConfigError."""
    get = lambda key, default: run_config.get(key, default)  # noqa: E731
    d = AppSettings()
    return AppSettings(
        num_server_rounds=check_count("num-server-rounds", get("num-server-rounds", d.num_server_rounds)),
        fraction_train=check_fraction("fraction-train", get("fraction-train", d.fraction_train)),
        fraction_evaluate=check_fraction(
            "fraction-evaluate", get("fraction-evaluate", d.fraction_evaluate), allow_zero=True
        ),
        min_train_nodes=check_count("min-train-nodes", get("min-train-nodes", d.min_train_nodes)),
        min_available_nodes=check_count("min-available-nodes", get("min-available-nodes", d.min_available_nodes)),
        round_timeout=float(check_count("round-timeout", get("round-timeout", int(d.round_timeout)))),
        model=check_choice("model", get("model", d.model), known_models()),
        out_dir=str(get("out-dir", d.out_dir)),
        over_commit=check_at_least("over-commit", get("over-commit", d.over_commit), 1.0),
        close_at=check_count("close-at", get("close-at", d.close_at), minimum=0),
        deadline=check_at_least("deadline", get("deadline", d.deadline), 0.0),
        solo_rounds=solo_rounds(get("solo-rounds", "")),
    )


def append_event(path: Path, server_round: int, event: str, node_id: int | str = "") -> None:
    """Append (round, event, Unix time, node id if the event is about one node) to the timeline CSV."""
    with path.open("a", newline="") as f:
        csv.writer(f).writerow([server_round, event, f"{time.time():.6f}", node_id])


class NodeSnapshot:
    """The grid, except that get_node_ids() returns the nodes seen once: Flower's sampler then never waits."""

    def __init__(self, grid: Grid, node_ids: list[int]) -> None:
        self._grid, self._node_ids = grid, list(node_ids)

    def get_node_ids(self) -> list[int]:
        """The node ids of the snapshot."""
        return list(self._node_ids)

    def __getattr__(self, name: str):
        return getattr(self._grid, name)


def connected_nodes(grid: Grid, wanted: int, seconds: float) -> list[int]:
    """The node ids connected now, after waiting at most `seconds` for `wanted` of them."""
    deadline = time.monotonic() + seconds
    while len(nodes := list(grid.get_node_ids())) < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    return nodes


class TimedTrackingFedAvg(MessageTrackingFedAvg):
    """MessageTrackingFedAvg that writes each round's start into a timeline CSV, samples from the nodes connected
    now (Flower's own sampler waits forever for min_available_nodes) that are not missing, and over-commits."""

    def __init__(
        self,
        ledger: Ledger,
        timeline_csv: Path,
        wait_seconds: float = 600.0,
        over_commit: float = 1.0,
        solo: tuple[int, ...] = (),
        **kwargs,
    ) -> None:
        super().__init__(ledger, **kwargs)
        self.timeline_csv = timeline_csv
        self.wait_seconds = wait_seconds  # round 1 waits at most this long for min_available_nodes
        self.over_commit = over_commit  # sample ceil(over_commit * K) nodes
        self.solo = frozenset(solo)  # rounds that sample one node only
        self.wanted = (self.min_available_nodes, self.min_train_nodes)  # the minimums as configured

    def configure_train(self, server_round, arrays, config, grid):
        """Note the round's start; sample ceil(x * K) of the nodes connected and not missing; tell the grid K.

        On a RoundGrid the model messages are written once delivered (or not); on any other grid, now."""
        append_event(self.timeline_csv, server_round, ROUND_START)
        nodes = connected_nodes(grid, self.wanted[0] if server_round == 1 else 1, self.wait_seconds)
        nodes = grid.sampleable(nodes) if isinstance(grid, RoundGrid) else nodes
        if not nodes:
            append_event(self.timeline_csv, server_round, NO_NODES)
            return []
        k, count = sample_size(len(nodes), self.fraction_train, self.wanted[1], self.over_commit)
        k, count = (1, 1) if server_round in self.solo else (k, count)
        self.min_available_nodes = self.min_train_nodes = count
        chosen = NodeSnapshot(grid, random.sample(nodes, count))
        messages = list(super(MessageTrackingFedAvg, self).configure_train(server_round, arrays, config, chosen))
        if isinstance(grid, RoundGrid):
            grid.wanted = grid.close_at or k
        else:
            record_messages(self.ledger, server_round, TRAIN, DOWN, messages, self.arrayrecord_key)
        return messages


def run_app(grid: Grid, settings: AppSettings) -> Ledger:
    """Run the no-op FedAvg rounds of `settings` on `grid`; return the filled ledger."""
    out = Path(settings.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(csv_path=out / LEDGER_CSV)
    timeline = out / TIMELINE_CSV
    timeline.write_text(",".join(TIMELINE_COLUMNS) + "\n")
    sample = sampling(
        settings.fraction_train, settings.fraction_evaluate, settings.min_train_nodes, settings.min_available_nodes
    )
    strategy = TimedTrackingFedAvg(
        ledger,
        timeline,
        wait_seconds=settings.round_timeout,
        over_commit=settings.over_commit,
        solo=settings.solo_rounds,
        **sample,
    )
    event = lambda r, name, node: append_event(timeline, r, name, node)  # noqa: E731
    grid = metered(grid, Ledger(csv_path=out / GRID_LEDGER_CSV))  # every message pushed and pulled, any records
    rounds = RoundGrid(grid, ledger, event, close_at=settings.close_at, deadline=settings.deadline)
    initial = ArrayRecord({name: Array(a) for name, a in random_arrays(settings.model).items()})
    try:
        strategy.start(
            grid=rounds, initial_arrays=initial, num_rounds=settings.num_server_rounds, timeout=settings.round_timeout
        )
        rounds.drain()  # late replies of the last round
    finally:
        append_event(timeline, settings.num_server_rounds, RUN_END)
    log.info(
        "fedbandwidth: %d messages, %d payload bytes moved (%d wasted); ledger in %s",
        len(ledger.transfers),
        ledger.total_bytes(),
        wasted_bytes(ledger.transfers)["total"],
        ledger.csv_path,
    )
    return ledger


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Read the run config and run the measured rounds."""
    run_app(grid, read_settings(context.run_config))
