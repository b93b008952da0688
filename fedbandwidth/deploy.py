"""The one place that runs the Flower App with `flwr run`: a local simulation, or a Deployment Engine on loopback.

``fedbandwidth deploy --supernodes N --rounds R [--tls]`` starts ``flower-superlink`` and N
``flower-supernode`` processes on 127.0.0.1, each SuperNode behind its own byte-counting relay
(relay.py), runs the app with ``flwr run``, and tears every process down afterwards (also on an
error or Ctrl-C). It then reports, per node and direction, the wire bytes next to the ledger's
payload bytes.

Wire bytes are split into rounds by time: the ServerApp writes when each round starts and when the
run ends (timeline.csv, Unix time, same machine); the relay timestamps each chunk it forwards.
Round r gets the bytes forwarded from its start to the next round's start (the last round: to the
end of the run). Bytes outside every round (registration, heartbeats while waiting) are ``other``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, SimulationConfig, check_count, check_fraction
from .relay import DOWN, UP, Relay
from .server_app import LEDGER_CSV, ROUND_START, RUN_END, TIMELINE_CSV
from .tls import TlsFiles, check_tls_files, generate_tls, tls_files_in

PROJECT = Path(__file__).resolve().parents[1]  # holds pyproject.toml in a source checkout
PACKAGE = Path(__file__).resolve().parent
MARKER = "FEDBANDWIDTH_DEPLOY_ID"  # env var every process we start inherits: finds orphans too
CONNECTION = "fedbandwidth"  # SuperLink connection name written into $FLWR_HOME/config.toml
EXECUTABLES = ("flower-superlink", "flower-supernode", "flwr")
STARTUP_SECONDS = 90.0  # the SuperLink must accept connections within this (a loaded machine is slow)
STOP_GRACE = 8.0  # seconds between SIGTERM and SIGKILL at teardown


class DeployError(RuntimeError):
    """The deployment could not run or finish; the message says why in one line."""


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
        return min(2, self.supernodes)


# ---------------------------------------------------------------- checks before anything starts

def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS reports free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_port_free(port: int, name: str = "--port") -> int:
    """Return `port` if it can be bound on 127.0.0.1, else raise ConfigError."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise ConfigError(f"{name} {port} is already in use on 127.0.0.1 ({err.strerror})") from None
    return port


def find_executables(flower_bin: Path | None) -> dict[str, str]:
    """Paths of flower-superlink, flower-supernode and flwr; ConfigError names a missing one."""
    if flower_bin is not None:
        search = str(flower_bin)
    else:
        search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = {name: shutil.which(name, path=search) for name in EXECUTABLES}
    for name, path in found.items():
        if path is None:
            where = f"in {flower_bin}" if flower_bin is not None else "next to Python or on PATH"
            raise ConfigError(f"{name} not found {where}; install flwr (pip install 'flwr[simulation]')")
    return found


def check_writable(folder: Path) -> Path:
    """Create `folder` and prove a file can be written in it; raise ConfigError if not."""
    from .cli import check_writable as cli_check_writable

    return cli_check_writable(folder).resolve()


def prepare_tls(cfg: DeployConfig, folder: Path) -> TlsFiles | None:
    """The TLS files of the run: checked user files, freshly generated ones, or None (insecure)."""
    if cfg.certs is not None:
        return check_tls_files(tls_files_in(cfg.certs))
    return generate_tls(folder) if cfg.tls else None


# ---------------------------------------------------------------- the app, FLWR_HOME, environment

