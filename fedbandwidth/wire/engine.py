"""A run of the Flower App on a local Deployment Engine: ``fedbandwidth deploy --supernodes N --rounds R [--tls]
[--links L1,L2,...]``.

It starts ``flower-superlink`` and N ``flower-supernode`` processes, each SuperNode behind its own byte-counting
relay (relay.py): on 127.0.0.1, or with ``links`` each on an emulated host of its own whose link is shaped to
its profile (network.py). It runs the app with ``flwr run`` and tears every process, namespace and veth down
afterwards (also on an error or Ctrl-C). report.py then puts wire bytes next to payload bytes, and the time
each model message took next to the time the link model predicts (timing.py).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..app_rounds import check_at_least
from ..checks import ConfigError, check_choice, check_count, check_fraction, check_writable
from ..model import known_models
from ..names import CLIENTS
from ..server_app import GRID_LEDGER_CSV, LEDGER_CSV, TIMELINE_CSV
from ..theory import default_min_nodes
from .commands import find_executables
from .deployment import Deployment, read_node_id, refusal_line
from .links import LinkProfile
from .network import EmulatedNetwork
from .processes import (
    MARKER,
    check_port_free,
    free_port,
    marked_processes,
    process_alive,
    signals_as_interrupt,
    signals_ignored,
)
from .relay import Relay
from .tls import TlsFiles, check_tls_files, generate_tls, tls_files_in

MAX_EMULATED_NODES = 250  # one 10.X.i.0/24 per emulated host


@dataclass(frozen=True)
class DeployConfig:
    """One run on a local Deployment Engine; invalid values raise ConfigError."""

    supernodes: int = 2  # SuperNode processes, each on its own port behind its own relay
    rounds: int = 1  # federated rounds
    fraction: float = 1.0  # fraction of nodes sampled for training each round
    tls: bool = False  # throw-away CA and server certificate, no --insecure anywhere
    out: Path = Path("build/deploy")  # ledger, timeline, logs, certificates, summary.json
    port: int = 0  # SuperLink port on 127.0.0.1; 0 = a free port from the OS
    certs: Path | None = None  # ca.crt, server.pem, server.key to use instead of generating (implies tls)
    flower_bin: Path | None = None  # folder of the Flower executables; None = next to Python, then PATH
    round_timeout: int = 120  # seconds the ServerApp waits for a round's replies
    run_timeout: float = 3600.0  # seconds before the whole run is torn down (the ledger is kept)
    model: str = "pythia-14m"  # architecture whose exact arrays are sent
    links: tuple[LinkProfile, ...] = ()  # emulated network: node i on its own host with links[i % len]; () = loopback
    client: str = "perturb"  # the ClientApp: "perturb" changes every array (every byte goes up), "echo" does not
    over_commit: float = 1.0  # sample ceil(over_commit * K) nodes a round (K: from fraction; Flower's minimum 2)
    close_at: int = 0  # close a round at this many replies (0: at K); later replies are late, their bytes wasted
    deadline: float = 0.0  # close a round this many seconds after its models went out (0: none; the round timeout)
    compute_seconds: tuple[float, ...] = ()  # node i's client waits compute_seconds[i % len] before replying
    auth: bool = False  # SuperNode authentication: only SuperNodes whose key was registered may join (needs TLS)
    unregistered: int = 0  # SuperNodes started besides, with a key nobody registered (--auth: Flower refuses them)
    app_config: tuple[tuple[str, object], ...] = ()  # run-config keys added for the app, e.g. SecAgg+'s
    calibration: Path | None = None  # this machine's CPU terms for the time predictions (None: the default path)
    server_link: LinkProfile | None = None  # the SuperLink's own link, one bottleneck all nodes share (None: none)

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_count("port", self.port, minimum=0)
        check_count("round_timeout", self.round_timeout)
        check_choice("client", self.client, CLIENTS)
        check_choice("model", self.model, known_models())
        if self.port > 65535:
            raise ConfigError(f"port must be <= 65535, got {self.port}")
        if not self.run_timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.run_timeout}")
        if self.links and self.supernodes > MAX_EMULATED_NODES:
            raise ConfigError(f"--links emulates at most {MAX_EMULATED_NODES} SuperNodes, got {self.supernodes}")
        self.check_stragglers()
        check_count("unregistered", self.unregistered, minimum=0)
        if self.auth and not self.use_tls:
            raise ConfigError("--auth needs --tls (or --certs): Flower authenticates SuperNodes over TLS only")

    def check_stragglers(self) -> None:
        """Over-commit >= 1, a deadline > 0 within the round timeout, compute seconds >= 0; else ConfigError."""
        check_at_least("over-commit", self.over_commit, 1.0)
        check_count("close-at", self.close_at, minimum=0)
        if self.deadline and not 0 < self.deadline <= self.round_timeout:
            raise ConfigError(f"deadline must lie in (0, round timeout {self.round_timeout}] s, got {self.deadline}")
        for seconds in self.compute_seconds:
            check_at_least("compute-seconds", seconds, 0.0)

    def compute_seconds_of(self, partition: int) -> float:
        """How long node `partition`'s client waits before replying (0: no wait)."""
        return self.compute_seconds[partition % len(self.compute_seconds)] if self.compute_seconds else 0.0

    @property
    def use_tls(self) -> bool:
        """TLS is on with --tls or with --certs."""
        return self.tls or self.certs is not None

    @property
    def min_train_nodes(self) -> int:
        """Flower's default minimum of 2 sampled nodes, or fewer if fewer exist."""
        return default_min_nodes(self.supernodes)

    def link_of(self, partition: int) -> LinkProfile | None:
        """The emulated link of SuperNode `partition` (links in turn), or None on loopback."""
        return self.links[partition % len(self.links)] if self.links else None


