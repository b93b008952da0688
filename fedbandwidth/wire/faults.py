"""Faults a deployment can be put through, to show it never waits forever: a SuperNode killed mid-transfer
(and maybe restarted), an emulated link taken down for a while. Each fires once its node's relay has sent
it a given number of bytes, so "mid-run" means the same thing on a slow link as on a fast one."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..names import DOWN
from .relay import Relay


@dataclass(frozen=True)
class NodeFault:
    """Kill one SuperNode (SIGKILL: no goodbye to the SuperLink) once its relay sent it `after_down_bytes`;
    with `restart_after`, start it again that many seconds later (it registers as a new node)."""

    partition: int = 0  # which SuperNode
    after_down_bytes: int = 20 * 2**20  # once this many bytes went down to it (e.g. mid-model)
    signum: int = signal.SIGKILL  # SIGKILL: the node just disappears
    restart_after: float | None = None  # seconds until it is started again; None: it stays dead

    def due(self, relay: Relay) -> bool:
        """True once the node's relay has sent it `after_down_bytes`."""
        return relay.totals()[DOWN] >= self.after_down_bytes


@dataclass(frozen=True)
class LinkFault:
    """Take one emulated link down (no frame passes either way) for `down_seconds`, once its relay sent
    `after_down_bytes`; the node then reconnects, or is counted lost."""

    partition: int = 0  # whose link
    after_down_bytes: int = 10 * 2**20  # once this many bytes went down to it
    down_seconds: float = 10.0  # how long the link stays down

    def due(self, relay: Relay) -> bool:
        """True once the node's relay has sent it `after_down_bytes`."""
        return relay.totals()[DOWN] >= self.after_down_bytes


@dataclass
class FaultPlan:
    """Fires faults when due and their follow-ups (restart, link up) when their time comes; logs events."""

    faults: list  # NodeFault / LinkFault, each fired once
    kill: Callable[[int, int], None]  # kill(partition, signum)
    restart: Callable[[int], None]  # start a partition's SuperNode again
    set_link: Callable[[int, bool], None]  # take a partition's link down (False) or up (True)
    events: list[dict] = field(default_factory=list)  # {"partition", "event", "unix_time"}
    _later: list = field(default_factory=list)  # (monotonic time, partition, event)

    def step(self, relays: list[Relay]) -> None:
        """Fire what is due now."""
        for fault in [f for f in self.faults if f.due(relays[f.partition])]:
            self.faults.remove(fault)
            self._fire(fault)
        now = time.monotonic()
        for when, partition, event in [x for x in self._later if x[0] <= now]:
            self._later.remove((when, partition, event))
            self.restart(partition) if event == "restarted" else self.set_link(partition, True)
            self._log(partition, event)

    def _fire(self, fault) -> None:
        """Apply a fault and schedule its follow-up."""
        if isinstance(fault, LinkFault):
            self.set_link(fault.partition, False)
            self._log(fault.partition, "link_down")
            self._later.append((time.monotonic() + fault.down_seconds, fault.partition, "link_up"))
            return
        self.kill(fault.partition, fault.signum)
        self._log(fault.partition, "killed")
        if fault.restart_after is not None:
            self._later.append((time.monotonic() + fault.restart_after, fault.partition, "restarted"))

    def _log(self, partition: int, event: str) -> None:
        """Note an event with the time it happened."""
        self.events.append({"partition": partition, "event": event, "unix_time": round(time.time(), 3)})

    def finish(self) -> None:
        """Bring back any link still down (teardown removes it anyway; the counters stay readable)."""
        for _, partition, event in self._later:
            if event == "link_up":
                self.set_link(partition, True)
        self._later.clear()
