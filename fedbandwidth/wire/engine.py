"""A run of the Flower App on a local Deployment Engine: ``fedbandwidth deploy --supernodes N --rounds R [--tls]``.

It starts ``flower-superlink`` and N ``flower-supernode`` processes on 127.0.0.1, each SuperNode behind its
own byte-counting relay (relay.py), runs the app with ``flwr run``, and tears every process down afterwards
(also on an error or Ctrl-C). report.py then puts the wire bytes next to the ledger's payload bytes.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..checks import ConfigError, check_count, check_fraction, check_writable
from ..names import DOWN
from ..server_app import LEDGER_CSV, TIMELINE_CSV
from ..theory import default_min_nodes
from .commands import (
    CONNECTION,
    find_executables,
    flower_env,
    run_config_args,
    stage_app,
    superlink_argv,
    supernode_argv,
    write_connection,
)
from .processes import (
    MARKER,
    DeployError,
    Processes,
    check_port_free,
    free_port,
    marked_processes,
    process_alive,
    signals_as_interrupt,
    signals_ignored,
    wait_for_port,
)
from .relay import Relay
from .tls import TlsFiles, check_tls_files, generate_tls, tls_files_in


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
    run_timeout: float = 900.0  # seconds before the whole run is abandoned
    model: str = "pythia-14m"  # architecture whose exact arrays are sent

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_count("port", self.port, minimum=0)
        check_count("round_timeout", self.round_timeout)
        if self.port > 65535:
            raise ConfigError(f"port must be <= 65535, got {self.port}")

    @property
    def use_tls(self) -> bool:
        """TLS is on with --tls or with --certs."""
        return self.tls or self.certs is not None

    @property
    def min_train_nodes(self) -> int:
        """Flower's default minimum of 2 sampled nodes, or fewer if fewer exist."""
        return default_min_nodes(self.supernodes)


def prepare_tls(cfg: DeployConfig, folder: Path) -> TlsFiles | None:
    """The TLS files of the run: checked user files, freshly generated ones, or None (insecure)."""
    if cfg.certs is not None:
        return check_tls_files(tls_files_in(cfg.certs))
    return generate_tls(folder) if cfg.tls else None


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
        "out-dir": str(out),
    }


@dataclass(frozen=True)
class NodeFault:
    """Kill one SuperNode mid-run (to show what a lost node costs): SIGKILL after its relay sent this much."""

    partition: int = 0  # which SuperNode
    after_down_bytes: int = 20 * 2**20  # once this many bytes went down to it (mid-model)
    signum: int = signal.SIGKILL  # SIGKILL: no goodbye to the SuperLink

    def due(self, relay: Relay) -> bool:
        """True once the node's relay has sent it `after_down_bytes`."""
        return relay.totals()[DOWN] >= self.after_down_bytes


@dataclass
class DeployRun:
    """What a deployment left behind: where, the relays' counts, node ids, status, timings."""

    cfg: DeployConfig  # what was asked
    out: Path  # the folder with ledger.csv, timeline.csv, logs/
    relays: list[Relay]  # one per SuperNode, closed, counts kept
    node_ids: list[int | None]  # Flower node id of each SuperNode (from its log)
    run_id: int | None  # Flower run id
    status: str  # e.g. "finished:completed"
    lost: list[int]  # partitions whose SuperNode died during the run
    wall_seconds: float  # from the SuperLink's start to the end of `flwr run`
    pids: list[int] = field(default_factory=list)  # every process that was stopped
    marker: str = ""  # value of MARKER in every process this run started

    def leftovers(self) -> list[int]:
        """PIDs of processes this run started that still live (should be none)."""
        stopped = [psutil.Process(pid) for pid in self.pids if psutil.pid_exists(pid)]
        return sorted({p.pid for p in marked_processes(self.marker)} | {p.pid for p in stopped if process_alive(p)})


