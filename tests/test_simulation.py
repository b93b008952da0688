"""Real simulations (both backends): the ledger equals the prediction, in both APIs, also when a client fails."""

import pytest

from conftest import LEGACY_MESSAGE_BYTES, MESSAGE_BYTES, TENSOR_BYTES
from fedbandwidth.client_app import make_legacy_app, make_message_app
from fedbandwidth.ledger import Ledger
from fedbandwidth.simulation import SimulationConfig, simulate
from fedbandwidth.theory import predict


@pytest.mark.parametrize(
    "supernodes,rounds,fraction,fraction_evaluate,api,backend",
    [
        (2, 1, 1.0, 0.0, "legacy", "ray"),  # the lesson, on the course's backend
        (2, 1, 1.0, 0.0, "legacy", "inprocess"),  # the same on ours: the same bytes
        (1, 1, 1.0, 0.0, "legacy", "inprocess"),  # one node must not hang
        (5, 2, 0.5, 0.0, "legacy", "inprocess"),  # sampling: max(int(2.5), 2) = 2
        (10, 3, 1.0, 0.0, "legacy", "inprocess"),  # the benchmark's run
        (2, 1, 1.0, 0.0, "message", "inprocess"),
        (3, 2, 0.4, 1.0, "message", "inprocess"),  # evaluate phase: the model goes down again (Ray: as legacy's)
    ],
)
def test_ledger_equals_prediction(specs, arrays, supernodes, rounds, fraction, fraction_evaluate, api, backend):
    cfg = SimulationConfig(supernodes, rounds, fraction, fraction_evaluate, api, backend=backend)
    ledger = simulate(cfg, arrays)
    expected = predict(specs, supernodes, rounds, fraction, fraction_evaluate, api)
    assert ledger.total_bytes() == expected.total_bytes
    table = ledger.per_round()
    assert list(table["round"]) == list(range(1, rounds + 1))
    assert set(table.nodes) == {expected.train_nodes}
    assert set(table.down_bytes) == {expected.down_bytes_per_round}
    assert set(table.up_bytes) == {expected.up_bytes_per_round}
    frame = ledger.to_frame()
    assert set(frame.tensor_bytes) == {TENSOR_BYTES}
    assert set(frame.payload_bytes) == {LEGACY_MESSAGE_BYTES if api == "legacy" else MESSAGE_BYTES}


@pytest.mark.parametrize(
    "api,make_app,backend",
    [
        ("legacy", make_legacy_app, "ray"),
        ("legacy", make_legacy_app, "inprocess"),
        ("message", make_message_app, "inprocess"),
    ],
)
def test_failed_client_costs_downlink_only(arrays, tmp_path, api, make_app, backend):
    ledger = Ledger(csv_path=tmp_path / "ledger.csv")
    cfg = SimulationConfig(supernodes=2, rounds=2, api=api, backend=backend)
    simulate(cfg, arrays, ledger, client_app=make_app(fail_partitions={0}))
    frame = ledger.to_frame()
    per_message = LEGACY_MESSAGE_BYTES if api == "legacy" else MESSAGE_BYTES
    assert (frame.direction == "down").sum() == 4 and (frame.direction == "up").sum() == 2
    assert ledger.total_bytes("up") == 2 * per_message
    assert frame[frame.direction == "up"].node_id.nunique() == 1  # always the healthy node
    assert len((tmp_path / "ledger.csv").read_text().splitlines()) == 1 + 6


def test_start_failure_is_retried_once(monkeypatch, arrays):
    import fedbandwidth.simulation as simulation

    calls = []

    def flaky_run(server, client, supernodes, backend_config=None, backend="ray"):
        calls.append(supernodes)
        if len(calls) == 1:
            raise RuntimeError("Simulation Runtime crashed.")  # e.g. Ray's raylet start timed out

    monkeypatch.setattr(simulation, "run", flaky_run)
    simulate(SimulationConfig(supernodes=3, backend="ray"), arrays)  # the retry is for Ray's start-up
    assert calls == [3, 3]


def test_failure_after_the_first_message_is_not_retried(monkeypatch, arrays):
    import fedbandwidth.simulation as simulation

    ledger, calls = Ledger(), []

    def failing_run(server, client, supernodes, backend_config=None, backend="ray"):
        calls.append(supernodes)
        ledger.record(1, "train", 1, "down", 10, 8)
        raise RuntimeError("Simulation Runtime crashed.")

    monkeypatch.setattr(simulation, "run", failing_run)
    with pytest.raises(RuntimeError):
        simulate(SimulationConfig(), arrays, ledger)
    assert calls == [2]


def test_wait_for_nodes_polls_until_all_registered():
    from fedbandwidth.tracking import wait_for_nodes

    registered = iter([3, 5, 8, 10, 10])
    assert wait_for_nodes(lambda: next(registered), expected=10, timeout=5) == 10
    assert wait_for_nodes(lambda: 4, expected=10, timeout=0.2) == 4  # gives up, samples from what is there
    assert wait_for_nodes(lambda: 0, expected=0) == 0  # no wait asked


@pytest.mark.parametrize("api", ["legacy", "message"])
def test_random_start_made_one_array_at_a_time_moves_the_predicted_bytes(specs, api):
    cfg = SimulationConfig(supernodes=3, rounds=2, fraction=0.5, api=api)
    ledger = simulate(cfg)  # no arrays: random ones, serialized as they are made
    assert ledger.total_bytes() == predict(specs, 3, 2, 0.5, api=api).total_bytes
    assert set(ledger.to_frame().payload_bytes) == {LEGACY_MESSAGE_BYTES if api == "legacy" else MESSAGE_BYTES}


def test_legacy_server_starts_from_the_exact_bytes_and_sends_a_round_in_one_wave(arrays):
    from flwr.common import ndarrays_to_parameters

    from fedbandwidth.simulation import legacy_components

    cfg = SimulationConfig(supernodes=10, fraction=0.5, fraction_evaluate=0.8)
    components = legacy_components(cfg, lambda: arrays.items(), Ledger())
    assert components.server.max_workers == 8  # a thread for each node of the larger sample
    initial = components.server.strategy.initialize_parameters(components.server.client_manager())
    assert initial.tensors == ndarrays_to_parameters(list(arrays.values())).tensors
