"""The deployment's processes: started in their own sessions, tracked by an environment marker, torn down
(descendants and orphans included) whatever happens; signals turned into KeyboardInterrupt meanwhile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..checks import ConfigError

MARKER = "FEDBANDWIDTH_DEPLOY_ID"  # env var every process we start inherits: finds orphans too
STARTUP_SECONDS = 90.0  # the SuperLink must accept connections within this (a loaded machine is slow)
STOP_GRACE = 8.0  # seconds between SIGTERM and SIGKILL at teardown
TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # what ends a run from outside


class DeployError(RuntimeError):
    """The deployment could not run or finish; the message says why in one line."""


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


@dataclass
class Processes:
    """Processes started in their own sessions; stop() ends them, their descendants and orphans."""

    env: dict[str, str]  # environment of every process, with the marker
    logs: Path  # one log file per process
    started: dict[str, subprocess.Popen] = field(default_factory=dict)
    terminated: set[int] = field(default_factory=set)  # PIDs terminate() signalled before stop()

    def start(self, name: str, argv: list[str], cwd: Path | None = None) -> subprocess.Popen:
        """Start `argv` in a new session, output to logs/<name>.log."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as log:
            log.write(("$ " + " ".join(argv) + "\n").encode())  # the command line, first
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=cwd,
                start_new_session=True,
            )
        self.started[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 1) -> str:
        """Last non-empty lines of a process's log."""
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return " | ".join(text[-lines:])

    def stop(self) -> list[int]:
        """SIGTERM everything we started (and its descendants), SIGKILL what remains; return PIDs seen (and
        those terminate() signalled)."""
        doomed = {p.pid: p for p in self.family()}
        for proc in doomed.values():
            send_signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(list(doomed.values()), timeout=STOP_GRACE)
        for proc in alive + self.family():  # stragglers, and orphans born during the grace period
            send_signal(proc, signal.SIGKILL)
        psutil.wait_procs(self.family(), timeout=STOP_GRACE)
        for proc in self.started.values():
            proc.poll()  # reap our direct children
        return sorted(set(doomed) | self.terminated)

    def terminate(self, names: list[str]) -> None:
        """SIGTERM the named processes (those still running) and their descendants now; stop() reaps them."""
        for name in names:
            if self.started[name].poll() is not None:
                continue
            for proc in process_tree(self.started[name].pid):
                send_signal(proc, signal.SIGTERM)
                self.terminated.add(proc.pid)

    def family(self) -> list:
        """Every live process we started, its descendants, and any process carrying our marker."""
        return marked_processes(self.env[MARKER], roots=[p.pid for p in self.started.values()])


def marked_processes(marker: str, roots: list[int] = ()) -> list:
    """Live processes descended from `roots` or whose environment carries MARKER=`marker`."""
    found = {}
    for pid in roots:
        found.update((proc.pid, proc) for proc in process_tree(pid))
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == marker:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return [p for p in found.values() if process_alive(p)]


def process_tree(pid: int) -> list:
    """The process `pid` and its descendants (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def process_alive(proc) -> bool:
    """True if the process runs (zombies count as gone)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def send_signal(proc, signum: int) -> None:
    """Send `signum` to a psutil Process, ignoring one that is already gone."""
    try:
        proc.send_signal(signum)
    except psutil.NoSuchProcess:
        pass


def wait_for_port(
    port: int, proc: subprocess.Popen, processes: Processes, name: str, seconds: float = STARTUP_SECONDS
) -> None:
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
class HandledSignals:
    """Inside `with`, SIGINT, SIGTERM and SIGHUP go to `handler` (main thread only); the old handlers come back."""

    handler: object  # a signal handler, or signal.SIG_IGN
    saved: dict = field(default_factory=dict)

    def __enter__(self) -> HandledSignals:
        if threading_is_main():
            for signum in TEARDOWN_SIGNALS:
                self.saved[signum] = signal.signal(signum, self.handler)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def signals_as_interrupt() -> HandledSignals:
    """Signals raise KeyboardInterrupt, so teardown runs as on Ctrl-C.

    SIGINT too: a process started in the background by a non-interactive shell inherits SIGINT ignored.
    """
    return HandledSignals(_raise_interrupt)


def signals_ignored() -> HandledSignals:
    """Signals are ignored (while tearing down: a second Ctrl-C must not cut it short)."""
    return HandledSignals(signal.SIG_IGN)


def threading_is_main() -> bool:
    """True in the main thread (only it may install signal handlers)."""
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame) -> None:
    """A signal handler that raises KeyboardInterrupt."""
    raise KeyboardInterrupt(f"signal {signum}")
