"""benchmarks/wire_repeatability.py: each message against its condition's mean, and the pooled shares."""

from __future__ import annotations

import pytest

from conftest import benchmark_script


def message(sweep, direction, measured, predicted, node=0, nodes=2):
    """One timing entry of the results file's shape."""
    return {"sweep": sweep, "profile": "Wi-Fi", "tls": False, "nodes": nodes, "direction": direction,
            "model": "pythia-14m", "round": 2, "node": node, "measured_seconds": measured,
            "predicted_seconds": predicted}  # fmt: skip


def test_deviation_is_from_the_conditions_mean_ratio_and_a_lone_message_has_none():
    script = benchmark_script("wire_repeatability")
    entries = [message("K", "down", 6.0, 5.0), message("K", "down", 4.0, 5.0, node=1),
               message("K", "up", 3.0, 4.0), message("M", "down", 9.0, 3.0)]  # fmt: skip
    got = [(e["sweep"], e["direction"], round(d, 12)) for e, d in script.deviations(entries)]
    assert got == [("K", "down", 0.2), ("K", "down", -0.2)]  # ratios 1.2 and 0.8 around their mean 1.0


def test_pooled_shares_are_the_median_of_every_calibrations_and_the_rest_is_kept():
    script = benchmark_script("wire_repeatability")
    kept = {
        s: {"request_seconds": r, "superlink_down_seconds": d, "superlink_up_seconds": u}
        for s, r, d, u in (("F", 0.02, 0.010, 0.030), ("G", 0.03, 0.040, 0.020), ("K", 0.04, 0.013, 0.026))
    }
    pooled = script.pooled_shares(kept)
    assert {s: c["request_seconds"] for s, c in pooled.items()} == {"F": 0.02, "G": 0.03, "K": 0.04}
    assert [c["superlink_down_seconds"] for c in pooled.values()] == pytest.approx([0.013] * 3)
    assert [c["superlink_up_seconds"] for c in pooled.values()] == pytest.approx([0.026] * 3)
