"""Differential privacy's bill, metered at the Grid: what each of Flower's DP variants adds over plain FedAvg."""

import numpy as np

from fedbandwidth.privacy.dp import VARIANTS, DpConfig, dp_bill

ARRAYS = {"a": np.linspace(-1, 1, 10, dtype=np.float32), "b": np.ones((3, 4), dtype=np.float32)}
CLIPPING_NORM = len("clipping_norm") + 8  # one float under its key, as Flower counts it
NORM_BIT = len("norm_bit") + 1  # one bool


def test_dp_adds_only_the_clipping_norm_and_the_norm_bit():
    rows = {r["variant"]: r for r in dp_bill(DpConfig(3, 2), ARRAYS)}
    assert list(rows) == list(VARIANTS)
    messages = 3 * 2  # nodes x rounds, each way
    added = {v: r["added_bytes"] for v, r in rows.items()}
    assert added == {
        "fedavg": 0,
        "central-server-fixed": 0,
        "central-server-adaptive": 0,
        "central-client-fixed": messages * CLIPPING_NORM,
        "central-client-adaptive": messages * (CLIPPING_NORM + NORM_BIT),
        "local": 0,
    }
    plain = rows["fedavg"]
    assert all(r["down_array_bytes"] == plain["down_array_bytes"] == 2 * 3 * 346 for r in rows.values())
    assert all(r["up_array_bytes"] == plain["up_array_bytes"] for r in rows.values())  # noise keeps float32
    adaptive = rows["central-client-adaptive"]
    assert (
        adaptive["up_config_bytes"] - plain["up_config_bytes"] == messages * NORM_BIT
    )  # legacy metrics: a ConfigRecord
