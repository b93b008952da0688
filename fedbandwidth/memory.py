"""Will a simulation fit in memory? An estimate in model messages, made before anything starts.

A model message is the payload of one model (``predict(...).message_payload_bytes``). In-process,
the server holds the global model and aggregates one reply at a time, each engine worker holds
what Flower's client wrapper makes of one message, and a no-op reply shares the bytes it was
sent (``backends.share_sent_buffers``): the peak does not grow with the nodes.
Under Ray every reply is its own pickled copy, so it does (benchmarks/bench_memory.py measures both).
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import ConfigError
from .units import GIB, MIB, to_gib

# Model messages held at the peak, in-process, beyond the process itself (bench_memory.py: at most 4.6 and 4.0).
INPROCESS_MESSAGES = {"legacy": 5, "message": 4}
INPROCESS_BASE_BYTES = 400 * MIB  # Python, Flower, numpy, pandas and matplotlib before any model
RAY_BASE_BYTES = 3 * GIB  # Ray's daemons and two actors (4.56 GiB peak at pythia-14m, 10 nodes a round)
RAY_EXTRA_MESSAGES = 3  # the global model, the sum and one deserialized reply, besides one copy per node
# A deployment: the SuperLink, `flwr run` and the ServerApp's process, then ~272 MiB a SuperNode (PSS of the whole
# process tree, measured with 4 and 8 nodes of tiny-gptneox: the SuperNode and its ClientApp process).
DEPLOY_BASE_BYTES = 512 * MIB
DEPLOY_NODE_BYTES = 272 * MIB
DEPLOY_SERVER_MESSAGES = 3  # the ServerApp's global model, its sum and one reply being read
DEPLOY_NODE_MESSAGES = 3  # per node: the model it received, its reply, and the SuperLink's copy of that reply


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory a simulation is expected to need."""

    message_bytes: int  # payload bytes of one model message
    messages: int  # model messages held at the peak
    base_bytes: int  # the processes before any model

    @property
    def peak_bytes(self) -> int:
        """Estimated peak: the base plus the messages held."""
        return self.base_bytes + self.messages * self.message_bytes


def estimate_memory(message_bytes: int, sampled: int, api: str, backend: str = "inprocess") -> MemoryEstimate:
    """The peak of a run whose model message is `message_bytes` and that samples `sampled` nodes a round."""
    if backend == "inprocess":
        return MemoryEstimate(message_bytes, INPROCESS_MESSAGES[api], INPROCESS_BASE_BYTES)
    return MemoryEstimate(message_bytes, sampled + RAY_EXTRA_MESSAGES, RAY_BASE_BYTES)


def estimate_deployment_memory(message_bytes: int, supernodes: int) -> MemoryEstimate:
    """The peak of a local deployment of `supernodes` SuperNodes whose model message is `message_bytes`."""
    messages = DEPLOY_SERVER_MESSAGES + DEPLOY_NODE_MESSAGES * supernodes
    return MemoryEstimate(message_bytes, messages, DEPLOY_BASE_BYTES + DEPLOY_NODE_BYTES * supernodes)


def largest_deployment(message_bytes: int, available: int) -> int:
    """The most SuperNodes whose deployment's estimated peak fits in `available` bytes (0 if none does)."""
    per_node = DEPLOY_NODE_BYTES + DEPLOY_NODE_MESSAGES * message_bytes
    fixed = DEPLOY_BASE_BYTES + DEPLOY_SERVER_MESSAGES * message_bytes
    return max(0, (available - fixed) // per_node)


def available_memory_bytes() -> int:
    """Memory the system can give a new process now without swapping (MemAvailable)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(estimate: MemoryEstimate, available: int, advice: str) -> None:
    """Raise ConfigError (one line: estimate, what is free, what to change) if the estimate exceeds `available`."""
    if estimate.peak_bytes <= available:
        return
    raise ConfigError(
        f"this run needs about {to_gib(estimate.peak_bytes):.1f} GiB ({estimate.messages} model messages of "
        f"{estimate.message_bytes:,} B + {to_gib(estimate.base_bytes):.1f} GiB for the processes), but "
        f"{to_gib(available):.1f} GiB is available: {advice}"
    )
