"""Codecs in the Message API: the client mod, the strategy, and a real compressed simulation."""

import time

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, Metadata, MetricRecord, RecordDict

from conftest import MESSAGE_BYTES, TENSOR_BYTES
from fedbandwidth.client_app import make_message_app
from fedbandwidth.compress.chain import parse_codec
from fedbandwidth.compress.encoding import decode, encode, payload_bytes
from fedbandwidth.compress.messages import RESIDUAL_KEY, compressed_server_app, make_codec_mod, to_numpy, to_record
from fedbandwidth.ledger import Ledger


def small_model(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": rng.standard_normal((64, 8)).astype(np.float32),
        "layer.weight": rng.standard_normal((8, 8)).astype(np.float32),
    }


def train_message(arrays, up, down):
    config = ConfigRecord({"codec-up": up, "codec-down": down, "server-round": 1})
    metadata = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=60.0,
        message_type=MessageType.TRAIN,
    )
    return Message(RecordDict({"arrays": to_record(arrays), "config": config}), metadata=metadata)


def add_one(msg, context):
    """A ClientApp body that 'trains' by adding 1 to every weight it received."""
    local = {k: v + 1 for k, v in to_numpy(msg.content["arrays"]).items()}
    content = RecordDict({"arrays": to_record(local), "metrics": MetricRecord({"num-examples": 1})})
    return Message(content, reply_to=msg)


def test_mod_decodes_down_and_encodes_up_keeping_the_residual():
    glob = small_model()
    shapes = {k: v.shape for k, v in glob.items()}
    up, down = "delta+topk:0.1+int8", "fp16"
    sent_down = encode(parse_codec(down), glob).arrays
    msg = train_message(sent_down, up, down)
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    seen = {}

    def call_next(m, ctx):
        seen.update(to_numpy(m.content["arrays"]))
        return add_one(m, ctx)

    reply = make_codec_mod(shapes)(msg, context, call_next)
    received = decode(parse_codec(down), sent_down, shapes)
    assert all(np.array_equal(seen[k], received[k]) for k in glob)  # the app saw the decoded fp16 model
    parts = to_numpy(reply.content["arrays"])
    # 52 of 512 and 7 of 64 entries: bitmaps (64 and 8 B) beat uint16 indices (104 and 14 B)
    assert set(parts) == {f"{k}#{p}" for k in glob for p in ("bit", "val#q8", "val#qp")}
    residual = to_numpy(context.state.array_records[RESIDUAL_KEY])
    assert {"decode-seconds", "encode-seconds"} <= set(reply.content["metrics"])  # the mod times its work
    sent = decode(parse_codec(up), parts, shapes, {k: np.zeros_like(v) for k, v in glob.items()})
    for k in glob:  # update = local - received = 1 everywhere; sent + residual gives it back
        np.testing.assert_allclose(sent[k] + residual[k], np.ones_like(glob[k]), atol=1e-6)


@pytest.mark.parametrize("up,down", [("delta+layers:-*embed_in*,-lm_head*+topk:0.01+int8", "fp16")])
def test_ledger_of_a_compressed_run_is_the_sum_of_its_encoded_messages(arrays, up, down):
    from fedbandwidth.compress.task import model_shapes
    from fedbandwidth.simulation import run

    ledger = Ledger()
    up_codec, down_codec = parse_codec(up), parse_codec(down)
    server = compressed_server_app(arrays, ledger, up_codec, down_codec, rounds=2, supernodes=2)
    run(server, make_message_app(mods=[make_codec_mod(model_shapes())]), supernodes=2)
    down_bytes = payload_bytes(encode(down_codec, arrays).arrays)
    received = decode(down_codec, encode(down_codec, arrays).arrays, model_shapes())
    up_bytes = payload_bytes(encode(up_codec, received, received).arrays)  # echo client: zero update
    frame = ledger.to_frame()
    assert len(frame) == 8  # 2 rounds x 2 nodes x (down + up)
    assert set(frame[frame.direction == "down"].payload_bytes) == {down_bytes}
    assert set(frame[frame.direction == "up"].payload_bytes) == {up_bytes}
    assert ledger.total_bytes() == 4 * (down_bytes + up_bytes)
    # fp16: half the tensor bytes, the same 76 headers and keys, plus "#f16" on each key
    assert down_bytes == TENSOR_BYTES // 2 + (MESSAGE_BYTES - TENSOR_BYTES) + 76 * 4 == 28_148_640
    assert MESSAGE_BYTES / up_bytes > 100  # embeddings frozen, 1% of the rest, int8 values


