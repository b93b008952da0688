"""Deep Gradient Compression's lever: warm-up, clipping, momentum correction and masking, exact payloads."""

import numpy as np
import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.compress.chain import check_downlink, parse_codec
from fedbandwidth.compress.dgc import clipped, warm_density
from fedbandwidth.compress.encoding import decode, encode, payload_bytes


def test_density_warms_up_by_quarters_to_its_target():
    assert [warm_density(0.001, r) for r in range(1, 7)] == [0.25, 0.0625, 0.015625, 0.00390625, 0.001, 0.001]


def test_clipping_scales_the_whole_update_to_the_norm():
    out = clipped({"a": np.array([3.0], np.float32), "b": np.array([4.0], np.float32)}, 1.0)
    assert np.allclose(out["a"], 0.6) and np.allclose(out["b"], 0.8)
    same = {"a": np.array([3.0], np.float32)}
    assert clipped(same, 0.0) is same and clipped(same, 5.0) is same


def test_two_rounds_send_the_momentum_corrected_accumulation_and_mask_the_velocity():
    rng = np.random.default_rng(0)
    g1, g2 = (rng.standard_normal(1000).astype(np.float32) for _ in range(2))
    codec, zero = parse_codec("delta+dgc:0.01:0.5"), {"w": np.zeros(1000, np.float32)}
    first = encode(codec, {"w": g1}, zero, None, server_round=1)
    # 250 of 1,000 entries: a 125-byte bitmap beats 500 bytes of uint16 indices; keys 'w#bit', 'w#val'
    assert payload_bytes(first.arrays) == (128 + 125 + 5) + (128 + 4 * 250 + 5)
    sent1 = decode(codec, first.arrays, {"w": (1000,)}, zero)["w"]
    top = np.sort(np.argsort(-np.abs(g1))[:250])
    assert np.flatnonzero(sent1).tolist() == top.tolist() and np.array_equal(sent1[top], g1[top])
    assert np.array_equal(first.residual["w"], g1 - sent1)  # v keeps what was not sent
    assert np.all(first.residual["w#u"][top] == 0) and np.array_equal(
        np.delete(first.residual["w#u"], top), np.delete(g1, top)
    )
    second = encode(codec, {"w": g2}, zero, first.residual, server_round=2)
    velocity = np.float32(0.5) * first.residual["w#u"] + g2
    accumulated = first.residual["w"] + velocity
    sent2 = decode(codec, second.arrays, {"w": (1000,)}, zero)["w"]
    assert np.count_nonzero(sent2) == 63  # ceil(6.25% of 1,000)
    assert np.array_equal(second.residual["w"] + sent2, accumulated)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("dgc:0.01", "dgc needs 'delta' before it"),
        ("delta+dgc:0", "dgc density must lie in (0, 1], got 0"),
        ("delta+dgc:0.01:1", "dgc momentum must lie in [0, 1), got 1"),
        ("delta+dgc:0.01:0.9:-1", "dgc clip must lie in [0, inf], got -1"),
        ("delta+dgc", "dgc needs a density"),
    ],
)
def test_malformed_dgc_raises_config_error(text, needle):
    with pytest.raises(ConfigError) as err:
        parse_codec(text, "up-codec")
    assert needle in str(err.value)


def test_dgc_prints_as_it_parses_and_stays_on_the_uplink():
    assert str(parse_codec("delta+dgc:0.001")) == "delta+dgc:0.001:0.9"
    assert str(parse_codec("delta+dgc:0.001:0.5:2+int8")) == "delta+dgc:0.001:0.5:2+int8"
    with pytest.raises(ConfigError, match="dgc applies to the uplink only"):
        check_downlink(parse_codec("delta+dgc:0.01"))


def test_the_client_mod_warms_dgc_up_by_the_message_round():
    """The mod reads server-round from the config: round 2 sends 6.25% of the update, not round 1's 25%."""
    from flwr.app import ConfigRecord, Context, RecordDict
    from test_compression import add_one, train_message

    from fedbandwidth.compress.messages import make_codec_mod, to_numpy

    weights = {"w": np.zeros(1000, np.float32)}
    msg = train_message(weights, "delta+dgc:0.001", "")
    msg.content["config"] = ConfigRecord({"codec-up": "delta+dgc:0.001", "codec-down": "", "server-round": 2})
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    reply = make_codec_mod({"w": (1000,)})(msg, context, add_one)
    assert to_numpy(reply.content["arrays"])["w#val"].size == 63  # ceil(0.0625 x 1,000)
