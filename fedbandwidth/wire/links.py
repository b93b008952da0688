"""Bytes to time: a small model of network links turns a ledger into seconds per round.

A link has a downlink and an uplink rate in **bits per second** (1 Mbit/s = 10**6 bit/s; a byte
is 8 bits, so 1 MB = 10**6 bytes takes 8 s at 1 Mbit/s) and a one-way latency. Sending a
message of B bytes takes ``latency + 8 * B / rate`` seconds. A client's time in a round is the
sum over its messages (model down, update up); a synchronous round like FedAvg's waits for its
slowest sampled client (the straggler), so the round time is the maximum over clients.

The profiles are typical figures for illustration, not measurements; make your own with
``LinkProfile.from_mbit("name", down, up, latency_ms)`` or ``parse_link("100/20/15")``. Compute time is left
out (no-op clients). This formula is the course's, good for planning; measured on emulated links, a message
takes longer, and transfer.py's model says why (headers, and one request round trip per object).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..checks import ConfigError
from ..names import DOWN, TRAIN, UP

BITS_PER_BYTE = 8
MBIT = 10**6  # bits in a megabit: 1 Mbit/s = 10**6 bit/s
GBIT = 10**9  # bits in a gigabit


@dataclass(frozen=True)
class LinkProfile:
    """A network link: asymmetric rates in bit/s and a one-way latency in seconds."""

    name: str  # label, e.g. "4G"
    down_bits_per_second: float  # server -> client rate (bit/s)
    up_bits_per_second: float  # client -> server rate (bit/s)
    latency_seconds: float  # one-way latency added to every message (s)

    @classmethod
    def from_mbit(cls, name: str, down_mbit: float, up_mbit: float, latency_ms: float) -> LinkProfile:
        """A profile from rates in Mbit/s (10**6 bit/s) and latency in milliseconds."""
        if min(down_mbit, up_mbit) <= 0 or latency_ms < 0:
            raise ValueError(f"link {name!r}: rates must be > 0 and latency >= 0")
        return cls(name, down_mbit * MBIT, up_mbit * MBIT, latency_ms / 1000)

    def rate(self, direction: str) -> float:
        """Rate in bit/s for "down" or "up"."""
        return self.down_bits_per_second if direction == DOWN else self.up_bits_per_second

    def describe(self) -> str:
        """e.g. '4G: 30 Mbit/s down, 10 Mbit/s up, 50 ms'."""
        return (
            f"{self.name}: {self.down_bits_per_second / MBIT:g} Mbit/s down, "
            f"{self.up_bits_per_second / MBIT:g} Mbit/s up, {self.latency_seconds * 1000:g} ms"
        )


PROFILES: dict[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile.from_mbit("3G", 2, 0.5, 100),
        LinkProfile.from_mbit("4G", 30, 10, 50),
        LinkProfile.from_mbit("5G", 200, 50, 20),
        LinkProfile.from_mbit("home broadband", 100, 20, 15),
        LinkProfile.from_mbit("Wi-Fi", 300, 300, 3),
        LinkProfile.from_mbit("datacenter", 10_000, 10_000, 0.5),
    )
}


def parse_link(text: str) -> LinkProfile:
    """A built-in profile by name ("4G", case-insensitive) or "DOWN/UP/LATENCY" in Mbit/s and ms ("100/20/15")."""
    by_name = {name.lower(): profile for name, profile in PROFILES.items()}
    if text.strip().lower() in by_name:
        return by_name[text.strip().lower()]
    try:
        down, up, latency = (float(part) for part in text.split("/"))
        return LinkProfile.from_mbit(text.strip(), down, up, latency)
    except ValueError:
        raise ConfigError(
            f"--links: {text!r} is neither a profile ({', '.join(PROFILES)}) nor DOWN/UP/LATENCY "
            "in Mbit/s and ms with rates > 0 (e.g. 100/20/15)"
        ) from None


def parse_links(text: str) -> tuple[LinkProfile, ...]:
    """Comma-separated links (profiles or DOWN/UP/LATENCY), given to the nodes in turn."""
    return tuple(parse_link(part) for part in text.split(","))


def transfer_seconds(num_bytes: int, bits_per_second: float, latency_seconds: float = 0.0) -> float:
    """Seconds to send `num_bytes` over a link: latency + 8 * bytes / rate."""
    return latency_seconds + BITS_PER_BYTE * num_bytes / bits_per_second


def forecast_seconds(message_bytes: int, rounds: int, link: LinkProfile, evaluate: bool = False) -> dict:
    """Seconds of a no-op FedAvg run where every node has `link`: a round is a node's model down (again to
    evaluate) and its update up; with equal links every sampled node is the straggler."""
    down = transfer_seconds(message_bytes, link.down_bits_per_second, link.latency_seconds)
    up = transfer_seconds(message_bytes, link.up_bits_per_second, link.latency_seconds)
    round_seconds = down * (2 if evaluate else 1) + up
    return {
        "down_seconds": down,
        "up_seconds": up,
        "round_seconds": round_seconds,
        "total_seconds": rounds * round_seconds,
    }


def forecast_links(report: dict, links: Iterable[LinkProfile] | None = None) -> dict[str, dict]:
    """`forecast_seconds` of a forecast report (fedbandwidth.forecast) on each link, by link name."""
    message, rounds, evaluate = report["message"]["payload_bytes"], report["rounds"], report["evaluate_nodes"] > 0
    return {link.name: forecast_seconds(message, rounds, link, evaluate) for link in links or PROFILES.values()}


def assign_links(node_ids: Iterable[int], links: Iterable[LinkProfile | str]) -> dict[int, LinkProfile]:
    """Give nodes links in turn (sorted node ids; names are looked up in PROFILES)."""
    chosen = [PROFILES[link] if isinstance(link, str) else link for link in links]
    return {node: chosen[i % len(chosen)] for i, node in enumerate(sorted(set(node_ids)))}


def node_times(frame, links: Mapping[int, LinkProfile]):
    """One row per (round, node): bytes and seconds down and up, and the node's total seconds."""
    import pandas as pd

    rows = []
    for (rnd, node), group in frame.groupby(["round", "node_id"], sort=True):
        link = links[node]
        row = {"round": int(rnd), "node_id": int(node), "link": link.name}
        for direction in (DOWN, UP):
            sizes = group[group.direction == direction].payload_bytes
            row[f"{direction}_bytes"] = int(sizes.sum())
            row[f"{direction}_seconds"] = sum(
                transfer_seconds(int(b), link.rate(direction), link.latency_seconds) for b in sizes
            )
        row["seconds"] = row["down_seconds"] + row["up_seconds"]
        rows.append(row)
    return pd.DataFrame(
        rows, columns=["round", "node_id", "link", "down_bytes", "down_seconds", "up_bytes", "up_seconds", "seconds"]
    )


