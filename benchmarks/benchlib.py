"""Shared by the benchmark scripts: the commands they time, a tracked subprocess runner, machine facts.

A run is a whole process (imports, Ray start, rounds, shutdown), watched with psutil: its
descendants (Ray's GCS, raylet, agents, workers) are recorded while they live, so any that
outlive the run are ended by pid afterwards, and memory can be summed over all of them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MIB = 2**20  # mebibyte
GIB = 2**30  # gibibyte
LINGER_SECONDS = 5.0  # grace for Ray processes to exit on their own before we end them

# Our path before fedbandwidth/cli.py existed; used only if the CLI cannot start.
OURS_SNIPPET = """
import sys
from fedbandwidth.logs import setup_logging
from fedbandwidth.model import random_arrays
from fedbandwidth.simulation import SimulationConfig, simulate
setup_logging()
n, r, f, api = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ledger = simulate(SimulationConfig(supernodes=n, rounds=r, fraction=f, api=api), random_arrays())
print("total payload bytes:", ledger.total_bytes())
"""


def course_command(supernodes: int, rounds: int) -> list[str]:
    """The command that runs the course's own code path (benchmarks/course_baseline.py)."""
    return [
        sys.executable,
        str(BENCH_DIR / "course_baseline.py"),
        "--supernodes",
        str(supernodes),
        "--rounds",
        str(rounds),
    ]


def cli_works() -> bool:
    """True if `python -m fedbandwidth simulate --help` exits 0 (the CLI exists and imports)."""
    probe = subprocess.run([sys.executable, "-m", "fedbandwidth", "simulate", "--help"], cwd=ROOT, capture_output=True)
    return probe.returncode == 0


def cli_executable() -> list[str]:
    """The `fedbandwidth` console script next to this Python, else `python -m fedbandwidth`."""
    script = Path(sys.executable).parent / "fedbandwidth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fedbandwidth"]


def ours_command(
    supernodes: int,
    rounds: int,
    fraction: float = 1.0,
    api: str = "legacy",
    out: str | None = None,
    use_cli: bool = True,
    backend: str = "inprocess",
) -> list[str]:
    """The command that runs our path: `fedbandwidth simulate ...` (or the snippet, before the CLI)."""
    if not use_cli:
        return [sys.executable, "-c", OURS_SNIPPET, str(supernodes), str(rounds), str(fraction), api]
    cmd = cli_executable() + [
        "simulate",
        "--supernodes",
        str(supernodes),
        "--rounds",
        str(rounds),
        "--fraction",
        str(fraction),
        "--api",
        api,
        "--backend",
        backend,
    ]
    return cmd + (["--out", out] if out else [])


def label(proc: psutil.Process) -> str:
    """A short name for a process: Ray's title (ray::...), the script a Python runs, or the binary."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "?"
    if not cmdline:
        return proc.name() if proc.is_running() else "?"
    first = cmdline[0]
    if first.startswith("ray::"):
        return first.split()[0].split(".")[0]  # ray::ClientAppActor.run -> ray::ClientAppActor
    if "python" in Path(first).name:
        if "-c" in cmdline:
            return "python -c"
        if "-m" in cmdline:
            return " ".join(cmdline[cmdline.index("-m") : cmdline.index("-m") + 2])
        script = next((a for a in cmdline[1:] if not a.startswith("-")), None)
        if script:
            return Path(script).name
    return Path(first).name


def process_tree(root: psutil.Process) -> list[psutil.Process]:
    """The root process and all its live descendants."""
    try:
        return [root] + root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


@dataclass
class MemorySample:
    """Memory of a process tree at one instant (bytes) and the processes in it."""

    t: float  # seconds since the run started
    rss_bytes: int  # summed RSS (shared pages counted once per process)
    pss_bytes: int  # summed PSS (shared pages split between sharers)
    processes: list = field(default_factory=list)  # [(label, pid, rss_bytes), ...]


def sample_memory(tree: list[psutil.Process], t: float) -> MemorySample:
    """Sum RSS and PSS over `tree`, skipping processes that vanish meanwhile."""
    sample = MemorySample(t, 0, 0)
    for proc in tree:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        sample.rss_bytes += info.rss
        sample.pss_bytes += getattr(info, "pss", 0)
        sample.processes.append((label(proc), proc.pid, info.rss))
    return sample


@dataclass
class RunResult:
    """What one tracked run took: wall time, exit code, its processes, memory if sampled."""

    command: list[str]
    wall_seconds: float
    returncode: int
    stdout: str
    stderr_tail: str
    pids_seen: int  # processes of the tree seen while it ran
    cpu_seconds: float  # user+system CPU of the tree, as last sampled (a lower bound)
    cpu_by_process: dict = field(default_factory=dict)  # label -> CPU seconds, summed over same labels
    leftovers_killed: list = field(default_factory=list)  # [(label, pid), ...] ended after the run
    samples: list = field(default_factory=list)  # MemorySample, if memory was sampled


def remember(seen: dict, cpu: dict, tree: list[psutil.Process]) -> None:
    """Record each process of the tree by (pid, create_time), and its CPU seconds so far."""
    for proc in tree:
        try:
            key = (proc.pid, proc.create_time())
            name = label(proc)  # a Ray worker retitles itself (ray::ClientAppActor) once it has started
            if key not in seen or (name != "?" and not seen[key].startswith(name)):
                seen[key] = name  # a zombie shows only its 15-character name: keep the fuller one
            times = proc.cpu_times()
            cpu[key] = times.user + times.system
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue


def alive(seen: dict) -> list[psutil.Process]:
    """The processes in `seen` that still run (same pid and same start time)."""
    survivors = []
    for pid, created in seen:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                survivors.append(proc)
        except psutil.NoSuchProcess:
            continue
    return survivors


def end_leftovers(seen: dict) -> list[tuple[str, int]]:
    """Wait briefly for the run's processes to exit, then terminate (and kill) those that did not."""
    deadline = time.monotonic() + LINGER_SECONDS
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = alive(seen)
    ended = [(label(p), p.pid) for p in survivors]
    for proc in survivors:
        proc.terminate()
    _, still = psutil.wait_procs(survivors, timeout=3)
    for proc in still:
        proc.kill()
    return ended


