"""What a simulation run is: its parameters, checked before anything starts."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from .model import known_models
from .theory import APIS

BACKENDS = ("inprocess", "ray")  # Simulation Engine backends: threads here, or Ray actors


class ConfigError(ValueError):
    """A run parameter with a bad value; the message names the parameter."""


def check_count(name: str, value, minimum: int = 1) -> int:
    """Return `value` as an int if it is a whole number >= minimum, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(name: str, value, allow_zero: bool = False) -> float:
    """Return `value` as a float if it lies in (0, 1] (or [0, 1] with allow_zero), else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"{name} must lie in {interval}, got {value}")
    return float(value)


def check_choice(name: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise ConfigError."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated federated run of no-op clients; invalid values raise ConfigError."""

    supernodes: int = 2  # simulated clients (SuperNodes)
    rounds: int = 1  # federated rounds
    fraction: float = 1.0  # fraction of nodes sampled for training each round
    fraction_evaluate: float = 0.0  # fraction sampled for evaluation; the course sets 0.0
    api: str = "legacy"  # "legacy" (NumPyClient, as the course) or "message" (Message API)
    model: str = "pythia-14m"  # a model whose config ships in fedbandwidth/configs
    backend: str = "inprocess"  # Simulation Engine backend: "inprocess" (threads) or "ray" (the course's)

    def __post_init__(self) -> None:
        check_count("supernodes", self.supernodes)
        check_count("rounds", self.rounds)
        check_fraction("fraction", self.fraction)
        check_fraction("fraction_evaluate", self.fraction_evaluate, allow_zero=True)
        check_choice("api", self.api, APIS)
        check_choice("model", self.model, known_models())
        check_choice("backend", self.backend, BACKENDS)

    @property
    def min_nodes(self) -> int:
        """Minimum nodes to sample: Flower's default 2, or fewer if fewer exist."""
        return min(2, self.supernodes)


def check_lesson_parameters(num_supernodes, num_rounds, fraction_fit) -> SimulationConfig:
    """Check the lesson notebook's parameters cell; raise ConfigError naming the bad one."""
    check_count("num_supernodes", num_supernodes)
    check_count("num_rounds", num_rounds)
    check_fraction("fraction_fit", fraction_fit)
    return SimulationConfig(num_supernodes, num_rounds, fraction_fit)
