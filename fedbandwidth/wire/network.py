"""An emulated network: each SuperNode on a host of its own (a Linux network namespace), joined to the
SuperLink's side by a veth pair whose two ends are shaped to the node's link profile.

What the kernel does and what user space does (this kernel has ``tc``'s ``tbf`` but no ``netem``):

- **Rate, in the kernel.** A token bucket filter (``tbf``) on each end's egress: the host end's shapes
  **down** (SuperLink -> node), the node end's (inside the namespace) shapes **up**. tbf charges every
  Ethernet frame, headers included: 66 B (14 Ethernet + 20 IPv4 + 32 TCP with timestamps) per 1448 B segment.
- **Latency, in user space.** The relay each node talks through holds every chunk for the one-way latency,
  both ways (relay.py). So request/response turns and TLS handshakes see the round trip; TCP itself sees
  the veth's sub-millisecond round trip (no slow-start ramp over the emulated latency).

Addresses are a /24 per node in a 10.X.0.0/16 that no interface or route of this machine uses; names start
with ``fbw`` and a run id. ``close()`` removes every namespace and veth (and so their qdiscs).
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import ConfigError
from .links import LinkProfile

PREFIX = "fbw"  # every namespace and interface this module creates starts with it
HEADER_BYTES = 66  # Ethernet + IPv4 + TCP (timestamps) header of every frame on the veth
SUBNETS = range(200, 255)  # candidate second octets of the run's 10.X.0.0/16
QUEUE_SECONDS = 0.5  # tbf queue: this much data at the link's rate, within QUEUE_BYTES (no drops, so
QUEUE_BYTES = (256 * 1024, 64 * 2**20)  # no retransmissions: every frame the kernel counts, the relay counts)
BURST_SECONDS = 0.004  # tbf bucket: this much data at the link's rate (at least BURST_MIN_BYTES)
BURST_MIN_BYTES = 32 * 1024
STATISTICS = Path("/sys/class/net")  # the kernel's per-interface counters


def run_ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run `ip`/`tc` (inside `namespace` if given); RuntimeError with its message when `check` and it fails."""
    argv = ["ip", "netns", "exec", namespace, *args] if namespace else list(args)
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def check_emulation() -> None:
    """ConfigError (one line) unless this process can create network namespaces, veth pairs and tbf."""
    if os.geteuid() != 0:
        raise ConfigError("--links needs root (network namespaces, veth pairs and tc); run as root or drop --links")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(f"--links needs {' and '.join(missing)} (iproute2); install it or drop --links")
    try:
        EmulatedNetwork.create([LinkProfile.from_mbit("probe", 1, 1, 0)], run_id=f"p{os.getpid() % 10**5}").close()
    except RuntimeError as err:
        raise ConfigError(f"--links: cannot make a network namespace here: {err}") from None


def emulation_problem() -> str | None:
    """Why this process cannot emulate a network (one line), or None if it can."""
    try:
        check_emulation()
    except (ConfigError, RuntimeError) as err:
        return str(err)
    return None


def free_subnet() -> int:
    """A second octet X such that 10.X.0.0/16 overlaps no address or route of this machine."""
    used = run_ip("ip", "-o", "-4", "addr", "show") + run_ip("ip", "-4", "route", "show", "table", "all")
    networks = [ipaddress.ip_network(word, strict=False) for word in used.split() if _is_network(word)]
    first = random.randrange(len(SUBNETS))  # two runs starting at once rarely try the same subnet first
    for octet in [*SUBNETS[first:], *SUBNETS[:first]]:
        candidate = ipaddress.ip_network(f"10.{octet}.0.0/16")
        if not any(candidate.overlaps(net) for net in networks):
            return octet
    raise RuntimeError("no free 10.X.0.0/16 left for an emulated network")


def _is_network(word: str) -> bool:
    """True if `word` reads as an IPv4 address or network (e.g. '10.1.2.3/24')."""
    try:
        ipaddress.ip_network(word, strict=False)
        return "." in word
    except ValueError:
        return False


def tbf_args(bits_per_second: float) -> list[str]:
    """`tc qdisc replace ... tbf` arguments for a rate: a bucket of a few ms and a queue of QUEUE_SECONDS."""
    bytes_per_second = bits_per_second / 8
    burst = max(BURST_MIN_BYTES, int(bytes_per_second * BURST_SECONDS))
    limit = min(max(QUEUE_BYTES[0], int(bytes_per_second * QUEUE_SECONDS)), QUEUE_BYTES[1])
    return ["tbf", "rate", f"{int(bits_per_second)}bit", "burst", str(burst), "limit", str(limit)]


