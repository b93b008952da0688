"""A fleet: many unequal clients, each with its own link, compute speed and availability, as numpy columns.

Three ways to give one (`fedbandwidth plan --fleet`):
- a CSV, a row a client: ``down_mbit,up_mbit,latency_ms`` and either ``step_seconds`` (compute seconds a local
  step) or ``speed`` (a factor on `--step-seconds`), optionally ``availability`` (the chance it answers a round);
- a mix of built-in profiles with their shares, ``"4G:0.5,Wi-Fi:0.3,3G:0.2"`` (shares sum to 1; counts by the
  largest remainder, so N clients are exactly N);
- ``--links A,B,...`` as `deploy` takes them: one link per client, an exact fleet.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import ConfigError
from .links import MBIT, PROFILES, parse_link

SHARE_TOLERANCE = 1e-6  # shares of a mix must sum to 1 within this


@dataclass(frozen=True)
class Fleet:
    """Clients as columns: rates in bit/s, one-way latency and compute a local step in seconds, availability."""

    down_bits_per_second: np.ndarray  # server -> client rate of each client
    up_bits_per_second: np.ndarray  # client -> server rate of each client
    latency_seconds: np.ndarray  # one-way latency of each client
    step_seconds: np.ndarray  # compute seconds of one local step on each client
    availability: np.ndarray  # probability in (0, 1] that a client can be sampled in a round
    labels: tuple[str, ...]  # a name a client (its profile, or "csv")

    def __len__(self) -> int:
        return len(self.down_bits_per_second)


def fleet_from_links(links, step_seconds: float) -> Fleet:
    """A fleet with one client per LinkProfile, all at `step_seconds` a step, always available."""
    n = len(links)
    return Fleet(
        np.array([link.down_bits_per_second for link in links], dtype=float),
        np.array([link.up_bits_per_second for link in links], dtype=float),
        np.array([link.latency_seconds for link in links], dtype=float),
        np.full(n, float(step_seconds)),
        np.ones(n),
        tuple(link.name for link in links),
    )


def parse_mix(text: str) -> dict[str, float]:
    """'4G:0.5,Wi-Fi:0.3' -> {profile: share}; unknown profiles, bad shares or a sum other than 1 are errors."""
    shares = {}
    for part in text.split(","):
        name, _, share = part.strip().rpartition(":")
        if name not in PROFILES:
            raise ConfigError(f"--fleet: unknown link profile {name!r} in {text!r} (known: {', '.join(PROFILES)})")
        try:
            shares[name] = float(share)
        except ValueError:
            raise ConfigError(f"--fleet: the share of {name} must be a number, got {share!r}") from None
        if not 0 < shares[name] <= 1:
            raise ConfigError(f"--fleet: the share of {name} must be in (0, 1], got {share}")
    if abs(sum(shares.values()) - 1) > SHARE_TOLERANCE:
        raise ConfigError(f"--fleet: the shares must sum to 1, got {sum(shares.values()):g} in {text!r}")
    return shares


def mix_counts(shares: dict[str, float], clients: int) -> dict[str, int]:
    """Clients per profile: floor of each share, the rest to the largest remainders (exactly `clients` in all)."""
    exact = {name: share * clients for name, share in shares.items()}
    counts = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda n: (counts[n] - exact[n], n))[: clients - sum(counts.values())]:
        counts[name] += 1
    return counts


def fleet_from_mix(text: str, clients: int, step_seconds: float) -> Fleet:
    """`clients` clients drawn from a mix of built-in profiles by their shares (deterministic counts)."""
    counts = mix_counts(parse_mix(text), clients)
    return fleet_from_links([PROFILES[name] for name, n in counts.items() for _ in range(n)], step_seconds)


def csv_column(rows: list[dict], name: str, low: float, where: str) -> np.ndarray:
    """A numeric CSV column whose every value is >= `low` (> 0 when low is 0 for rates), else ConfigError."""
    try:
        values = np.array([float(row[name]) for row in rows])
    except (KeyError, ValueError):
        raise ConfigError(f"--fleet: {where} needs a number in column {name!r} of every row") from None
    strict = name in ("down_mbit", "up_mbit", "speed", "availability")
    if np.any(values <= low) if strict else np.any(values < low):
        raise ConfigError(f"--fleet: {where} has a {name} {'<=' if strict else '<'} {low:g}: {values.min():g}")
    return values


def fleet_from_csv(path: Path, step_seconds: float) -> Fleet:
    """A fleet read from a CSV file, a row a client (columns in the module docstring)."""
    try:
        rows = list(csv.DictReader(Path(path).open(newline="")))
    except OSError as err:
        raise ConfigError(f"--fleet: cannot read {str(path)!r}: {err.strerror}") from None
    if not rows:
        raise ConfigError(f"--fleet: {str(path)!r} holds no client")
    where = repr(str(path))
    step = (
        csv_column(rows, "step_seconds", 0, where)
        if "step_seconds" in rows[0]
        else step_seconds / csv_column(rows, "speed", 0, where)
    )
    availability = csv_column(rows, "availability", 0, where) if "availability" in rows[0] else np.ones(len(rows))
    if np.any(availability > 1):
        raise ConfigError(f"--fleet: {where} has an availability > 1: {availability.max():g}")
    down, up = (csv_column(rows, c, 0, where) * MBIT for c in ("down_mbit", "up_mbit"))
    latency = csv_column(rows, "latency_ms", 0, where) / 1000
    return Fleet(down, up, latency, step, availability, ("csv",) * len(rows))


def load_fleet(fleet: str | None, links: str | None, clients: int, step_seconds: float) -> Fleet:
    """The fleet a `plan` asks for: --links (exact), a CSV path, or a mix of profiles for `clients` clients."""
    if links:
        return fleet_from_links([parse_link(t) for t in links.split(",")], step_seconds)
    if fleet is None:
        raise ConfigError("--fleet: give a fleet (a CSV, or a mix such as '4G:0.5,Wi-Fi:0.5'), or --links")
    if fleet.endswith(".csv") or Path(fleet).is_file():
        return fleet_from_csv(Path(fleet), step_seconds)
    return fleet_from_mix(fleet, clients, step_seconds)
