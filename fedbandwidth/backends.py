"""Simulation backends: Flower's Simulation Engine runs ClientApps on Ray actors, or here in threads.

Flower's Simulation Engine (`run_simulation`) keeps everything that decides the bytes: the
ServerApp, the Grid, the LinkState, node contexts, message ids, sampling. Only its backend, the
part that executes a ClientApp for a message, is swappable. Ray gives each client a process;
that isolation costs a Ray start, worker processes and a pickled copy of every message, which a
no-op client does not need. The in-process backend runs the same ClientApp in a thread of the
calling process on a copy of the message and context (as Ray's pickling would give it), so the
ledger is byte for byte the same. Flower 1.42 hard-wires its Ray backend inside `start_vce`;
`use_backend()` swaps it for the duration of one run and restores it afterwards, together with
the engine's queue class (see PromptQueue).
"""

from __future__ import annotations

import copy
import importlib
import queue
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException
from flwr.server.superlink.fleet.vce.backend import Backend, BackendConfig

from .names import BACKENDS

RAY_BACKEND_MODULE = "flwr.server.superlink.fleet.vce.backend.raybackend"
VCE_API_MODULE = "flwr.server.superlink.fleet.vce.vce_api"  # the engine loop; it names its queue class Queue
QUEUE_WAIT_SECONDS = 0.02  # longest wait of an engine thread on its queue before it checks for the run's end
DEFAULT_WORKERS = 2  # ClientApps running at once; this machine has 2 cores


class InProcessBackend(Backend):
    """A Simulation Engine backend that runs each ClientApp call in a thread of this process."""

    def __init__(self, backend_config: BackendConfig) -> None:
        """Read the worker count from backend_config['inprocess']['workers'] (default 2)."""
        super().__init__(backend_config)
        self.workers = int(backend_config.get("inprocess", {}).get("workers", DEFAULT_WORKERS))
        self.app: ClientApp | None = None

    @property
    def num_workers(self) -> int:
        """Messages processed at once (one engine worker thread each)."""
        return self.workers

    def build(self, app_fn: Callable[[], ClientApp]) -> None:
        """Load the ClientApp once; every message reuses it, as a Ray actor does."""
        self.app = app_fn()

    def is_worker_idle(self) -> bool:
        """A thread is always ready: the engine starts exactly `num_workers` of them."""
        return True

    def process_message(self, message: Message, context: Context) -> tuple[Message, Context]:
        """Run the ClientApp on copies of the message and context; wrap its errors as Ray does."""
        if self.app is None:
            raise ValueError("call build() before process_message()")
        sent = message
        message, context = copy.deepcopy(message), copy.deepcopy(context)  # arrays are immutable bytes: cheap
        try:
            reply = self.app(message=message, context=context)
        except Exception as ex:  # the engine turns this into an error reply, as for a Ray actor
            raise ClientAppException(str(ex)) from ex
        return share_sent_buffers(reply, sent), context

    def terminate(self) -> None:
        """Nothing to shut down."""
        self.app = None


def share_sent_buffers(reply: Message, sent: Message) -> Message:
    """Let each reply array whose bytes equal an array the node was sent share the sent buffer.

    A no-op client's reply equals what it received, but Flower's NumPyClient wrapper serializes
    it anew: one more model in memory per node until the round is aggregated. Flower's SuperLink
    also stores arrays by content (identical chunks once). The ledger reads lengths: same bytes.
    """
    if reply.has_error():
        return reply
    by_length: dict[int, list[bytes]] = {}
    for record in sent.content.array_records.values():
        for array in record.values():
            by_length.setdefault(len(array.data), []).append(array.data)
    for record in reply.content.array_records.values():
        for array in record.values():
            same = next((data for data in by_length.get(len(array.data), ()) if data == array.data), None)
            if same is not None and same is not array.data:
                array.data = same
    return reply


class PromptQueue(queue.Queue):
    """The engine's message queue, waited on in short slices, so its threads see a run's end at once.

    Flower's engine threads wait up to 1 s on an empty queue before they check whether the
    ServerApp has finished; under Ray that hides in Ray's own shutdown, in-process it would be
    the last second of every run.
    """

    def get(self, block: bool = True, timeout: float | None = None):
        """Queue.get, with a timed wait cut to QUEUE_WAIT_SECONDS."""
        if block and timeout is not None:
            timeout = min(timeout, QUEUE_WAIT_SECONDS)
        return super().get(block, timeout)


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within this block, Flower's Simulation Engine uses backend `name` ('inprocess' or 'ray')."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "ray":
        yield
        return
    module = sys.modules.get(RAY_BACKEND_MODULE)
    if module is None:  # a stand-in module, so that Ray (2.6 s to import) is never imported
        module = types.ModuleType(RAY_BACKEND_MODULE)
        sys.modules[RAY_BACKEND_MODULE] = module
    saved = module.__dict__.get("RayBackend")
    module.RayBackend = InProcessBackend
    engine = importlib.import_module(VCE_API_MODULE)
    engine.Queue = PromptQueue
    try:
        yield
    finally:
        engine.Queue = queue.Queue
        if saved is not None:
            module.RayBackend = saved
        else:
            sys.modules.pop(RAY_BACKEND_MODULE, None)
