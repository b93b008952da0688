"""The apps' legacy client: NoOpClient's replies, byte for byte, without NumPyClient's round trip."""

from __future__ import annotations

from flwr.common import EvaluateIns, FitIns

from fedbandwidth.client_app import EchoClient, NoOpClient
from fedbandwidth.model import random_arrays
from fedbandwidth.simulation import legacy_parameters


def test_the_echo_client_replies_what_the_course_client_replies_and_hands_back_the_same_object():
    parameters = legacy_parameters(random_arrays("tiny-gptneox").items())
    course, echo = NoOpClient().to_client(), EchoClient()
    fit_ins = FitIns(parameters, {"server_round": 1})
    ours, theirs = echo.fit(fit_ins), course.fit(fit_ins)
    assert ours.parameters.tensors == theirs.parameters.tensors and ours.parameters.tensor_type == "numpy.ndarray"
    assert ours.parameters is parameters  # nothing deserialized, nothing serialized again
    assert (ours.status, ours.num_examples, ours.metrics) == (theirs.status, theirs.num_examples, theirs.metrics)
    ours, theirs = echo.evaluate(EvaluateIns(parameters, {})), course.evaluate(EvaluateIns(parameters, {}))
    assert (ours.status, ours.loss, ours.num_examples, ours.metrics) == (
        theirs.status, theirs.loss, theirs.num_examples, theirs.metrics
    )  # fmt: skip