def stage_app(folder: Path) -> Path:
    """Copy the Flower App (pyproject.toml and the package) into `folder`; return it.

    `flwr run` zips what it finds under the app folder; a slim copy keeps it from walking .venv.
    """
    if not (PROJECT / "pyproject.toml").is_file():
        raise ConfigError(f"no pyproject.toml in {PROJECT}: run from a source checkout (pip install -e .)")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(PACKAGE, folder / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(PROJECT / "pyproject.toml", folder / "pyproject.toml")
    return folder


def write_connection(flwr_home: Path, address: str, ca_cert: Path | None) -> Path:
    """Write $FLWR_HOME/config.toml with one SuperLink connection (insecure or CA-verified)."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]",
             f'address = "{address}"']
    lines.append(f"root-certificates = {json.dumps(str(ca_cert))}" if ca_cert else "insecure = true")
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def flower_env(flwr_home: Path, bin_dir: Path, marker: str) -> dict[str, str]:
    """Environment for every Flower process: offline, no telemetry, FLWR_HOME, our marker."""
    env = dict(os.environ)
    env.update({"FLWR_HOME": str(flwr_home), "FLWR_TELEMETRY_ENABLED": "0",
                "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "FLWR_DISABLE_UPDATE_CHECK": "1",
                "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]), MARKER: marker,
                "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0", "PYTHONUNBUFFERED": "1"})
    return env


def run_config_args(settings: dict) -> list[str]:
    """`-c key=value` arguments for `flwr run`, TOML-quoted (strings in double quotes)."""
    args = []
    for key, value in settings.items():
        text = json.dumps(value) if isinstance(value, str) else str(value).lower() if isinstance(
            value, bool) else repr(value)
        args += ["-c", f"{key}={text}"]
    return args


# ---------------------------------------------------------------- processes

@dataclass
class Processes:
    """Processes started in their own sessions; stop() ends them, their descendants and orphans."""

    env: dict[str, str]  # environment of every process, with the marker
    logs: Path  # one log file per process
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], cwd: Path | None = None) -> subprocess.Popen:
        """Start `argv` in a new session, output to logs/<name>.log."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())  # the command line, first
            log.flush()
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.env, cwd=cwd, start_new_session=True)
        self.started[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 1) -> str:
        """Last non-empty lines of a process's log."""
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(text[-lines:])

    def stop(self) -> list[int]:
        """SIGTERM everything we started (and its descendants), SIGKILL what remains; return PIDs seen."""
        import psutil

        doomed = {p.pid: p for p in self.family()}
        for proc in doomed.values():
            _signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(list(doomed.values()), timeout=STOP_GRACE)
        for proc in alive + self.family():  # stragglers, and orphans born during the grace period
            _signal(proc, signal.SIGKILL)
        psutil.wait_procs(self.family(), timeout=STOP_GRACE)
        for proc in self.started.values():
            proc.poll()  # reap our direct children
        return sorted(doomed)

    def family(self) -> list:
        """Every live process we started, its descendants, and any process carrying our marker."""
        return marked_processes(self.env[MARKER], roots=[p.pid for p in self.started.values()])


def marked_processes(marker: str, roots: list[int] = ()) -> list:
    """Live processes descended from `roots` or whose environment carries MARKER=`marker`."""
    import psutil

    found = {}
    for pid in roots:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            pass
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return [p for p in found.values() if _alive(p)]


