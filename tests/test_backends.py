"""The in-process Simulation Engine backend: isolated copies, Flower's error type, a clean swap."""

import subprocess
import sys

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict
from flwr.app.error import Error
from flwr.clientapp import ClientApp
from flwr.clientapp.client_app import ClientAppException

from fedbandwidth.backends import (
    QUEUE_WAIT_SECONDS,
    RAY_BACKEND_MODULE,
    VCE_API_MODULE,
    InProcessBackend,
    PromptQueue,
    share_sent_buffers,
    use_backend,
)


@pytest.fixture(autouse=True)
def server_identity(monkeypatch):
    """Messages are created as a ServerApp would: Flower reads its run, node and task ids."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_node_id", 0), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


def train_message() -> tuple[Message, Context]:
    """A train message for node 7 carrying one 3-element array, and node 7's context."""
    content = RecordDict({"arrays": ArrayRecord({"w": Array(np.arange(3, dtype=np.float32))})})
    message = Message(content=content, dst_node_id=7, message_type="train")
    context = Context(run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
    return message, context


def backend_with(handler) -> InProcessBackend:
    """An InProcessBackend whose ClientApp runs `handler` on train messages."""
    client = ClientApp()
    client.train()(handler)
    backend = InProcessBackend({"inprocess": {"workers": 3}})
    backend.build(lambda: client)
    return backend


def test_client_works_on_copies_and_its_state_comes_back():
    def handler(msg, context):
        msg.content["arrays"]["w"] = Array(np.zeros(3, dtype=np.float32))  # must not reach the sender
        context.state["seen"] = ArrayRecord({"x": Array(np.ones(2, dtype=np.float32))})
        return Message(content=RecordDict({"arrays": msg.content["arrays"]}), reply_to=msg)

    backend = backend_with(handler)
    message, context = train_message()
    reply, new_context = backend.process_message(message, context)
    assert backend.num_workers == 3 and backend.is_worker_idle()
    np.testing.assert_array_equal(message.content["arrays"]["w"].numpy(), [0, 1, 2])
    np.testing.assert_array_equal(reply.content["arrays"]["w"].numpy(), [0, 0, 0])
    assert "seen" in new_context.state and "seen" not in context.state


def test_client_error_is_raised_as_flowers_clientapp_exception():
    def handler(msg, context):
        raise RuntimeError("disk full")

    with pytest.raises(ClientAppException, match="disk full"):
        backend_with(handler).process_message(*train_message())


def test_use_backend_swaps_and_restores_without_importing_ray():
    code = (
        f"import sys; from fedbandwidth.backends import use_backend, InProcessBackend\n"
        f"with use_backend('inprocess'):\n"
        f"    from {RAY_BACKEND_MODULE} import RayBackend; assert RayBackend is InProcessBackend\n"
        f"print('ray' in sys.modules, {RAY_BACKEND_MODULE!r} in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_use_backend_restores_the_real_ray_backend():
    import importlib

    module = importlib.import_module(RAY_BACKEND_MODULE)
    real = module.RayBackend
    with use_backend("inprocess"):
        assert module.RayBackend is InProcessBackend
    assert module.RayBackend is real
    with use_backend("ray"):
        assert module.RayBackend is real


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of inprocess, ray"):
        with use_backend("dask"):
            pass


def test_an_echoed_reply_shares_the_sent_bytes_and_a_changed_one_does_not():
    def handler(msg, context):  # serializes anew, as Flower's NumPyClient wrapper does
        same = Array(msg.content["arrays"]["w"].numpy())
        changed = Array(np.array([9, 9, 9], dtype=np.float32))
        return Message(content=RecordDict({"arrays": ArrayRecord({"w": same, "v": changed})}), reply_to=msg)

    message, context = train_message()
    reply, _ = backend_with(handler).process_message(message, context)
    sent = message.content["arrays"]["w"].data
    assert reply.content["arrays"]["w"].data is sent  # equal bytes: one buffer
    assert reply.content["arrays"]["v"].data is not sent and reply.content["arrays"]["v"].numpy().tolist() == [9] * 3


def test_an_error_reply_is_left_alone():
    message, _ = train_message()
    error = Message(Error(code=0, reason="x"), reply_to=message)
    assert share_sent_buffers(error, message) is error


def test_engine_queue_waits_in_short_slices(monkeypatch):
    import queue

    waits = []
    monkeypatch.setattr(queue.Queue, "get", lambda self, block=True, timeout=None: waits.append((block, timeout)))
    PromptQueue().get(timeout=1.0)
    PromptQueue().get(block=False)
    PromptQueue().get()
    assert waits == [(True, QUEUE_WAIT_SECONDS), (False, None), (True, None)]


def test_use_backend_swaps_the_engine_queue_and_restores_it():
    import importlib
    import queue

    engine = importlib.import_module(VCE_API_MODULE)
    with use_backend("inprocess"):
        assert engine.Queue is PromptQueue
    assert engine.Queue is queue.Queue
