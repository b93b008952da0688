"""SecAgg+ under the Grid meter: every stage's bytes equal the formula's, also with a dropout; bad settings refused."""

import numpy as np
import pytest
from flwr.common.secure_aggregation.crypto.shamir import create_shares
from flwr.common.secure_aggregation.crypto.symmetric_encryption import encrypt, generate_shared_key
from flwr.supercore.primitives.asymmetric import generate_key_pairs, private_key_to_bytes, public_key_to_bytes

from fedbandwidth.checks import ConfigError
from fedbandwidth.model import TensorSpec
from fedbandwidth.privacy.formula import (
    CIPHERTEXT_BYTES,
    PRIVATE_KEY_BYTES,
    PUBLIC_KEY_BYTES,
    SecAggPlan,
    fernet_bytes,
    neighbours,
    share_bytes,
    stage_bytes,
)
from fedbandwidth.privacy.secagg import SecAggConfig, run_secagg, run_stages, secagg_plan

ARRAYS = {"a": np.linspace(-1, 1, 10, dtype=np.float32), "b": np.ones((3, 4), dtype=np.float32)}
SPECS = [TensorSpec(k, v.shape, str(v.dtype)) for k, v in ARRAYS.items()]


def test_key_and_share_lengths_are_fixed_and_as_the_formula_says():
    lengths = set()
    for _ in range(10):
        sk, pk = generate_key_pairs()
        lengths.add((len(public_key_to_bytes(pk)), len(private_key_to_bytes(sk))))
    assert lengths == {(PUBLIC_KEY_BYTES, PRIVATE_KEY_BYTES)} == {(215, 306)}
    secret = private_key_to_bytes(generate_key_pairs()[0])
    assert {len(s) for s in create_shares(secret, 2, 3)} == {share_bytes(306)} == {324}
    assert {len(s) for s in create_shares(b"\0" * 32, 3, 5)} == {share_bytes(32)} == {52}
    (sk1, _), (_, pk2) = generate_key_pairs(), generate_key_pairs()
    key = generate_shared_key(sk1, pk2)
    assert len(encrypt(key, b"x" * 396)) == fernet_bytes(396) == CIPHERTEXT_BYTES == 612


@pytest.mark.parametrize("nodes,shares,k", [(3, 3, 3), (5, 3, 3), (4, 4, 4), (7, 5, 5), (9, 7, 7)])
def test_neighbours_of_each_node(nodes, shares, k):
    assert neighbours(nodes, shares) == k