def test_energy_captured_by_rank():
    from fedbandwidth.compress.update import energy_captured

    rank_one = np.outer(np.arange(1.0, 6.0), np.ones(4))
    assert energy_captured(rank_one) == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert energy_captured(np.eye(4)) == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_a_real_output_layer_update_is_nearly_rank_one():
    """From a random init, the first steps push lm_head's rows alike (87.7% of the energy in rank 1 on 4,096 rows,
    2 steps of 4 x 128 tokens, seed 0; 92% with 32-token sequences)."""
    from fedbandwidth.compress.study_plots import plot_spectrum
    from fedbandwidth.compress.update import client_update, energy_captured

    update = client_update(local_steps=2)
    assert len(update) == 76 and update["lm_head.weight"].shape == (4096, 128)
    assert energy_captured(update["lm_head.weight"])[0] > 0.85
    assert energy_captured(update["gpt_neox.layers.0.mlp.dense_h_to_4h.weight"])[0] < 0.5  # 0.17 here
    ax = plot_spectrum({"lm_head": update["lm_head.weight"]})
    assert len(ax.lines) == 1 and ax.get_xscale() == "log"


def delivered(strategy, global_arrays, nodes, server_round):
    """The strategy's encoded train messages for `nodes`, as the clients' mod receives them."""
    from flwr.app import Message as FlowerMessage

    asked = [FlowerMessage(RecordDict(), dst_node_id=n, message_type=MessageType.TRAIN) for n in nodes]
    sent = strategy.encode_train(asked, to_record(global_arrays), ConfigRecord({"server-round": server_round}))
    out = {}
    for m in sent:
        msg = train_message(to_numpy(m.content["arrays"]), "", "")
        msg.metadata.dst_node_id = m.metadata.dst_node_id
        msg.content["config"] = m.content["config"]
        out[m.metadata.dst_node_id] = msg
    return out


def test_delta_downlink_clients_train_from_exactly_what_the_server_decoded(monkeypatch):
    """delta+int8 down: full int8 model first, then the delta from what each node holds (a missed round too)."""
    from flwr.supercore.task_identity import TaskIdentity

    from fedbandwidth.compress.chain import Codec

    for attribute in ("_run_id", "_node_id", "_task_id"):  # a ServerApp's messages need its run, node and task
        monkeypatch.setattr(TaskIdentity, attribute, 1)
    from fedbandwidth.compress.messages import CompressedFedAvg

    strategy = CompressedFedAvg(Ledger(), Codec(), parse_codec("delta+int8"))
    shapes = {k: v.shape for k, v in small_model().items()}
    mod, contexts = make_codec_mod(shapes), {n: Context(1, n, {}, RecordDict(), {}) for n in (1, 2)}
    rounds = {1: (1, 2), 2: (1,), 3: (1, 2)}  # node 2 misses round 2
    for server_round, nodes in rounds.items():
        glob = small_model(server_round)
        for node, msg in delivered(strategy, glob, nodes, server_round).items():
            seen = {}
            parts = to_numpy(msg.content["arrays"])
            reply = mod(
                msg,
                contexts[node],
                lambda m, ctx, seen=seen: seen.update(to_numpy(m.content["arrays"])) or add_one(m, ctx),
            )
            assert all(np.array_equal(seen[k], strategy.sent[node][k]) for k in shapes)  # trained from what was sent
            is_delta = server_round > 1
            assert msg.content["config"]["codec-down"] == ("delta+int8" if is_delta else "int8")
            base = strategy.held[node] if is_delta else {k: np.zeros_like(v) for k, v in glob.items()}
            assert payload_bytes(parts) == payload_bytes(
                encode(parse_codec("int8"), {k: glob[k] - base[k] for k in glob}).arrays
            )
            strategy.decode_replies([reply])
            assert all(np.array_equal(strategy.held[node][k], seen[k]) for k in shapes)
            # int8 of the delta from the held model: within half a step of the global model
            for k in shapes:
                step = np.ptp(glob[k] - base[k]) / 255
                assert np.abs(seen[k] - glob[k]).max() <= step / 2 + 1e-5
