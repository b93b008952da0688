"""One deployment while it runs: the SuperLink, each SuperNode (on its emulated host, or on loopback) behind its
relay, `flwr run`, and the faults it is put through; every process stopped afterwards, whatever happens."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

from ..names import CLIENTAPP_LOG_ENV, DOWN, UP
from .auth import KEYS_FOLDER, make_key_pair, register
from .commands import (
    CONNECTION,
    flower_env,
    run_config_args,
    stage_app,
    superlink_argv,
    supernode_argv,
    write_connection,
)
from .faults import FaultPlan
from .network import Host
from .processes import DeployError, Processes, free_port, signals_as_interrupt, signals_ignored, wait_for_port
from .relay import Relay, SharedLink
from .tls import TlsFiles
from .transfer import wire_rate

POLL_SECONDS = 0.2  # how often the run, its processes and the faults are looked at
REFUSED = re.compile(r"\[code: \d+\].*|Failed to activate SuperNode.*")  # a SuperNode's log when refused


def shared_link(link) -> SharedLink | None:
    """The server's link as one SharedLink all relays cross (its payload rate per direction), or None."""
    if link is None:
        return None
    return SharedLink(wire_rate(link.rate(DOWN)), wire_rate(link.rate(UP)))


class Deployment:
    """The processes, relays and hosts of one run; `run()` starts, watches and stops them."""

    def __init__(self, cfg, exes: dict, out: Path, port: int, tls: TlsFiles | None, hosts: list[Host | None]) -> None:
        self.cfg, self.exes, self.out, self.port, self.tls, self.hosts = cfg, exes, out, port, tls, hosts
        self.settings: dict = {}  # the run config `flwr run` passes to the app
        logs = out / "logs"  # every process's log, and each ClientApp's clock (turnaround.py reads it)
        env = flower_env(out / "flwr_home", Path(exes["flwr"]).parent, uuid.uuid4().hex)
        self.processes = Processes(env | {CLIENTAPP_LOG_ENV: str(logs)}, logs)
        self.relays: list[Relay] = []
        self.names: dict[int, list[str]] = {}  # partition -> its SuperNode processes' names, the current one last
        self.lost: list[int] = []  # partitions whose SuperNode died (in order)
        self.events: list[dict] = []  # SuperNodes that died, faults fired
        self.counters: list[dict] = []  # each host's kernel counters over the run (after teardown)
        self.pids: list[int] = []  # every process stopped at teardown
        self.keys: dict[str, Path] = {}  # process name -> its SuperNode's private key (with --auth)
        self.outsiders: list[Relay] = []  # relays of the SuperNodes whose key nobody registered
        self.registered: list[int] = []  # node ids `flwr supernode register` gave the keys (with --auth)
        self.shared = shared_link(cfg.server_link)  # the server's own link, every relay crossing it (or None)

    def run(self, faults) -> dict:
        """Start everything, wait for `flwr run` (firing `faults`), stop everything; what happened, as a dict."""
        app_dir = stage_app(self.out / "app")
        write_connection(self.out / "flwr_home", f"127.0.0.1:{self.port}", self.tls.ca_cert if self.tls else None)
        plan = FaultPlan(list(faults), self.kill, self.restart, self.set_link, self.events)
        baseline, started = [], time.monotonic()
        try:
            with signals_as_interrupt():
                self.start_superlink()
                baseline = [h.counters() if h else None for h in self.hosts]
                if self.cfg.auth:
                    self.make_keys()
                for i in range(self.cfg.supernodes):
                    self.relays.append(self.make_relay(i))
                    self.start_supernode(i)
                for j in range(self.cfg.unregistered):
                    self.start_outsider(j)
                runner = self.processes.start("flwr-run", self.flwr_run_argv(app_dir), cwd=self.out)
                finished = self.wait(runner, plan)
                wall = time.monotonic() - started
                self.processes.terminate([n for n in self.processes.started if n != "superlink"])  # ending while
                return {**self.outcome(finished), "wall_seconds": wall}  # the SuperLink says how the run went
        finally:
            with signals_ignored():  # a second Ctrl-C must not cut the teardown short
                plan.finish()
                self.pids = self.processes.stop()
                for relay in self.relays + self.outsiders:
                    relay.close()
                self.counters = [counter_delta(h, b) for h, b in zip(self.hosts, baseline, strict=False)]

    def start_superlink(self) -> None:
        """The SuperLink on 127.0.0.1; wait until it accepts connections."""
        argv = superlink_argv(self.exes["flower-superlink"], self.port, self.tls, auth=self.cfg.auth)
        link = self.processes.start("superlink", argv)
        wait_for_port(self.port, link, self.processes, "superlink")

    def make_keys(self) -> None:
        """A key pair per SuperNode, each public key registered with the SuperLink by `flwr supernode register`."""
        for i in range(self.cfg.supernodes):
            private, public = make_key_pair(self.out / KEYS_FOLDER, f"supernode-{i}")
            self.registered.append(register(self.exes["flwr"], public, CONNECTION, self.processes.env))
            self.keys[f"supernode-{i}"] = private

    def start_outsider(self, j: int) -> None:
        """A SuperNode behind a relay of its own, with a key pair the SuperLink was never told of."""
        relay = Relay(self.port, name=f"unregistered-{j}").start()
        self.outsiders.append(relay)
        private, _ = make_key_pair(self.out / KEYS_FOLDER, f"unregistered-{j}")
        argv = supernode_argv(
            self.exes["flower-supernode"],
            relay.port,
            free_port(),
            j,
            self.cfg.supernodes,
            self.tls,
            private_key=private,
        )
        self.processes.start(f"unregistered-{j}", argv)

    def make_relay(self, i: int) -> Relay:
        """Node i's relay: on its emulated host's address with its link's latency, or on loopback; through the
        server's link, if there is one (its latency added)."""
        host, server = self.hosts[i], self.cfg.server_link
        latency = (host.link.latency_seconds if host else 0.0) + (server.latency_seconds if server else 0.0)
        listen = host.host_address if host else "127.0.0.1"
        relay = Relay(self.port, name=f"supernode-{i}", listen_host=listen, latency_seconds=latency, shared=self.shared)
        return relay.start()

    def start_supernode(self, i: int) -> None:
        """Node i's SuperNode (inside its host's namespace, if emulated), talking to its relay."""
        host, relay = self.hosts[i], self.relays[i]
        argv = supernode_argv(
            self.exes["flower-supernode"],
            relay.port,
            free_port(),
            i,
            self.cfg.supernodes,
            self.tls,
            superlink_host=host.host_address if host else "127.0.0.1",
            compute_seconds=self.cfg.compute_seconds_of(i),
            private_key=self.keys.get(f"supernode-{i}"),
        )
        names = self.names.setdefault(i, [])
        names.append(f"supernode-{i}" if not names else f"supernode-{i}-restart{len(names)}")
        self.processes.start(names[-1], host.command(argv) if host else argv)

    def flwr_run_argv(self, app_dir: Path) -> list[str]:
        """`flwr run` of the staged app against our SuperLink, with the run config."""
        return [self.exes["flwr"], "run", str(app_dir), CONNECTION, "--stream", *run_config_args(self.settings)]

    def kill(self, i: int, signum: int) -> None:
        """Send `signum` to node i's current SuperNode."""
        self.processes.started[self.names[i][-1]].send_signal(signum)

    def restart(self, i: int) -> None:
        """Start node i's SuperNode again (it registers as a new node)."""
        self.start_supernode(i)

    def set_link(self, i: int, up: bool) -> None:
        """Take node i's emulated link down or up."""
        self.hosts[i].set_up(up)

    def wait(self, runner: subprocess.Popen, plan: FaultPlan) -> bool:
        """Poll until `flwr run` ends (True) or the run's time is up (False); fire faults, note dead nodes."""
        link = self.processes.started["superlink"]
        deadline = time.monotonic() + self.cfg.run_timeout
        while runner.poll() is None:
            if link.poll() is not None:
                raise DeployError(
                    f"the SuperLink exited with code {link.returncode}: {self.processes.log_tail('superlink')}"
                )
            if time.monotonic() > deadline:
                return False
            plan.step(self.relays)
            self.note_deaths()
            time.sleep(POLL_SECONDS)
        if runner.returncode != 0:
            raise DeployError(
                f"flwr run exited with code {runner.returncode}: {self.processes.log_tail('flwr-run', 2)}"
            )
        return True

    def note_deaths(self) -> None:
        """Add to `lost` and `events` each node whose current SuperNode process has just ended."""
        for i, names in self.names.items():
            proc, seen = self.processes.started[names[-1]], [e for e in self.events if e.get("process") == names[-1]]
            if proc.poll() is not None and not seen:
                self.events.append(
                    {"partition": i, "event": "died", "unix_time": round(time.time(), 3), "process": names[-1]}
                )
                if i not in self.lost:
                    self.lost.append(i)

    def outcome(self, finished: bool) -> dict:
        """Run id, status and node ids, read back from `flwr` and the logs."""
        run_id = read_run_id(self.processes)
        info = run_info(self.exes["flwr"], run_id, self.processes) if run_id else {"status": "not started"}
        status = info["status"] if finished else f"timed out after {self.cfg.run_timeout:g} s"
        ids = {i: [read_node_id(self.processes, name) for name in names] for i, names in self.names.items()}
        return {
            "run_id": run_id,
            "status": status,
            "node_ids": [ids[i][0] for i in range(self.cfg.supernodes)],
            "rejoined_ids": {i: [n for n in found[1:] if n is not None] for i, found in ids.items() if len(found) > 1},
            "flower_traffic": flower_traffic(info),
        }


