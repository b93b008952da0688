"""The same Flower App in simulation through `flwr run` (Flower's local SuperLink, started then stopped): no wire."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from ..checks import check_writable
from ..report import write_summary
from ..server_app import LEDGER_CSV
from .commands import find_executables, flower_env, run_config_args, stage_app
from .deployment import read_run_id, run_status
from .engine import DeployConfig, DeployRun, app_settings
from .processes import MARKER, DeployError, Processes, free_port, signals_as_interrupt, signals_ignored
from .report import app_run_summary

LOCAL_CONFIG_TOML = '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'


def simulate_app(cfg: DeployConfig, app_dir: Path | None = None) -> DeployRun:
    """Run the app with `flwr run` on Flower's local simulation SuperLink (started, then stopped)."""
    exes = find_executables(cfg.flower_bin)
    out = check_writable(cfg.out).resolve()
    app_dir = app_dir or stage_app(out / "app")
    flwr_home = out / "flwr_home"
    flwr_home.mkdir(parents=True, exist_ok=True)
    (flwr_home / "config.toml").write_text(LOCAL_CONFIG_TOML)
    env = flower_env(flwr_home, Path(exes["flwr"]).parent, uuid.uuid4().hex)
    env.update(
        {
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),  # never a fixed, shared port
            "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        }
    )
    processes = Processes(env, out / "logs")
    federation = f"num-supernodes={cfg.supernodes} client-resources-num-cpus=1"
    started = time.monotonic()
    try:
        with signals_as_interrupt():
            runner = processes.start(
                "flwr-run",
                [
                    exes["flwr"],
                    "run",
                    str(app_dir),
                    "--stream",
                    "--federation-config",
                    federation,
                    *run_config_args(app_settings(cfg, out)),
                ],
                cwd=out,
            )
            runner.wait(timeout=cfg.run_timeout)
            if runner.returncode != 0:
                raise DeployError(f"flwr run exited with code {runner.returncode}: {processes.log_tail('flwr-run', 2)}")
            run_id = read_run_id(processes)
            status = run_status(exes["flwr"], run_id, processes, connection="local") if run_id else "not started"
            wall = time.monotonic() - started
    except subprocess.TimeoutExpired:
        raise DeployError(f"the simulation did not finish within {cfg.run_timeout:.0f} s") from None
    finally:
        with signals_ignored():
            pids = processes.stop()
    return DeployRun(cfg, out, [], [], run_id, status, [], wall, pids, processes.env[MARKER])


def app_summary(run: DeployRun) -> dict:
    """The app's summary for a `flwr run` simulation (no wire bytes: nothing crossed a wire); summary.json."""
    report, _ = app_run_summary(run, {"ledger_csv": run.out / LEDGER_CSV}, backend="ray", engine="simulation")
    report["run"] = {"id": run.run_id, "status": run.status, "processes_stopped": len(run.pids)}
    return write_summary(report, run.out)
