"""A node's turnaround: what Flower does between a model's download and its reply's upload.

Read in Flower 1.42's source (supernode/start_client_internal.py, supercore/inflatable/inflatable_utils.py,
supercore/superexec/run_superexec.py) and seen on the wire: the SuperNode creates the ClientApp's task as soon as
a message's object tree arrives, then pulls the objects and stores them only once all have come. The SuperExec,
polling every second, starts a `flwr-clientapp` process meanwhile, which pulls the objects from the SuperNode with
two threads; an object that is not there yet is tried again after 1 s, then 2, 4, 8 and 10 s for good, each
wait +-20% at random. So after a download slower than the ClientApp's start, the ClientApp sleeps until its next
try: up to 10 s after the last byte. Then it loads the app, runs it and pushes its reply to the SuperNode, whose
loop looks for a reply every 0.5 s. `deploy` records each ClientApp's clock (client_app.py) and this module reads
it. `calibrate` measures a ClientApp's imports at rest (its first pull: on loopback the download it overlaps
slows them by about a second on 2 cores, which a device downloading at its own link's pace mostly does not
see) and, on loopback, its work from its app loaded to its reply's upload; `ready_seconds` plays the retries.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import numpy as np
from flwr.supercore.constant import FLWR_PRIVATE_MAX_CONCURRENT_OBJ_PULLS, PULL_BACKOFF_CAP, PULL_INITIAL_BACKOFF

from ..app_rounds import POLL_SECONDS

# Flower's own constants for its object pulls: first wait, longest wait, objects pulled at once (2 threads on a
# machine of >= 2 cores); the waits double between them, each scaled by 1 +- PULL_JITTER (hard-coded in Flower).
PULL_WAITS = tuple(float(w) for w in (PULL_INITIAL_BACKOFF * 2**k for k in range(8)) if w < PULL_BACKOFF_CAP)
PULL_WAIT_CAP = float(PULL_BACKOFF_CAP)  # 1, 2, 4, 8 s, then 10 s for good
PULL_JITTER = 0.2  # each wait is scaled by 1 +- this, uniformly (inflatable_utils.pull_objects)
PULL_THREADS = FLWR_PRIVATE_MAX_CONCURRENT_OBJ_PULLS
LAUNCH_POLL = 1.0  # the SuperExec looks for a task to start this often (FLWR_SUPEREXEC_TASK_POLL_INTERVAL's default)
CLOCK = ("round", "started", "loaded", "entered", "left")  # a ClientApp's clock, one row a train message


def clientapp_rows(folder: Path, origin: float) -> list[dict]:
    """Every ClientApp's clock in `folder` (clientapp-<partition>.csv), in seconds since `origin`."""
    rows = []
    for path in sorted(Path(folder).glob("clientapp-*.csv")):
        partition = int(path.stem.rsplit("-", 1)[1])
        with path.open(newline="") as f:
            for values in csv.reader(f):
                times = {k: round(float(v) - origin, 3) for k, v in zip(CLOCK[1:], values[1:], strict=True)}
                rows.append({"round": int(values[0]), "node": partition, **times})
    return sorted(rows, key=lambda r: (r["round"], r["node"]))


def try_times(start: float, draws: int, rng: np.random.Generator, horizon: float) -> np.ndarray:
    """(draws, threads, tries) times at which each pulling thread tries, from `start` until past `horizon`."""
    slowest = (horizon - start) / (1 - PULL_JITTER) - sum(PULL_WAITS)  # the shortest waits must still get there
    waits = [*PULL_WAITS, *[PULL_WAIT_CAP] * (max(0, int(np.ceil(slowest / PULL_WAIT_CAP))) + 1)]
    jitter = 1 + rng.uniform(-PULL_JITTER, PULL_JITTER, (draws, PULL_THREADS, len(waits)))
    return start + np.concatenate([np.zeros((draws, PULL_THREADS, 1)), np.cumsum(np.array(waits) * jitter, -1)], -1)


def ready_seconds(done: np.ndarray, start: float, rng: np.random.Generator) -> np.ndarray:
    """When a ClientApp that starts pulling at `start` has every object of a download finished at `done`
    (seconds since the download began; one draw of the retries' jitter per element)."""
    done = np.asarray(done, dtype=float)
    times = try_times(start, done.size, rng, float(done.max(initial=start)))
    after = np.where(times >= done.reshape(-1, 1, 1), times, np.inf).min(-1)
    return after.max(-1).reshape(done.shape)


