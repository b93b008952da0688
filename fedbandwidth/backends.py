"""Simulation backends: Flower's Simulation Engine runs ClientApps on Ray actors, or here in threads.

Flower's Simulation Engine (`run_simulation`) keeps everything that decides the bytes: the
ServerApp, the Grid, the LinkState, node contexts, message ids, sampling. Only its backend, the
part that executes a ClientApp for a message, is swappable. Ray gives each client a process;
that isolation costs a Ray start, worker processes and a pickled copy of every message, which a
no-op client does not need. The in-process backend runs the same ClientApp in a thread of the
calling process on a copy of the message and context (as Ray's pickling would give it), so the
ledger is byte for byte the same. Flower 1.42 hard-wires its Ray backend inside `start_vce`;
`use_backend()` swaps it for the duration of one run and restores it afterwards.
"""

from __future__ import annotations

import copy
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
        message, context = copy.deepcopy(message), copy.deepcopy(context)  # arrays are immutable bytes: cheap
        try:
            return self.app(message=message, context=context), context
        except Exception as ex:  # the engine turns this into an error reply, as for a Ray actor
            raise ClientAppException(str(ex)) from ex

    def terminate(self) -> None:
        """Nothing to shut down."""
        self.app = None


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
    try:
        yield
    finally:
        if saved is not None:
            module.RayBackend = saved
        else:
            sys.modules.pop(RAY_BACKEND_MODULE, None)
