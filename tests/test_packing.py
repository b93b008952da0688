"""The packing lever: the masked vector in the bytes its modulus needs; the aggregate the same to the bit."""

import numpy as np
import pytest

from fedbandwidth.privacy.packing import pack_values, packed_width, unpack_values
from fedbandwidth.privacy.secagg import SecAggConfig, run_secagg, seeded_rounding
from fedbandwidth.privacy.stages import measured_stages

ARRAYS = {"a": np.linspace(-1, 1, 1000, dtype=np.float32), "b": np.full((30, 40), 0.25, dtype=np.float32)}


@pytest.mark.parametrize("modulus,width", [(2**8, 1), (2**9, 2), (2**16, 2), (2**24, 3), (2**23, 3), (2**32, 4)])
def test_values_round_trip_in_the_bytes_the_modulus_needs(modulus, width):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, modulus, size=s, dtype=np.int64) for s in [(1,), (7,), (3, 5), ()]]
    assert packed_width(modulus) == width
    data = pack_values(arrays, width)
    assert len(data) == width * (1 + 7 + 15 + 1)
    back = unpack_values(data, width, [a.shape for a in arrays], "<i8")
    assert all(
        b.dtype == np.int64 and b.shape == a.shape and np.array_equal(a, b) for a, b in zip(arrays, back, strict=True)
    )


def upload(ledger) -> int:
    """Bytes of the masked vectors' uploads."""
    return sum(
        r["bytes"] for r in measured_stages(ledger) if r["stage"] == "collect_masked_vectors" and r["direction"] == "up"
    )


def test_packed_aggregate_equals_flowers_to_the_bit_and_the_upload_is_under_half():
    seeded = {"outer_mods": [seeded_rounding], "workers": 1}  # one node at a time: numpy's global seed is theirs
    plain_ledger, plain = run_secagg(SecAggConfig(3, 2), ARRAYS, **seeded)
    packed_ledger, packed = run_secagg(SecAggConfig(3, 2, pack=True), ARRAYS, **seeded)
    assert len(plain) == len(packed) == 2
    for plain_round, packed_round in zip(plain, packed, strict=True):
        assert all(
            p.dtype == q.dtype and p.tobytes() == q.tobytes() for p, q in zip(plain_round, packed_round, strict=True)
        )
    status = 26 + 20  # per reply, not the masked vector: a legacy FitRes's status and num_examples
    plain_masked, packed_masked = upload(plain_ledger) - 6 * status, upload(packed_ledger) - 6 * status
    assert packed_masked <= plain_masked / 2
    assert plain_masked == 6 * (13 + 3 * 128 + 8 * 2201) and packed_masked == 6 * (13 + 4 * 2201 + 20 + 15 + 36 + 43)


def test_a_reply_is_packed_and_restored_to_the_same_npy_bytes(monkeypatch):
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.common import ndarray_to_bytes
    from flwr.supercore.task_identity import TaskIdentity

    from fedbandwidth.privacy.packing import pack_reply, unpack_reply

    monkeypatch.setattr(TaskIdentity, "_run_id", 7)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 3)
    masked = [ndarray_to_bytes(np.array([4194], dtype=np.int64)), ndarray_to_bytes(np.arange(6).reshape(2, 3) * 2**29)]
    content = RecordDict({"secaggplus_configs": ConfigRecord({"masked_params": list(masked)})})
    reply = pack_reply(Message(content=content, dst_node_id=2, message_type="train"), width=4)
    configs = reply.content.config_records["secaggplus_configs"]
    assert len(configs["masked_params"][0]) == 4 * 7 and configs["packed_dims"] == [1, 2, 3]
    assert unpack_reply(reply).content.config_records["secaggplus_configs"]["masked_params"] == masked


def test_stage_plot_draws_a_bar_per_stage_and_direction():
    import matplotlib

    matplotlib.use("Agg")
    from fedbandwidth.privacy.plots import plot_stage_bytes

    rows = [{"round": 1, "stage": s, "direction": d, "bytes": 10} for s in ("setup", "unmask") for d in ("down", "up")]
    ax = plot_stage_bytes(rows)
    assert len(ax.patches) == 4 and ax.get_yscale() == "log"
