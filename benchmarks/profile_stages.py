"""Where the model copies are: memory held at each stage of a simulation, in units of one model message.

Runs `simulate()` in this process with tracemalloc on (it traces Python's allocator: every `bytes`
object and numpy buffer), wrapping the stages: building the initial model, the strategy's
configure/aggregate, the Grid's send_and_receive, each ClientApp call, each reply stored, each
ledger row. At every stage boundary it prints the bytes traced now, the peak since the previous
boundary and the process RSS. `--snapshot` also names, at the first aggregation and after round 1,
the code that allocated every block larger than 0.2 messages (slow; its own bookkeeping inflates RSS).
`--cprofile` profiles time instead: every thread of the run under cProfile, and the seconds spent inside the
stages that matter (Flower's NumPyClient wrapper, its serialization, its aggregation or ours, our buffer sharing),
each named with whose code it is.
Usage: python benchmarks/profile_stages.py [--model pythia-14m] [--api legacy] [--supernodes 10] [--rounds 2]
       [--snapshot | --cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import logging
import pstats
import threading
import time
import tracemalloc

import psutil

EVENTS: list[tuple] = []  # (seconds, thread, stage, traced bytes, traced peak since last, rss)
SNAPSHOTS: dict[str, tracemalloc.Snapshot] = {}
STARTED = time.perf_counter()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pythia-14m")
    parser.add_argument("--api", choices=("legacy", "message"), default="legacy")
    parser.add_argument("--supernodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--snapshot", action="store_true", help="name the code holding each big block")
    parser.add_argument("--cprofile", action="store_true", help="profile time (cProfile, every thread), not memory")
    return parser.parse_args(argv)


def mark(stage: str) -> None:
    """Record the traced memory now, its peak since the last mark, and RSS."""
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    rss = psutil.Process().memory_info().rss
    EVENTS.append((time.perf_counter() - STARTED, threading.current_thread().name[:16], stage, current, peak, rss))


def wrap(owner, name: str, label: str, snapshot_as: str | None = None) -> None:
    """Replace owner.name with a version that marks entry and exit (and snapshots once, if asked)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def marked(*args, **kwargs):
        if snapshot_as and snapshot_as not in SNAPSHOTS:
            SNAPSHOTS[snapshot_as] = tracemalloc.take_snapshot()
        mark(f"> {label}")
        result = original(*args, **kwargs)
        mark(f"< {label}")
        return result

    setattr(owner, name, marked)


def instrument(snapshot: bool) -> None:
    """Wrap the stages of both APIs."""
    from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
    from flwr.superlink.grid.inmemory_grid import InMemoryGrid

    from fedbandwidth import backends, simulation, tracking
    from fedbandwidth.ledger import Ledger

    wrap(simulation, "legacy_parameters", "initial model (legacy Parameters)")
    wrap(simulation, "array_record", "initial model (ArrayRecord)")
    for cls, names in (
        (tracking.BandwidthTrackingFedAvg, ("configure_fit", "aggregate_fit", "configure_evaluate")),
        (tracking.MessageTrackingFedAvg, ("configure_train", "aggregate_train", "configure_evaluate")),
    ):
        for name in names:
            first = {"aggregate_fit": "aggregation", "aggregate_train": "aggregation"}.get(name)
            later = {"configure_evaluate": "after round 1"}.get(name)
            wrap(cls, name, f"strategy.{name}", (first or later) if snapshot else None)
    wrap(InMemoryGrid, "send_and_receive", "grid.send_and_receive")
    wrap(backends.InProcessBackend, "process_message", "ClientApp call")
    wrap(InMemoryLinkState, "store_message_res", "reply stored")
    wrap(Ledger, "record", "ledger row")


def report(message_bytes: int) -> None:
    """Print the stages (repeated ledger rows folded) and the snapshots."""
    print(f"{'s':>6} {'thread':<16} {'now':>6} {'peak':>6} {'rss':>6}  stage   (units: {message_bytes:,} B)")
    for seconds, thread, stage, current, peak, rss in EVENTS:
        if "ledger row" not in stage or stage.startswith(">"):
            cells = (current / message_bytes, peak / message_bytes, rss / message_bytes)
            print(f"{seconds:6.2f} {thread:<16} " + " ".join(f"{c:6.2f}" for c in cells) + f"  {stage}")
    top = max(e[4] for e in EVENTS)
    print(f"traced peak {top / message_bytes:.2f} messages")
    for label, snap in SNAPSHOTS.items():
        print(f"-- at {label}: blocks over 0.2 messages, by the code that allocated them")
        for stat in snap.statistics("traceback"):
            if stat.size >= 0.2 * message_bytes:
                where = [f for f in stat.traceback.format() if "File" in f][-3:]
                print(
                    f"  {stat.size / message_bytes:6.2f} in {stat.count} blocks: "
                    + " -> ".join(w.strip() for w in where)
                )