def run_tracked(
    cmd: list[str], interval: float = 0.5, memory: bool = False, env: dict | None = None, timeout: float = 600.0
) -> RunResult:
    """Run `cmd` from the repo root, timing it; watch its process tree every `interval` seconds.

    A run past `timeout` seconds is ended (a dead raylet makes a simulation wait forever).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        popen = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env=env)
        root = psutil.Process(popen.pid)
        seen: dict = {}
        cpu: dict = {}
        samples: list[MemorySample] = []
        while True:
            tree = process_tree(root)
            remember(seen, cpu, tree)
            if memory:
                samples.append(sample_memory(tree, time.perf_counter() - started))
            try:
                popen.wait(timeout=interval)
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - started > timeout:
                    err.write(f"\n[benchmark] ended after {timeout:.0f} s timeout\n")
                    _end_root(popen)
                    break
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    leftovers = end_leftovers(seen)
    return RunResult(
        cmd,
        wall,
        popen.returncode,
        stdout,
        stderr[-2000:],
        len(seen),
        round(sum(cpu.values()), 2),
        cpu_by_label(seen, cpu),
        leftovers,
        samples,
    )


def cpu_by_label(seen: dict, cpu: dict) -> dict[str, float]:
    """CPU seconds summed by process label, largest first."""
    totals: dict[str, float] = {}
    for key, seconds in cpu.items():
        totals[seen[key]] = totals.get(seen[key], 0.0) + seconds
    return {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def system_busy_percent(seconds: float = 2.0) -> float:
    """Percent of all cores busy over the next `seconds` (our own processes included)."""
    return psutil.cpu_percent(interval=seconds)


def wait_until_quiet(below: float, max_wait: float = 120.0) -> float:
    """Wait until the machine is less than `below` percent busy (or `max_wait` s pass); return the last reading."""
    deadline = time.monotonic() + max_wait
    busy = system_busy_percent()
    while busy >= below and time.monotonic() < deadline:
        busy = system_busy_percent()
    return busy


def _end_root(popen: subprocess.Popen) -> None:
    """Terminate a timed-out run's root process, then kill it if it does not exit in 5 s."""
    popen.terminate()
    try:
        popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def version(package: str) -> str:
    """Installed version of a distribution, without importing it."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_facts() -> dict:
    """Date, cores, memory, load and library versions, to go with the figures."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "versions": {p: version(p) for p in ("flwr", "torch", "ray", "transformers", "numpy")},
    }


def median(values: list[float]) -> float | None:
    """Median of a list, None if empty."""
    return statistics.median(values) if values else None


def write_json(name: str, payload: dict) -> Path:
    """Write `payload` to benchmarks/results/<name> (pretty, trailing newline); return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    return path


def _jsonable(obj):
    """JSON fallback for dataclasses and paths."""
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    return str(obj)


def scratch_dir() -> str:
    """A fresh temporary folder for a run's --out files (the caller removes it)."""
    return tempfile.mkdtemp(prefix="fedbandwidth-bench-")


def remove_dir(path: str) -> None:
    """Remove a scratch folder, ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)


def replace_table(text: str, table: list[str]) -> str:
    """`text` with the markdown table that starts with `table`'s header line replaced by `table`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == table[0])
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join([*lines[:start], *table, *lines[end:]]) + "\n"