WAIT_SPAN, WAIT_STEP = 200.0, 0.1  # the wait table: downloads done up to this long after the first try, this fine
WAIT_DRAWS, WAIT_QUANTILES = 800, 32  # retries played per grid point (seed 0), quantiles kept of their waits


@cache
def wait_table() -> np.ndarray:
    """(grid, WAIT_QUANTILES): quantiles of the seconds from a download done x seconds after the ClientApp's first
    try to its last object pulled, x on a grid of WAIT_STEP up to WAIT_SPAN."""
    grid = np.arange(0.0, WAIT_SPAN + WAIT_STEP / 2, WAIT_STEP)
    times = try_times(0.0, WAIT_DRAWS, np.random.default_rng(0), WAIT_SPAN)
    ready = np.stack([[t[np.searchsorted(t, grid)] for t in threads] for threads in times.transpose(1, 0, 2)])
    levels = (np.arange(WAIT_QUANTILES) + 0.5) / WAIT_QUANTILES
    return np.quantile(ready.max(0) - grid, levels, axis=0).T


def pulled_seconds(done: np.ndarray, start, rng: np.random.Generator | None = None) -> np.ndarray:
    """When a ClientApp starting to pull at `start` has all of downloads finished at `done` (seconds since the
    download began): one draw of the retries per element with `rng`, else their mean."""
    done = np.asarray(done, dtype=float)
    table = wait_table()
    late = done - start
    late = np.where(late > WAIT_SPAN, WAIT_SPAN - 50 + (late - WAIT_SPAN) % 50, late)  # retries every 10 s by then
    row = np.clip(np.rint(late / WAIT_STEP), 0, table.shape[0] - 1).astype(int)
    wait = table[row].mean(-1) if rng is None else table[row, rng.integers(WAIT_QUANTILES, size=row.shape)]
    return np.where(late <= 0, start, done + wait)


def loaded_seconds(done: np.ndarray, start: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """When a ClientApp has all of downloads finished at `done` (seconds since they began) and loads its app (a
    few hundredths of a second, not counted), if its process starts within LAUNCH_POLL of the download (uniformly:
    the SuperExec's poll) and first pulls `start` seconds later: one draw with `rng`, else the mean."""
    done = np.asarray(done, dtype=float)
    if rng is not None:
        return pulled_seconds(done, start + rng.uniform(0, LAUNCH_POLL, done.shape), rng)
    launches = (np.arange(16) + 0.5) / 16 * LAUNCH_POLL
    return np.mean([pulled_seconds(done, start + launch) for launch in launches], axis=0)


SERVER_POLL = POLL_SECONDS  # the ServerApp (our RoundGrid) looks for replies this often (Flower's own loop: 3 s)


def served_seconds(starts: np.ndarray, ends: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """When the ServerApp has each reply of a round, for uploads from `starts` to `ends` (trials x clients; inf:
    none). It sees a reply once its upload begins (the SuperNode registers it first), within its poll, and pulls
    its objects with the same retries as a ClientApp, one reply at a time in the order their uploads began: a
    slow upload holds up the replies behind it (Flower 1.42's Grid.pull_messages). Retries drawn with `rng`."""
    order = np.argsort(starts, axis=1, kind="stable")
    began, done = (np.take_along_axis(a, order, axis=1) for a in (starts, ends))
    served, free = np.full(began.shape, np.inf), np.full(len(began), -np.inf)
    for j in range(began.shape[1]):
        real = np.isfinite(began[:, j])
        seen = began[:, j] + (SERVER_POLL / 2 if rng is None else rng.uniform(0, SERVER_POLL, len(began)))
        start = np.where(real, np.maximum(free, seen), 0.0)
        ready = start + pulled_seconds(np.where(real, done[:, j] - start, 0.0), 0.0, rng)
        served[:, j] = np.where(real, ready, np.inf)
        free = np.where(real, ready, free)
    out = np.empty_like(served)
    np.put_along_axis(out, order, served, axis=1)
    return out