def _alive(proc) -> bool:
    """True if the process runs (zombies count as gone)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(proc, signum: int) -> None:
    """Send `signum` to a psutil Process, ignoring one that is already gone."""
    import psutil

    try:
        proc.send_signal(signum)
    except psutil.NoSuchProcess:
        pass


def wait_for_port(port: int, proc: subprocess.Popen, processes: Processes, name: str,
                  seconds: float = STARTUP_SECONDS) -> None:
    """Poll until 127.0.0.1:`port` accepts a connection; DeployError if `proc` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeployError(f"{name} exited with code {proc.returncode}: {processes.log_tail(name)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise DeployError(f"{name} did not accept connections on 127.0.0.1:{port} within {seconds:.0f} s")


@dataclass
class SignalsAsInterrupt:
    """Inside `with`, SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt, so teardown runs as on Ctrl-C.

    SIGINT too: a process started in the background by a non-interactive shell inherits SIGINT ignored.
    """

    saved: dict = field(default_factory=dict)

    def __enter__(self) -> SignalsAsInterrupt:
        if threading_is_main():
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.saved[signum] = signal.signal(signum, _raise_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


@dataclass
class SignalsIgnored:
    """Inside `with`, SIGINT, SIGTERM and SIGHUP are ignored (used while tearing down)."""

    saved: dict = field(default_factory=dict)

    def __enter__(self) -> SignalsIgnored:
        if threading_is_main():
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.saved[signum] = signal.signal(signum, signal.SIG_IGN)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def threading_is_main() -> bool:
    """True in the main thread (only it may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------- command lines

def tls_args(tls: TlsFiles | None, server: bool) -> list[str]:
    """--insecure, or the certificate flags of the SuperLink (server) or a SuperNode (client)."""
    if tls is None:
        return ["--insecure"]
    if server:
        return ["--ssl-ca-certfile", str(tls.ca_cert), "--ssl-certfile", str(tls.server_cert),
                "--ssl-keyfile", str(tls.server_key)]
    return ["--root-certificates", str(tls.ca_cert)]


def superlink_argv(exe: str, port: int, tls: TlsFiles | None) -> list[str]:
    """flower-superlink on 127.0.0.1:`port` (Fleet, Control and runtime APIs share it), state in memory."""
    return [exe, *tls_args(tls, server=True), "--disable-runtime-dependency-installation",
            "--host", "127.0.0.1", "--port", str(port)]


def supernode_argv(exe: str, superlink_port: int, own_port: int, partition: int, partitions: int,
                   tls: TlsFiles | None) -> list[str]:
    """flower-supernode talking to 127.0.0.1:`superlink_port` (its relay), its own runtime port."""
    return [exe, *tls_args(tls, server=False), "--superlink", f"127.0.0.1:{superlink_port}",
            "--host", "127.0.0.1", "--port", str(own_port),
            "--node-config", f"partition-id={partition} num-partitions={partitions}"]


def app_settings(cfg: DeployConfig, out: Path) -> dict:
    """The run config the ServerApp reads (kebab-case, as in pyproject.toml)."""
    return {"num-server-rounds": cfg.rounds, "fraction-train": cfg.fraction, "fraction-evaluate": 0.0,
            "min-train-nodes": cfg.min_train_nodes, "min-available-nodes": cfg.supernodes,
            "round-timeout": cfg.round_timeout, "model": cfg.model, "out-dir": str(out)}


# ---------------------------------------------------------------- the run

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
        import psutil

        stopped = [psutil.Process(pid) for pid in self.pids if psutil.pid_exists(pid)]
        return sorted({p.pid for p in marked_processes(self.marker)} | {p.pid for p in stopped if _alive(p)})


def deploy(cfg: DeployConfig, fault: NodeFault | None = None) -> DeployRun:
    """Run the app on a loopback Deployment Engine behind relays; always tear everything down."""
    exes = find_executables(cfg.flower_bin)
    out = check_writable(cfg.out)
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
        with SignalsAsInterrupt():
            link = processes.start("superlink", superlink_argv(exes["flower-superlink"], port, tls))
            wait_for_port(port, link, processes, "superlink")
            for i in range(cfg.supernodes):
                relays.append(Relay(port, name=f"supernode-{i}").start())
                processes.start(f"supernode-{i}", supernode_argv(
                    exes["flower-supernode"], relays[i].port, free_port(), i, cfg.supernodes, tls))
            processes.start("flwr-run", [exes["flwr"], "run", str(app_dir), CONNECTION, "--stream",
                                         *run_config_args(app_settings(cfg, out))], cwd=out)
            lost = wait_for_run(cfg, processes, relays, fault)
            run_id = read_run_id(processes)
            status = run_status(exes["flwr"], run_id, processes) if run_id else "not started"
            node_ids = [read_node_id(processes, f"supernode-{i}") for i in range(cfg.supernodes)]
            wall = time.monotonic() - started
    finally:
        with SignalsIgnored():  # a second Ctrl-C must not cut the teardown short
            pids = processes.stop()
            for relay in relays:
                relay.close()
    return DeployRun(cfg, out, relays, node_ids, run_id, status, lost, wall, pids, processes.env[MARKER])


def wait_for_run(cfg: DeployConfig, processes: Processes, relays: list[Relay],
                 fault: NodeFault | None) -> list[int]:
    """Poll until `flwr run` ends; return partitions whose SuperNode died. DeployError on failure."""
    runner, link = processes.started["flwr-run"], processes.started["superlink"]
    deadline = time.monotonic() + cfg.run_timeout
    lost: list[int] = []
    while runner.poll() is None:
        if link.poll() is not None:
            raise DeployError(f"the SuperLink exited with code {link.returncode}: "
                              f"{processes.log_tail('superlink')}")
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


def read_run_id(processes: Processes) -> int | None:
    """The run id `flwr run` printed ("Successfully started run N")."""
    import re

    match = re.search(r"started run (\d+)", (processes.logs / "flwr-run.log").read_text(errors="replace"))
    return int(match.group(1)) if match else None


def read_node_id(processes: Processes, name: str) -> int | None:
    """The node id a SuperNode logged ("SuperNode ID: N"), or None if it never registered."""
    import re

    match = re.search(r"SuperNode ID: (\d+)", (processes.logs / f"{name}.log").read_text(errors="replace"))
    return int(match.group(1)) if match else None


def run_status(flwr: str, run_id: int, processes: Processes, connection: str = CONNECTION) -> str:
    """The run's final status from the SuperLink (`flwr ls --run-id N --format json`)."""
    import re

    env = {**processes.env, "NO_COLOR": "1", "TERM": "dumb"}  # plain JSON, also inside Jupyter
    done = subprocess.run([flwr, "ls", connection, "--run-id", str(run_id), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # rich may colour it anyway
    try:
        return json.loads(text[text.index("{"):])["runs"][0]["status"]
    except (ValueError, KeyError, IndexError):
        return "unknown: " + " ".join((text or done.stderr).split())[:160]


# ---------------------------------------------------------------- wire bytes next to payload bytes

def load_ledger(path: Path):
    """A Ledger filled from a ledger CSV the ServerApp wrote (no new file is written)."""
    import csv

    from .ledger import Ledger

    ledger = Ledger()
    if path.exists():
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                ledger.record(int(row["round"]), row["phase"], int(row["node_id"]), row["direction"],
                              int(row["payload_bytes"]), int(row["tensor_bytes"]))
    return ledger


def round_windows(timeline_csv: Path, end: float) -> dict[int, tuple[float, float]]:
    """Round -> [start, end) in Unix time: from its start to the next round's start or the run's end."""
    import csv

    starts, run_end = {}, end
    if timeline_csv.exists():
        with timeline_csv.open(newline="") as f:
            for row in csv.DictReader(f):
                if row["event"] == ROUND_START:
                    starts[int(row["round"])] = float(row["unix_time"])
                elif row["event"] == RUN_END:
                    run_end = float(row["unix_time"])
    rounds = sorted(starts)
    ends = [starts[r] for r in rounds[1:]] + [run_end]
    return {r: (starts[r], stop) for r, stop in zip(rounds, ends)}


def wire_by_round(relays: list[Relay], windows: dict[int, tuple[float, float]]) -> dict[int, dict[str, int]]:
    """Round -> wire bytes {"down", "up"} summed over every relay, by the round's time window."""
    table = {}
    for r, (start, end) in windows.items():
        counts = [relay.bytes_between(start, end) for relay in relays]
        table[r] = {d: sum(c[d] for c in counts) for d in (DOWN, UP)}
    return table


def ratio(wire: int, payload: int) -> float | None:
    """wire / payload, rounded to 6 digits; None when no payload went that way."""
    return round(wire / payload, 6) if payload else None


def node_rows(run: DeployRun, ledger) -> list[dict]:
    """One dict per SuperNode: partition, node id, payload and wire bytes per direction, their ratio."""
    rows = []
    for i, (relay, node_id) in enumerate(zip(run.relays, run.node_ids)):
        payload = {d: sum(t.payload_bytes for t in ledger.transfers if t.node_id == node_id and t.direction == d)
                   for d in (DOWN, UP)}
        wire = relay.totals()
        rows.append({"partition": i, "node_id": node_id, "lost": i in run.lost, "payload_bytes": payload,
                     "wire_bytes": wire, "wire_per_payload": {d: ratio(wire[d], payload[d]) for d in (DOWN, UP)}})
    return rows


def deploy_summary(run: DeployRun) -> dict:
    """The run as a JSON-ready dict: simulate's summary, plus wire bytes per round and per node."""
    from .cli import summary
    from .model import tensor_specs
    from .theory import predict

    cfg = run.cfg
    sim_cfg = SimulationConfig(cfg.supernodes, cfg.rounds, cfg.fraction, 0.0, "message", cfg.model)
    ledger = load_ledger(run.out / LEDGER_CSV)
    prediction = predict(tensor_specs(cfg.model), cfg.supernodes, cfg.rounds, cfg.fraction, 0.0, "message")
    files = {"ledger_csv": run.out / LEDGER_CSV, "timeline_csv": run.out / TIMELINE_CSV, "logs": run.out / "logs"}
    report = summary(sim_cfg, ledger, prediction, run.wall_seconds, files)
    wire = wire_by_round(run.relays, round_windows(run.out / TIMELINE_CSV, end=time.time()))
    for row in report["rounds"]:
        row["wire_bytes"] = wire.get(row["round"], {DOWN: 0, UP: 0})
    totals = {d: sum(r.totals()[d] for r in run.relays) for d in (DOWN, UP)}
    in_rounds = {d: sum(w[d] for w in wire.values()) for d in (DOWN, UP)}
    report["config"].update({"tls": cfg.use_tls, "engine": "deployment"})
    report["wire_bytes"] = {**totals, "other": {d: totals[d] - in_rounds[d] for d in (DOWN, UP)}}
    report["wire_per_payload"] = {d: ratio(totals[d], report[f"{d}_bytes"]) for d in (DOWN, UP)}
    report["nodes"] = node_rows(run, ledger)
    report["run"] = {"id": run.run_id, "status": run.status, "lost_partitions": run.lost,
                     "processes_stopped": len(run.pids)}
    return write_summary(report, run.out)


def write_summary(report: dict, out: Path) -> dict:
    """Write the report to out/summary.json; return it."""
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def render_deploy_text(report: dict) -> str:
    """simulate's table, then wire vs payload per round and per node, with the ratios."""
    from .cli import render_text

    lines = [render_text(report), "", f"{'round':>5} {'payload down':>14} {'wire down':>14} "
             f"{'payload up':>14} {'wire up':>14}"]
    for r in report["rounds"]:
        lines.append(f"{r['round']:>5} {r['down_bytes']:>14,} {r['wire_bytes']['down']:>14,} "
                     f"{r['up_bytes']:>14,} {r['wire_bytes']['up']:>14,}")
    lines.append(f"{'node':>5} {'payload down':>14} {'wire down':>14} {'wire/payload':>12} "
                 f"{'payload up':>14} {'wire up':>14} {'wire/payload':>12}")
    for n in report["nodes"]:
        p, w, q = n["payload_bytes"], n["wire_bytes"], n["wire_per_payload"]
        lines.append(f"{n['partition']:>5} {p['down']:>14,} {w['down']:>14,} {_fmt_ratio(q['down']):>12} "
                     f"{p['up']:>14,} {w['up']:>14,} {_fmt_ratio(q['up']):>12}"
                     + ("  (lost mid-run)" if n["lost"] else ""))
    run = report["run"]
    lines.append(f"run {run['id']}: {run['status']}; TLS {'on' if report['config']['tls'] else 'off'}; "
                 f"{run['processes_stopped']} processes stopped")
    return "\n".join(lines)


def _fmt_ratio(value: float | None) -> str:
    """A wire/payload ratio with 4 decimals, or '-' when no payload went that way."""
    return "-" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------- the same app in simulation

LOCAL_CONFIG_TOML = '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'


def simulate_app(cfg: DeployConfig, app_dir: Path | None = None) -> DeployRun:
    """Run the app with `flwr run` on Flower's local simulation SuperLink (started, then stopped)."""
    exes = find_executables(cfg.flower_bin)
    out = check_writable(cfg.out)
    app_dir = app_dir or stage_app(out / "app")
    flwr_home = out / "flwr_home"
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(LOCAL_CONFIG_TOML)
    env = flower_env(flwr_home, Path(exes["flwr"]).parent, uuid.uuid4().hex)
    env.update({"FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),  # never a fixed, shared port
                "FLWR_LOCAL_CONTROL_API_PORT": str(free_port())})
    processes = Processes(env, out / "logs")
    federation = f"num-supernodes={cfg.supernodes} client-resources-num-cpus=1"
    started = time.monotonic()
    try:
        with SignalsAsInterrupt():
            runner = processes.start("flwr-run", [exes["flwr"], "run", str(app_dir), "--stream",
                                                  "--federation-config", federation,
                                                  *run_config_args(app_settings(cfg, out))], cwd=out)
            runner.wait(timeout=cfg.run_timeout)
            if runner.returncode != 0:
                raise DeployError(f"flwr run exited with code {runner.returncode}: "
                                  f"{processes.log_tail('flwr-run', 2)}")
            run_id = read_run_id(processes)
            status = run_status(exes["flwr"], run_id, processes, connection="local") if run_id else "not started"
            wall = time.monotonic() - started
    except subprocess.TimeoutExpired:
        raise DeployError(f"the simulation did not finish within {cfg.run_timeout:.0f} s") from None
    finally:
        with SignalsIgnored():
            pids = processes.stop()
    return DeployRun(cfg, out, [], [], run_id, status, [], wall, pids, processes.env[MARKER])


def app_summary(run: DeployRun) -> dict:
    """simulate's summary for a `flwr run` simulation of the app (no wire bytes: nothing crossed a wire)."""
    from .cli import summary
    from .model import tensor_specs
    from .theory import predict

    cfg = run.cfg
    sim_cfg = SimulationConfig(cfg.supernodes, cfg.rounds, cfg.fraction, 0.0, "message", cfg.model)
    prediction = predict(tensor_specs(cfg.model), cfg.supernodes, cfg.rounds, cfg.fraction, 0.0, "message")
    report = summary(sim_cfg, load_ledger(run.out / LEDGER_CSV), prediction, run.wall_seconds,
                     {"ledger_csv": run.out / LEDGER_CSV})
    report["config"]["engine"] = "simulation"
    report["run"] = {"id": run.run_id, "status": run.status, "processes_stopped": len(run.pids)}
    return write_summary(report, run.out)


# ---------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fedbandwidth deploy` options."""
    from .cli import _typed

    parser.add_argument("--supernodes", type=_typed(check_count), default=2,
                        help="SuperNode processes (default 2)")
    parser.add_argument("--rounds", type=_typed(check_count), default=1, help="federated rounds (default 1)")
    parser.add_argument("--fraction", type=_typed(check_fraction), default=1.0,
                        help="fraction of nodes sampled for training each round, in (0, 1] (default 1.0)")
    parser.add_argument("--tls", action="store_true",
                        help="TLS with a throw-away CA and server certificate made for this run")
    parser.add_argument("--certs", type=Path, default=None,
                        help="folder with ca.crt, server.pem, server.key to use instead (implies --tls)")
    parser.add_argument("--port", type=_typed(check_count, minimum=0), default=0,
                        help="SuperLink port on 127.0.0.1 (default 0: a free port from the OS)")
    parser.add_argument("--round-timeout", type=_typed(check_count), default=120,
                        help="seconds the server waits for a round's replies (default 120)")
    parser.add_argument("--flower-bin", type=Path, default=None,
                        help="folder of flower-superlink, flower-supernode, flwr "
                             "(default: next to Python, then PATH)")
    parser.add_argument("--out", type=Path, default=Path("build/deploy"),
                        help="folder for ledger.csv, timeline.csv, logs/, certs/, summary.json "
                             "(default build/deploy)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")


def config_from_args(args: argparse.Namespace) -> DeployConfig:
    """Check every argument (executables, port, certificates, --out) before any process starts."""
    cfg = DeployConfig(supernodes=args.supernodes, rounds=args.rounds, fraction=args.fraction, tls=args.tls,
                       out=args.out, port=args.port, certs=args.certs, flower_bin=args.flower_bin,
                       round_timeout=args.round_timeout)
    find_executables(cfg.flower_bin)
    check_writable(cfg.out)
    if cfg.port:
        check_port_free(cfg.port)
    if cfg.certs is not None:
        check_tls_files(tls_files_in(cfg.certs))
    return cfg


def run(args: argparse.Namespace) -> int:
    """`fedbandwidth deploy`: check, deploy, print the table or JSON, write summary.json."""
    cfg = config_from_args(args)
    try:
        report = deploy_summary(deploy(cfg))
    except DeployError as err:
        print(f"fedbandwidth deploy: failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report) if args.json else render_deploy_text(report))
    return 0 if report["run"]["status"].endswith("completed") else 1


# ---------------------------------------------------------------- views for the notebook

def wire_table(report: dict):
    """One row per node and direction: payload bytes, wire bytes, wire/payload."""
    import pandas as pd

    rows = [{"partition": n["partition"], "node_id": n["node_id"], "direction": d,
             "payload_bytes": n["payload_bytes"][d], "wire_bytes": n["wire_bytes"][d],
             "wire_per_payload": n["wire_per_payload"][d]} for n in report["nodes"] for d in (DOWN, UP)]
    return pd.DataFrame(rows)


def plot_payload_vs_wire(table, ax=None):
    """Paired bars per node and direction: payload MiB (what the ledger counts) and wire MiB (what moved)."""
    import numpy as np

    from .plots import _axes
    from .units import MIB

    ax = _axes(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table.payload_bytes / MIB, width=0.4, color="#1f77b4", label="payload (ledger)")
    ax.bar(x + 0.2, table.wire_bytes / MIB, width=0.4, color="#7f7f7f", label="wire (relay)")
    ax.set_xticks(x, [f"node {p}\n{d}" for p, d in zip(table.partition, table.direction)])
    ax.set(ylabel="MiB", title="Payload vs wire bytes, per node and direction")
    ax.legend(fontsize="small")
    return ax


def remote_instructions(superlink_host: str, port: int = 9092, ca_cert: str = "certs/ca.crt") -> str:
    """The commands that run the same app on machines of their own, against one SuperLink."""
    return "\n".join([
        f"# on the SuperLink machine ({superlink_host}), with a certificate whose SAN names it:",
        f"flower-superlink --ssl-ca-certfile {ca_cert} --ssl-certfile certs/server.pem "
        f"--ssl-keyfile certs/server.key --host 0.0.0.0 --port {port}",
        "# on each client machine i of N (pip install -e . there too):",
        f"flower-supernode --root-certificates {ca_cert} --superlink {superlink_host}:{port} "
        "--node-config 'partition-id=i num-partitions=N'",
        "# on your laptop: a connection in $FLWR_HOME/config.toml, then flwr run",
        f'#   [superlink.remote]\n#   address = "{superlink_host}:{port}"\n#   root-certificates = "{ca_cert}"',
        "flwr run . remote --stream -c 'num-server-rounds=3 min-available-nodes=N'",
    ])