# (whose code, what, file suffix, function): the stages whose cumulative seconds --cprofile prints
TIME_STAGES = [
    ("Flower", "NumPyClient wrapper: deserialize, fit, serialize (legacy)", "compat/client/numpy_client.py", "_fit"),
    (
        "Flower",
        "  its deserialization",
        "compat/common/parameter.py",
        "parameters_to_ndarrays",
    ),
    ("Flower", "  and serialization", "compat/common/parameter.py", "ndarrays_to_parameters"),
    ("Flower", "aggregate_inplace (legacy FedAvg's own)", "server/strategy/aggregate.py", "aggregate_inplace"),
    (
        "Flower",
        "aggregate_arrayrecords (Message API FedAvg)",
        "strategy/strategy_utils.py",
        "aggregate_arrayrecords",
    ),
    ("Flower", "Array from numpy (serializes the aggregate)", "app/message/array.py", "from_numpy_ndarray"),
    (
        "Flower",
        "legacy compat: Parameters -> ArrayRecord",
        "compat/common/recorddict_compat.py",
        "parameters_to_arrayrecord",
    ),
    (
        "Flower",
        "legacy compat: ArrayRecord -> Parameters",
        "compat/common/recorddict_compat.py",
        "arrayrecord_to_parameters",
    ),
    ("ours", "average_parameters (zero-copy, legacy)", "fedbandwidth/tracking.py", "average_parameters"),
    ("ours", "average_records (zero-copy, Message API)", "fedbandwidth/tracking.py", "average_records"),
    ("ours", "share_sent_buffers (a reply shares the sent bytes)", "fedbandwidth/backends.py", "share_sent_buffers"),
    ("ours", "process_message (copies + ClientApp call)", "fedbandwidth/backends.py", "process_message"),
    ("ours", "ledger rows (lengths and .npy headers)", "fedbandwidth/tracking.py", "record_parameters"),
    ("ours", "ledger rows, Message API", "fedbandwidth/tracking.py", "record_messages"),
    ("ours", "initial model (random arrays)", "fedbandwidth/model.py", "iter_random_arrays"),
]


def profile_threads() -> list[cProfile.Profile]:
    """Profile every thread started from now on (and this one); return the growing list of profiles."""
    profiles = [cProfile.Profile()]
    run = threading.Thread.run

    def profiled(self):
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled
    profiles[0].enable()
    return profiles


def time_report(profiles: list[cProfile.Profile], wall: float, rounds: int) -> None:
    """Cumulative seconds of each stage in TIME_STAGES, over the run and per round, across all threads."""
    profiles[0].disable()
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    print(f"wall {wall:.2f} s for {rounds} rounds (cProfile on: every figure is inflated alike)")
    print(f"{'whose':<7}{'stage':<58}{'calls':>7}{'s':>8}{'s/round':>9}")
    for whose, what, suffix, function in TIME_STAGES:
        rows = [v for (path, _, name), v in stats.stats.items() if path.endswith(suffix) and name == function]
        if rows:
            calls, seconds = sum(r[1] for r in rows), sum(r[3] for r in rows)
            print(f"{whose:<7}{what:<58}{calls:>7}{seconds:>8.2f}{seconds / rounds:>9.3f}")


def main(argv: list[str] | None = None) -> int:
    """Profile one run and print the stages."""
    args = parse_args(argv)
    if args.cprofile:
        return time_main(args)
    tracemalloc.start(12 if args.snapshot else 1)
    mark("start")
    from fedbandwidth.logs import setup_logging
    from fedbandwidth.model import tensor_specs
    from fedbandwidth.simulation import SimulationConfig, simulate
    from fedbandwidth.theory import predict

    setup_logging(logging.ERROR)
    instrument(args.snapshot)
    mark("imports")
    cfg = SimulationConfig(supernodes=args.supernodes, rounds=args.rounds, api=args.api, model=args.model)
    ledger = simulate(cfg)
    mark("end")
    prediction = predict(tensor_specs(args.model), args.supernodes, args.rounds, api=args.api)
    assert ledger.total_bytes() == prediction.total_bytes
    report(prediction.message_payload_bytes)
    return 0


def time_main(args: argparse.Namespace) -> int:
    """Profile one run's time (--cprofile) and print the stages."""
    started = time.perf_counter()
    profiles = profile_threads()
    from fedbandwidth.logs import setup_logging
    from fedbandwidth.simulation import SimulationConfig, simulate

    setup_logging(logging.ERROR)
    simulate(SimulationConfig(supernodes=args.supernodes, rounds=args.rounds, api=args.api, model=args.model))
    time_report(profiles, time.perf_counter() - started, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