def counter_delta(host: Host | None, baseline: dict | None) -> dict:
    """The kernel counters of a host's veth since `baseline` (empty for loopback)."""
    if host is None or baseline is None:
        return {}
    now = host.counters()
    return {key: now[key] - baseline[key] for key in now}


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


def run_info(flwr: str, run_id: int, processes: Processes, connection: str = CONNECTION) -> dict:
    """The run's row from the SuperLink (`flwr ls --run-id N --format json`): status, network traffic, ...;
    {"status": "unknown: ..."} if it cannot be read."""
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
        return json.loads(text[text.index("{") :])["runs"][0]
    except (ValueError, KeyError, IndexError):
        return {"status": "unknown: " + " ".join((text or done.stderr).split())[:160]}


def run_status(flwr: str, run_id: int, processes: Processes, connection: str = CONNECTION) -> str:
    """The run's final status from the SuperLink (`flwr ls --run-id N --format json`)."""
    return run_info(flwr, run_id, processes, connection)["status"]


def flower_traffic(info: dict) -> dict[str, int] | None:
    """Flower's own count of a run's Fleet API traffic, as the SuperLink sees it: outbound to the SuperNodes
    ("down") and inbound from them ("up"); None if `flwr ls` gave none."""
    traffic = info.get("network-traffic")
    if not isinstance(traffic, dict):
        return None
    return {DOWN: int(traffic["outbound-bytes"]), UP: int(traffic["inbound-bytes"])}


def refusal_line(processes: Processes, name: str) -> str:
    """The first line of a SuperNode's log that says the SuperLink refused it ("" if none does)."""
    path = processes.logs / f"{name}.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return next((found.group(0).strip() for line in lines if (found := REFUSED.search(line))), "")