def test_formula_per_message_for_three_nodes():
    rows = stage_bytes(SecAggPlan(3, 3, tuple(SPECS), id_digits=3 * 19))
    per_message = {(r["stage"], r["direction"]): r["bytes"] // r["messages"] for r in rows}
    assert per_message == {
        ("setup", "down"): 139,  # the stage name and seven numbers (8 B each) under their keys
        ("setup", "up"): 436,  # two PEM public keys
        ("share_keys", "down"): 1362,  # 3 neighbours' two keys under their 19-digit ids
        ("share_keys", "up"): 1249,  # 2 encrypted shares (612 B) and their destinations
        ("collect_masked_vectors", "down"): 346 + 1276,  # the model (float32 .npy) + the 2 forwarded shares
        ("collect_masked_vectors", "up"): 26 + 20 + 13 + (136 + 208 + 224),  # status, num_examples, int64 .npy
        ("unmask", "down"): 55,  # 3 live ids, no dead one
        ("unmask", "up"): 190,  # 3 ids and 3 seed shares (52 B)
    }


@pytest.mark.parametrize(
    "cfg",
    [
        SecAggConfig(3, 2, shares=3, threshold=2),  # round 2: the aggregate goes down in float32, as the model
        SecAggConfig(3, 2, keep_dtype=False),  # Flower's own aggregate: float64, twice the model's bytes
        SecAggConfig(5, 1, shares=3, threshold=2),
        SecAggConfig(4, 1, shares=4, threshold=3),  # an even count equal to the nodes: everyone shares
        SecAggConfig(7, 1, shares=5, threshold=3),
        SecAggConfig(5, 1, shares=5, threshold=4, modulus_range=2**24, pack=True),  # 3 bytes a value
    ],
)
def test_measured_stages_equal_the_formula(cfg):
    ledger, aggregates = run_secagg(cfg, ARRAYS)
    rows = run_stages(cfg, ledger, SPECS)
    assert len(rows) == 8 * cfg.rounds and len(aggregates) == cfg.rounds
    assert [(r["round"], r["stage"], r["direction"]) for r in rows[:3]] == [
        (1, "setup", "down"),
        (1, "setup", "up"),
        (1, "share_keys", "down"),
    ]
    assert all(r["bytes"] == r["predicted_bytes"] for r in rows), rows
    assert all(r["messages"] == cfg.supernodes for r in rows)
    step = 2 * 8.0 / round(2**22 / 1000)  # one quantization level: a weight of 1 in max_weight 1000
    np.testing.assert_allclose(aggregates[-1][0], ARRAYS["a"], atol=step)


def test_a_node_that_dies_after_sharing_its_keys_is_measured_and_the_round_completes():
    cfg = SecAggConfig(5, 1, shares=3, threshold=2, drop_partitions=(1,))
    ledger, aggregates = run_secagg(cfg, ARRAYS)
    rows = {(r["stage"], r["direction"]): r for r in run_stages(cfg, ledger, SPECS)}
    assert len(aggregates) == 1  # the survivors' sum was unmasked
    assert rows["collect_masked_vectors", "up"]["messages"] == 5  # one of them an error reply: 0 B
    assert rows["unmask", "down"]["messages"] == 4
    assert rows["unmask", "up"]["bytes"] == rows["unmask", "up"]["predicted_bytes"] == 4 * 34 + 10 * 52 + 2 * 324
    assert all(r["bytes"] == r["predicted_bytes"] for r in rows.values())


def test_flowers_float64_aggregate_doubles_the_model_from_round_2():
    flower = stage_bytes(secagg_plan(SecAggConfig(3, 2, keep_dtype=False), SPECS, 2, id_digits=57))
    ours = stage_bytes(secagg_plan(SecAggConfig(3, 2), SPECS, 2, id_digits=57))
    assert flower[4]["bytes"] - ours[4]["bytes"] == 3 * 4 * 22  # 3 messages, 22 parameters, 4 B more each


def test_predicted_plan_takes_the_longest_ids():
    cfg = SecAggConfig(3, 1)
    exact = stage_bytes(secagg_plan(cfg, SPECS, 1, id_digits=57))
    bound = stage_bytes(secagg_plan(cfg, SPECS, 1))
    assert bound[2]["bytes"] - exact[2]["bytes"] == 3 * 3  # 3 nodes' ids x 3 messages, 1 digit each longer


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        ({"supernodes": 3, "shares": 5}, "--secagg-shares must be <= --supernodes"),
        ({"supernodes": 5, "shares": 3, "threshold": 3}, "--secagg-threshold must be < --secagg-shares"),
        ({"supernodes": 5, "shares": 3, "threshold": 4}, "--secagg-threshold must be < --secagg-shares"),
        ({"supernodes": 6, "shares": 4}, "--secagg-shares must be odd or equal --supernodes"),
        ({"supernodes": 3, "shares": 2}, "--secagg-shares must be >= 3"),
        ({"api": "message"}, "--api must be legacy with --secagg"),
        ({"modulus_range": 3 * 2**22}, "--secagg-modulus-range must be a power of 2"),
        ({"modulus_range": 2**22}, "--secagg-modulus-range must be > --secagg-quantization-range"),
        ({"clipping_range": 0.0}, "--secagg-clipping-range must be > 0"),
    ],
)
def test_bad_settings_are_refused(kwargs, parameter):
    with pytest.raises(ConfigError, match=parameter):
        SecAggConfig(**kwargs)
