"""The zeroth-order lever (FedKSeed): shared perturbations, bit-identical replay, K scalars each way."""

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from fedbandwidth.checks import ConfigError
from fedbandwidth.compress.messages import to_numpy, to_record
from fedbandwidth.compress.zeroth import SCALARS_KEY, ZerothFedAvg, ZerothSpec, perturbation, replay
from fedbandwidth.ledger import Ledger
from fedbandwidth.tracking import record_messages

HEADER = 128  # bytes of the .npy header of each array here
K = 8
SPEC = ZerothSpec(seeds=K, eps=1e-3, seed=0, shapes=(("a", (3, 4)), ("b", (5,))))


def start():
    return {"a": np.zeros((3, 4), np.float32), "b": np.ones(5, np.float32)}


def test_a_seed_draws_the_same_perturbation_everywhere_and_replay_adds_its_multiples():
    assert all(np.array_equal(perturbation(SPEC, 3)[k], perturbation(SPEC, 3)[k]) for k in ("a", "b"))
    assert not np.array_equal(perturbation(SPEC, 3)["a"], perturbation(SPEC, 4)["a"])
    row = np.zeros(K, np.float32)
    row[[1, 5]] = [0.5, -2.0]
    out = replay(SPEC, start(), row)
    want = {k: start()[k] + 0.5 * perturbation(SPEC, 1)[k] - 2.0 * perturbation(SPEC, 5)[k] for k in ("a", "b")}
    assert all(np.allclose(out[k], want[k], atol=1e-6) for k in want)


def test_replaying_a_missed_history_at_once_is_bit_identical_to_round_by_round():
    history = np.random.default_rng(1).standard_normal((3, K)).astype(np.float32)
    stepwise = start()
    for row in history:
        stepwise = replay(SPEC, stepwise, row)
    at_once = replay(SPEC, start(), history)
    assert all(np.array_equal(stepwise[k], at_once[k]) for k in stepwise)


def reply_to(msg, scalars, partition):
    """A client's reply: its K scalars and metrics."""
    metrics = MetricRecord({"num-examples": 4, "partition-id": partition, "compute-seconds": 1.0})
    return Message(RecordDict({"arrays": to_record({SCALARS_KEY: scalars}), "metrics": metrics}), reply_to=msg)


def test_the_strategy_moves_k_scalars_each_way_and_a_missed_round_costs_one_more_row(monkeypatch):
    from flwr.supercore.task_identity import TaskIdentity

    for attribute in ("_run_id", "_node_id", "_task_id"):  # a ServerApp's messages need its run, node and task
        monkeypatch.setattr(TaskIdentity, attribute, 1)
    ledger = Ledger()
    strategy = ZerothFedAvg(ledger, SPEC)
    rng, global_model = np.random.default_rng(2), start()
    down = {}
    for server_round, nodes in {1: (11, 12), 2: (11,), 3: (11, 12)}.items():  # node 12 misses round 2
        asked = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.TRAIN) for n in nodes]
        config = ConfigRecord({"server-round": server_round})
        sent = strategy.encode_train(asked, to_record(global_model), config)
        record_messages(ledger, server_round, "train", "down", sent)  # as configure_train records them
        down[server_round] = {m.metadata.dst_node_id: to_numpy(m.content["arrays"]) for m in sent}
        replies = [reply_to(m, rng.standard_normal(K).astype(np.float32), i) for i, m in enumerate(sent)]
        arrays, _ = strategy.aggregate_train(server_round, replies)
        global_model = to_numpy(arrays)
    frame = ledger.to_frame()
    pair_bytes = HEADER + len(SCALARS_KEY)  # + 4 bytes a (seed, scalar) pair: the seed is the position
    assert set(frame[frame.direction == "up"].payload_bytes) == {pair_bytes + 4 * K}
    rows = {(r.round, r.direction): r.payload_bytes for r in frame.itertuples() if r.node_id == 12}
    assert rows[(1, "down")] == pair_bytes  # an empty history: the node builds the start model
    assert rows[(3, "down")] == pair_bytes + 2 * 4 * K  # rounds 1 and 2, which it missed
    assert (
        frame[(frame.node_id == 11) & (frame.direction == "down") & (frame["round"] > 1)]
        .payload_bytes.eq(pair_bytes + 4 * K)
        .all()
    )
    # what node 12 replays from what it was sent is the server's model, bit for bit
    held = replay(SPEC, replay(SPEC, start(), down[1][12][SCALARS_KEY]), down[3][12][SCALARS_KEY])
    assert all(np.array_equal(replay(SPEC, held, strategy.history[-1])[k], global_model[k]) for k in held)
    assert strategy.timing[1]["compute_seconds"] == 1.0 and strategy.timing[3]["server_seconds"] > 0


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"zeroth_seeds": 0}, "zeroth-seeds must be >= 1"),
        ({"zeroth_seeds": 4, "zeroth_eps": 0}, "zeroth-eps must be a number > 0"),
        ({"zeroth_seeds": 4, "up_codec": "int8"}, "zeroth-seeds: the zeroth-order lever sends K scalars"),
    ],
)
def test_bad_zeroth_settings_raise_config_error(kwargs, needle):
    from fedbandwidth.compress.training import TrainConfig

    with pytest.raises(ConfigError) as err:
        TrainConfig(**kwargs)
    assert needle in str(err.value)


def test_a_tiny_zeroth_order_run_moves_k_scalars_a_round_each_way_and_times_its_rounds():
    """2 clients x 2 rounds x 1 step, K = 4: exactly K float32 (and one header and key) per message after round 1."""
    from fedbandwidth.compress.training import TrainConfig, train

    result = train(TrainConfig(rounds=2, local_steps=1, zeroth_seeds=4, lr=1e-6))
    frame = result.ledger.to_frame()
    pair_bytes = HEADER + len(SCALARS_KEY)
    assert sorted(frame[frame.direction == "up"].payload_bytes) == [pair_bytes + 4 * 4] * 4
    assert sorted(frame[frame.direction == "down"].payload_bytes) == [pair_bytes] * 2 + [pair_bytes + 4 * 4] * 2
    for server_round in (1, 2):
        keys = {"compute_seconds", "encode_seconds", "decode_seconds", "server_seconds"}
        assert keys <= set(result.timing[server_round]) and result.timing[server_round]["compute_seconds"] > 0
    assert result.eval_loss[2] != result.eval_loss[0]  # the replayed steps moved the server's model