def deploy(cfg: DeployConfig, fault: NodeFault | None = None) -> DeployRun:
    """Run the app on a loopback Deployment Engine behind relays; always tear everything down."""
    exes = find_executables(cfg.flower_bin)
    out = check_writable(cfg.out).resolve()
    port = check_port_free(cfg.port) if cfg.port else free_port()
    tls = prepare_tls(cfg, out / "certs")
    app_dir = stage_app(out / "app")
    flwr_home = out / "flwr_home"
    write_connection(flwr_home, f"127.0.0.1:{port}", tls.ca_cert if tls else None)
    for name in (LEDGER_CSV, TIMELINE_CSV):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    processes = Processes(flower_env(flwr_home, Path(exes["flwr"]).parent, uuid.uuid4().hex), out / "logs")
    relays: list[Relay] = []
    started = time.monotonic()
    try:
        with signals_as_interrupt():
            link = processes.start("superlink", superlink_argv(exes["flower-superlink"], port, tls))
            wait_for_port(port, link, processes, "superlink")
            for i in range(cfg.supernodes):
                relays.append(Relay(port, name=f"supernode-{i}").start())
                processes.start(
                    f"supernode-{i}",
                    supernode_argv(exes["flower-supernode"], relays[i].port, free_port(), i, cfg.supernodes, tls),
                )
            processes.start(
                "flwr-run",
                [exes["flwr"], "run", str(app_dir), CONNECTION, "--stream", *run_config_args(app_settings(cfg, out))],
                cwd=out,
            )
            lost = wait_for_run(cfg, processes, relays, fault)
            run_id = read_run_id(processes)
            status = run_status(exes["flwr"], run_id, processes) if run_id else "not started"
            node_ids = [read_node_id(processes, f"supernode-{i}") for i in range(cfg.supernodes)]
            wall = time.monotonic() - started
    finally:
        with signals_ignored():  # a second Ctrl-C must not cut the teardown short
            pids = processes.stop()
            for relay in relays:
                relay.close()
    return DeployRun(cfg, out, relays, node_ids, run_id, status, lost, wall, pids, processes.env[MARKER])


def wait_for_run(cfg: DeployConfig, processes: Processes, relays: list[Relay], fault: NodeFault | None) -> list[int]:
    """Poll until `flwr run` ends; return partitions whose SuperNode died. DeployError on failure."""
    runner, link = processes.started["flwr-run"], processes.started["superlink"]
    deadline = time.monotonic() + cfg.run_timeout
    lost: list[int] = []
    while runner.poll() is None:
        if link.poll() is not None:
            raise DeployError(f"the SuperLink exited with code {link.returncode}: {processes.log_tail('superlink')}")
        if time.monotonic() > deadline:
            raise DeployError(f"the run did not finish within {cfg.run_timeout:.0f} s; logs in {processes.logs}")
        if fault and fault.partition not in lost and fault.due(relays[fault.partition]):
            processes.started[f"supernode-{fault.partition}"].send_signal(fault.signum)
        for i in range(cfg.supernodes):
            if i not in lost and processes.started[f"supernode-{i}"].poll() is not None:
                lost.append(i)
        time.sleep(0.2)
    if runner.returncode != 0:
        raise DeployError(f"flwr run exited with code {runner.returncode}: {processes.log_tail('flwr-run', 2)}")
    return lost


def logged_number(processes: Processes, name: str, pattern: str) -> int | None:
    """The number `pattern` captures first in a process's log, or None."""
    match = re.search(pattern, (processes.logs / f"{name}.log").read_text(errors="replace"))
    return int(match.group(1)) if match else None


def read_run_id(processes: Processes) -> int | None:
    """The run id `flwr run` printed ("Successfully started run N")."""
    return logged_number(processes, "flwr-run", r"started run (\d+)")


def read_node_id(processes: Processes, name: str) -> int | None:
    """The node id a SuperNode logged ("SuperNode ID: N"), or None if it never registered."""
    return logged_number(processes, name, r"SuperNode ID: (\d+)")


def run_status(flwr: str, run_id: int, processes: Processes, connection: str = CONNECTION) -> str:
    """The run's final status from the SuperLink (`flwr ls --run-id N --format json`)."""
    env = {**processes.env, "NO_COLOR": "1", "TERM": "dumb"}  # plain JSON, also inside Jupyter
    done = subprocess.run(
        [flwr, "ls", connection, "--run-id", str(run_id), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # rich may colour it anyway
    try:
        return json.loads(text[text.index("{") :])["runs"][0]["status"]
    except (ValueError, KeyError, IndexError):
        return "unknown: " + " ".join((text or done.stderr).split())[:160]