def round_times(times):
    """One row per round: the straggler's node and link, the round's seconds (the max), the fastest node's."""
    import pandas as pd

    rows = []
    for rnd, group in times.groupby("round", sort=True):
        slowest = group.loc[group.seconds.idxmax()]
        rows.append(
            {
                "round": int(rnd),
                "nodes": len(group),
                "straggler": int(slowest.node_id),
                "straggler_link": slowest.link,
                "round_seconds": float(slowest.seconds),
                "fastest_seconds": float(group.seconds.min()),
            }
        )
    table = pd.DataFrame(
        rows, columns=["round", "nodes", "straggler", "straggler_link", "round_seconds", "fastest_seconds"]
    )
    table["cumulative_seconds"] = table.round_seconds.cumsum()
    return table


def total_seconds(frame, links: Mapping[int, LinkProfile]) -> float:
    """Seconds of communication for the whole run: the sum of the rounds' straggler times."""
    return float(round_times(node_times(frame, links)).round_seconds.sum())


def scale_payload(frame, ratio: float, direction: str | None = None):
    """A copy of a ledger frame with payload bytes times `ratio` (a codec's compression), one or both ways."""
    scaled = frame.copy()
    rows = scaled.direction == direction if direction else slice(None)
    scaled.loc[rows, "payload_bytes"] = (scaled.loc[rows, "payload_bytes"] * ratio).round().astype("int64")
    return scaled


def planned_ledger(message_bytes: int, supernodes: int, rounds: int, fraction: float = 1.0):
    """The ledger frame a no-op FedAvg run would write (Flower's sampling rule; nodes 0..N-1, first sampled)."""
    from ..ledger import transfer_frame
    from ..theory import sampled_nodes

    sampled = min(sampled_nodes(supernodes, fraction), supernodes)
    rows = [
        (r, TRAIN, node, direction, message_bytes, message_bytes)
        for r in range(1, rounds + 1)
        for node in range(sampled)
        for direction in (DOWN, UP)
    ]
    return transfer_frame(rows)


def compare_scenarios(
    message_bytes: int, supernodes: int, rounds: int, links, fractions=(1.0,), ratios: Mapping[str, float] | None = None
):
    """Total seconds for each sampling fraction x codec ratio (e.g. {"float32": 1, "float16": 0.5})."""
    import pandas as pd

    ratios = ratios or {"float32": 1.0}
    rows = []
    for fraction in fractions:
        plan = planned_ledger(message_bytes, supernodes, rounds, fraction)
        assigned = assign_links(range(supernodes), links)
        for codec, ratio in ratios.items():
            scaled = scale_payload(plan, ratio)
            rows.append(
                {
                    "fraction": fraction,
                    "codec": codec,
                    "clients_per_round": plan.node_id.nunique(),
                    "bytes": int(scaled.payload_bytes.sum()),
                    "seconds": total_seconds(scaled, assigned),
                }
            )
    return pd.DataFrame(rows)