@dataclass(frozen=True)
class Host:
    """One emulated host: its namespace, the veth pair's two ends, their addresses, its link."""

    namespace: str  # e.g. "fbw1a2b3-0"
    host_device: str  # the veth end on the SuperLink's side (its egress shapes down)
    node_device: str  # the veth end inside the namespace (its egress shapes up)
    host_address: str  # the relay listens here
    node_address: str  # the node's address
    link: LinkProfile  # rates and latency of this host's link

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def counters(self) -> dict[str, int]:
        """The kernel's counters of the host end: down = what it sent, up = what it received."""
        folder = STATISTICS / self.host_device / "statistics"
        read = lambda name: int((folder / name).read_text())  # noqa: E731
        return {
            "down_bytes": read("tx_bytes"),
            "down_packets": read("tx_packets"),
            "up_bytes": read("rx_bytes"),
            "up_packets": read("rx_packets"),
        }

    def set_up(self, up: bool) -> None:
        """Take the link down (no frame passes either way) or bring it back up."""
        run_ip("ip", "link", "set", self.host_device, "up" if up else "down")


@dataclass
class EmulatedNetwork:
    """The hosts of one run; create() builds them all (or none), close() removes them all."""

    run_id: str  # unique per run: part of every name
    hosts: list[Host] = field(default_factory=list)

    @classmethod
    def create(cls, links: list[LinkProfile], run_id: str | None = None) -> EmulatedNetwork:
        """One host per link, in order; on any failure, what was made is removed and the error raised."""
        network = cls(run_id or uuid.uuid4().hex[:5])
        octet = free_subnet()
        try:
            for i, link in enumerate(links):
                network.hosts.append(make_host(network.prefix, i, octet, link))
        except BaseException:
            network.close()
            raise
        return network

    @property
    def prefix(self) -> str:
        """The start of every name this network uses."""
        return f"{PREFIX}{self.run_id}"

    def close(self) -> None:
        """Remove every namespace and veth of this run (deleting an end removes its peer and qdiscs)."""
        for name in leftovers(self.prefix)["links"]:
            run_ip("ip", "link", "del", name, check=False)
        for name in leftovers(self.prefix)["namespaces"]:
            run_ip("ip", "netns", "del", name, check=False)

    def __enter__(self) -> EmulatedNetwork:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_host(prefix: str, i: int, octet: int, link: LinkProfile) -> Host:
    """Namespace, veth pair, addresses 10.octet.i.1 (host) / .2 (node), IPv6 off, tbf on both ends."""
    host = Host(f"{prefix}-{i}", f"{prefix}h{i}", f"{prefix}n{i}", f"10.{octet}.{i}.1", f"10.{octet}.{i}.2", link)
    ns = host.namespace
    run_ip("ip", "netns", "add", ns)
    run_ip("ip", "link", "add", host.host_device, "type", "veth", "peer", "name", host.node_device)
    run_ip("ip", "link", "set", host.node_device, "netns", ns)
    run_ip("sysctl", "-q", "-w", f"net.ipv6.conf.{host.host_device}.disable_ipv6=1")  # no ND/MLD frames
    run_ip("sysctl", "-q", "-w", f"net.ipv6.conf.{host.node_device}.disable_ipv6=1", namespace=ns)
    run_ip("ip", "addr", "add", f"{host.host_address}/24", "dev", host.host_device)
    run_ip("ip", "addr", "add", f"{host.node_address}/24", "dev", host.node_device, namespace=ns)
    for device, namespace in ((host.host_device, None), (host.node_device, ns), ("lo", ns)):
        run_ip("ip", "link", "set", device, "up", namespace=namespace)
    run_ip("tc", "qdisc", "replace", "dev", host.host_device, "root", *tbf_args(link.down_bits_per_second))
    run_ip("tc", "qdisc", "replace", "dev", host.node_device, "root", *tbf_args(link.up_bits_per_second), namespace=ns)
    return host


def leftovers(prefix: str = PREFIX) -> dict[str, list[str]]:
    """Namespaces, interfaces and tbf qdiscs whose names start with `prefix` (after a run: none)."""
    namespaces = [line.split()[0] for line in run_ip("ip", "netns", "list").splitlines() if line.startswith(prefix)]
    links = [line.split(":")[1].strip().split("@")[0] for line in run_ip("ip", "-o", "link", "show").splitlines()]
    qdiscs = [line for line in run_ip("tc", "qdisc", "show").splitlines() if f" dev {prefix}" in line]
    return {"namespaces": namespaces, "links": [n for n in links if n.startswith(prefix)], "qdiscs": qdiscs}
