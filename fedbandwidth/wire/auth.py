"""Who may join a deployment: SuperNode authentication (``deploy --auth``, which needs ``--tls``).

The SuperLink runs with ``--enable-supernode-auth``: it lets in only SuperNodes whose public key was registered
with it, and each of those signs its requests with its private key (``--auth-supernode-private-key``). Flower
has no command that makes the key pair (its docs use ``ssh-keygen``); `make_key_pair` writes the formats
Flower reads: the private key as OpenSSH PEM (`load_ssh_private_key` in flower-supernode), the public key as
one OpenSSH line on a NIST curve (P-384; `load_ssh_public_key` in `flwr supernode register`). Registering is
Flower's own command, `flwr supernode register KEY.pub CONNECTION`, run against the SuperLink's Control API.
An *unregistered* SuperNode (``deploy --unregistered N``) holds a key of the same kind that nobody registered.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ..names import DOWN, UP

KEYS_FOLDER = "keys"  # under the run's --out
REFUSED_KEY = "No SuperNode found with the given public key"  # what the SuperLink logs for an unknown key


def make_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh P-384 key pair: `name` (private, OpenSSH PEM, mode 600) and `name`.pub (OpenSSH line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private, public = folder / name, folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n"
    )
    return private, public


def register_argv(flwr: str, public_key: Path, connection: str) -> list[str]:
    """`flwr supernode register` of one public key with the SuperLink of `connection`, JSON out."""
    return [flwr, "supernode", "register", str(public_key), connection, "--format", "json"]


def registered_node_id(output: str) -> int | None:
    """The node id `flwr supernode register --format json` printed, or None if it registered nothing."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    try:
        found = json.loads(text[text.index("{") :])
    except ValueError:
        return None
    node_id = found.get("node-id") if isinstance(found, dict) else None
    return int(node_id) if node_id is not None else None


def register(flwr: str, public_key: Path, connection: str, env: dict) -> int:
    """Register `public_key` with the SuperLink; its node id (DeployError if Flower refused it)."""
    from .processes import DeployError

    done = subprocess.run(
        register_argv(flwr, public_key, connection), capture_output=True, text=True, env=env, timeout=120
    )
    node_id = registered_node_id(done.stdout)
    if done.returncode != 0 or node_id is None:
        raise DeployError(f"flwr supernode register {public_key.name}: {' '.join((done.stdout + done.stderr).split())}")
    return node_id


def auth_summary(run) -> dict:
    """Who might join: whether auth was on, the node ids of the registered keys, and each unregistered SuperNode
    with its relay's bytes and Flower's refusal (the SuperLink's log counts the attempts it turned away)."""
    log = run.out / "logs" / "superlink.log"
    refusals = log.read_text(errors="replace").count(REFUSED_KEY) if log.exists() else 0
    return {
        "enabled": run.cfg.auth,
        "registered_node_ids": run.registered_ids,
        "unregistered": run.outsiders,
        "superlink_refusals": refusals,
    }


def auth_lines(report: dict) -> list[str]:
    """One line per unregistered SuperNode: refused or not, and what its relay carried."""
    auth = report["auth"]
    return [
        f"{o['name']}: {'refused: ' + o['refusal'] if o['node_id'] is None else 'JOINED as node ' + str(o['node_id'])}"
        f"; its relay carried {o['wire_bytes'][DOWN]:,} B down, {o['wire_bytes'][UP]:,} B up"
        f" (the SuperLink logged {auth['superlink_refusals']} refusal(s): {REFUSED_KEY!r})"
        for o in auth["unregistered"]
    ]