def prepare_tls(cfg: DeployConfig, folder: Path, addresses: list[str] = ()) -> TlsFiles | None:
    """The TLS files of the run: checked user files, or fresh ones naming `addresses` too, or None (insecure)."""
    if cfg.certs is not None:
        return check_tls_files(tls_files_in(cfg.certs))
    return generate_tls(folder, addresses) if cfg.tls else None


def app_settings(cfg: DeployConfig, out: Path) -> dict:
    """The run config the ServerApp reads (kebab-case, as in pyproject.toml)."""
    return {
        "num-server-rounds": cfg.rounds,
        "fraction-train": cfg.fraction,
        "fraction-evaluate": 0.0,
        "min-train-nodes": cfg.min_train_nodes,
        "min-available-nodes": cfg.supernodes,
        "round-timeout": cfg.round_timeout,
        "model": cfg.model,
        "client": cfg.client,
        "out-dir": str(out),
        "over-commit": float(cfg.over_commit),
        "close-at": cfg.close_at,
        "deadline": float(cfg.deadline),
        **dict(cfg.app_config),
    }


@dataclass
class DeployRun:
    """What a deployment left behind: where, the relays' counts, node ids, status, timings."""

    cfg: DeployConfig  # what was asked
    out: Path  # the folder with ledger.csv, timeline.csv, logs/
    relays: list[Relay]  # one per SuperNode, closed, counts kept
    node_ids: list[int | None]  # Flower node id of each SuperNode (from its log)
    run_id: int | None  # Flower run id
    status: str  # e.g. "finished:completed", or "timed out"
    lost: list[int]  # partitions whose SuperNode died during the run
    wall_seconds: float  # from the SuperLink's start to the end of `flwr run`
    pids: list[int] = field(default_factory=list)  # every process that was stopped
    marker: str = ""  # value of MARKER in every process this run started
    links: list[LinkProfile | None] = field(default_factory=list)  # each partition's emulated link (None: loopback)
    counters: list[dict] = field(default_factory=list)  # each partition's kernel counters of its veth, this run
    events: list[dict] = field(default_factory=list)  # faults fired and SuperNodes that died, with their time
    rejoined_ids: dict[int, list[int]] = field(default_factory=dict)  # partition -> ids of its restarted node
    network: str = ""  # prefix of every namespace and veth of the emulated network ("" on loopback)
    outsiders: list[dict] = field(default_factory=list)  # each unregistered SuperNode: relay bytes, what Flower said
    registered_ids: list[int] = field(default_factory=list)  # node ids Flower gave the registered keys (--auth)
    flower_traffic: dict | None = None  # the SuperLink's own count of the run's Fleet traffic {"down", "up"}

    def leftovers(self) -> list[int]:
        """PIDs of processes this run started that still live (should be none)."""
        stopped = [psutil.Process(pid) for pid in self.pids if psutil.pid_exists(pid)]
        return sorted({p.pid for p in marked_processes(self.marker)} | {p.pid for p in stopped if process_alive(p)})


def deploy(cfg: DeployConfig, faults: list | tuple = ()) -> DeployRun:
    """Run the app on a Deployment Engine behind relays (on emulated hosts with `cfg.links`); tear it all down."""
    exes = find_executables(cfg.flower_bin)
    out = check_writable(cfg.out).resolve()
    port = check_port_free(cfg.port) if cfg.port else free_port()
    for name in (LEDGER_CSV, GRID_LEDGER_CSV, TIMELINE_CSV):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    with signals_as_interrupt():  # Ctrl-C or SIGTERM while the network is built still removes it
        network = EmulatedNetwork.create([cfg.link_of(i) for i in range(cfg.supernodes)]) if cfg.links else None
        try:
            hosts = network.hosts if network else [None] * cfg.supernodes
            tls = prepare_tls(cfg, out / "certs", [h.host_address for h in hosts if h])
            deployment = Deployment(cfg, exes, out, port, tls, hosts)
            deployment.settings = app_settings(cfg, out)
            result = deployment.run(faults)
        finally:
            with signals_ignored():
                if network is not None:
                    network.close()
    d = deployment
    return DeployRun(
        cfg,
        out,
        d.relays,
        result["node_ids"],
        result["run_id"],
        result["status"],
        d.lost,
        result["wall_seconds"],
        d.pids,
        d.processes.env[MARKER],
        [cfg.link_of(i) for i in range(cfg.supernodes)],
        d.counters,
        d.events,
        result["rejoined_ids"],
        network.prefix if network else "",
        outsider_rows(d),
        d.registered,
        result["flower_traffic"],
    )


def outsider_rows(d: Deployment) -> list[dict]:
    """What became of each SuperNode whose key nobody registered: its relay's bytes, its node id, its last words."""
    return [
        {
            "name": f"unregistered-{j}",
            "wire_bytes": relay.totals(),
            "node_id": read_node_id(d.processes, f"unregistered-{j}"),
            "refusal": refusal_line(d.processes, f"unregistered-{j}"),
            "exit_code": d.processes.started[f"unregistered-{j}"].returncode,
        }
        for j, relay in enumerate(d.outsiders)
    ]
