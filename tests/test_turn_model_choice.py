"""benchmarks/turn_model_choice.py: how a candidate overlap's errors are summed up."""

from __future__ import annotations

import pytest

from conftest import benchmark_script


def test_summary_of_errors_by_hand():
    errors = [0.05, -0.2, 0.1, -0.01, 0.3, 0.0, 0.02, -0.04, 0.06, 0.08]
    got = benchmark_script("turn_model_choice").summary(errors)
    assert got == {"messages": 10, "mean_abs_error": pytest.approx(0.086), "p90_abs_error": 0.3, "within_10_percent": 8}
