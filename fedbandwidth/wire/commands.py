"""What the deployment runs: the Flower executables, the staged app, FLWR_HOME's connection, the environment,
and the command lines of the SuperLink, the SuperNodes and `flwr run` (also on machines of their own)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ..checks import ConfigError
from ..names import COMPUTE_SECONDS, node_config_text
from .processes import MARKER
from .tls import TlsFiles

PACKAGE = Path(__file__).resolve().parents[1]  # the fedbandwidth package folder
PROJECT = PACKAGE.parent  # the repository, in a source checkout (holds pyproject.toml)
APP_PYPROJECT = PACKAGE / "flower_app.toml"  # the Flower App's pyproject.toml, shipped inside the package
CONNECTION = "fedbandwidth"  # SuperLink connection name written into $FLWR_HOME/config.toml
EXECUTABLES = ("flower-superlink", "flower-supernode", "flwr")


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


NOT_IN_APP = ("__pycache__", "*.pyc", "facts", "cli", "explore", "compress", "wire")  # what the app never imports


def stage_app(folder: Path) -> Path:
    """Copy the Flower App (the package and its pyproject.toml) into `folder`; return it.

    `flwr run` zips what it finds under the app folder and every SuperNode fetches it: the copy holds what the
    app imports (the core and the privacy layer, the shipped configs), not the folders only the command line,
    the explorer, training and the wire use, nor predict's cached facts. The app's pyproject.toml ships inside
    the package, so an installed package (not only a checkout) can be deployed.
    """
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(PACKAGE, folder / PACKAGE.name, ignore=shutil.ignore_patterns(*NOT_IN_APP))
    shutil.copy2(APP_PYPROJECT, folder / "pyproject.toml")
    return folder


def write_connection(flwr_home: Path, address: str, ca_cert: Path | None) -> Path:
    """Write $FLWR_HOME/config.toml with one SuperLink connection (insecure or CA-verified)."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{CONNECTION}"', "", f"[superlink.{CONNECTION}]", f'address = "{address}"']
    lines.append(f"root-certificates = {json.dumps(str(ca_cert))}" if ca_cert else "insecure = true")
    path = flwr_home / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def flower_env(flwr_home: Path, bin_dir: Path, marker: str) -> dict[str, str]:
    """Environment for every Flower process: offline, no telemetry, FLWR_HOME, our marker."""
    env = dict(os.environ)
    env.update(
        {
            "FLWR_HOME": str(flwr_home),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PATH": os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
            MARKER: marker,
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def run_config_args(settings: dict) -> list[str]:
    """`-c key=value` arguments for `flwr run`, TOML-quoted (strings in double quotes)."""
    args = []
    for key, value in settings.items():
        text = (
            json.dumps(value)
            if isinstance(value, str)
            else str(value).lower()
            if isinstance(value, bool)
            else repr(value)
        )
        args += ["-c", f"{key}={text}"]
    return args


def tls_args(tls: TlsFiles | None, server: bool) -> list[str]:
    """--insecure, or the certificate flags of the SuperLink (server) or a SuperNode (client)."""
    if tls is None:
        return ["--insecure"]
    if server:
        return [
            "--ssl-ca-certfile",
            str(tls.ca_cert),
            "--ssl-certfile",
            str(tls.server_cert),
            "--ssl-keyfile",
            str(tls.server_key),
        ]
    return ["--root-certificates", str(tls.ca_cert)]


def superlink_argv(exe: str, port: int, tls: TlsFiles | None, auth: bool = False) -> list[str]:
    """flower-superlink on 127.0.0.1:`port` (Fleet, Control and runtime APIs share it), state in memory;
    with `auth`, only SuperNodes whose public key was registered may join."""
    return [
        exe,
        *tls_args(tls, server=True),
        "--disable-runtime-dependency-installation",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(["--enable-supernode-auth"] if auth else []),
    ]


def supernode_argv(
    exe: str,
    superlink_port: int,
    own_port: int,
    partition: int,
    partitions: int,
    tls: TlsFiles | None,
    superlink_host: str = "127.0.0.1",
    compute_seconds: float = 0.0,
    private_key: Path | None = None,
) -> list[str]:
    """flower-supernode talking to `superlink_host`:`superlink_port` (its relay), its own runtime port; a client
    that waits `compute_seconds` before replying gets them in its node config; `private_key`: it signs in."""
    node_config = node_config_text(partition, partitions)
    node_config += f" {COMPUTE_SECONDS}={float(compute_seconds)!r}" if compute_seconds else ""
    return [
        exe,
        *tls_args(tls, server=False),
        "--superlink",
        f"{superlink_host}:{superlink_port}",
        "--host",
        "127.0.0.1",
        "--port",
        str(own_port),
        "--node-config",
        node_config,
        *(["--auth-supernode-private-key", str(private_key)] if private_key else []),
    ]


def remote_instructions(superlink_host: str, port: int = 9092, ca_cert: str = "certs/ca.crt") -> str:
    """The commands that run the same app on machines of their own, against one SuperLink."""
    return "\n".join(
        [
            f"# on the SuperLink machine ({superlink_host}), with a certificate whose SAN names it:",
            f"flower-superlink --ssl-ca-certfile {ca_cert} --ssl-certfile certs/server.pem "
            f"--ssl-keyfile certs/server.key --host 0.0.0.0 --port {port}",
            "# on each client machine i of N (pip install -e . there too):",
            f"flower-supernode --root-certificates {ca_cert} --superlink {superlink_host}:{port} "
            f"--node-config '{node_config_text('i', 'N')}'",
            "# on your laptop: a connection in $FLWR_HOME/config.toml, then flwr run",
            f'#   [superlink.remote]\n#   address = "{superlink_host}:{port}"\n#   root-certificates = "{ca_cert}"',
            "flwr run . remote --stream -c 'num-server-rounds=3 min-available-nodes=N'",
        ]
    )
