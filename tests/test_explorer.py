"""The explorer: a control change recomputes the exact forecast; its run measures the same bytes."""

from __future__ import annotations

import pytest

from conftest import LEGACY_MESSAGE_BYTES
from fedbandwidth.explore import Explorer
from fedbandwidth.forecast import ForecastConfig, forecast


@pytest.fixture(scope="module")
def explorer():
    return Explorer(supernodes=2, rounds=1)


def test_it_starts_on_the_lesson(explorer):
    assert explorer.report["total_bytes"] == 4 * LEGACY_MESSAGE_BYTES
    assert f"{4 * LEGACY_MESSAGE_BYTES:,} B" in explorer.table.value and bytes(explorer.plot.value).startswith(
        b"\x89PNG"
    )


def test_a_control_change_recomputes_table_and_plot(explorer):
    plot, updates = explorer.plot.value, explorer.updates
    explorer.controls["supernodes"].value = 10
    assert explorer.updates == updates + 1 and explorer.plot.value != plot
    assert explorer.report["total_bytes"] == forecast(ForecastConfig("pythia-14m", 10, 1))["total_bytes"]
    explorer.controls["supernodes"].value = 2


def test_lora_on_a_7b_model_and_its_link_time(explorer):
    explorer.controls["model"].value = "qwen2.5-7b"
    explorer.controls["lora_rank"].value = 16
    expected = forecast(ForecastConfig("qwen2.5-7b", 2, 1, lora=explorer.choice().config().lora))
    assert explorer.report["adapter"]["parameters"] == expected["adapter"]["parameters"] == 5_046_272
    assert "time on 4G" in explorer.table.value
    ledger = explorer.run()  # only the adapters travel: small enough to simulate
    assert ledger.total_bytes() == explorer.report["total_bytes"] and "equal to the forecast" in explorer.status.value


def test_a_whole_7b_model_is_refused_not_run(explorer):
    explorer.controls["lora_rank"].value = 0
    assert explorer.run() is None and "too big to simulate here" in explorer.status.value
    explorer.controls["model"].value = "pythia-14m"
    ledger = explorer.run()
    assert ledger.total_bytes() == explorer.report["total_bytes"] == 4 * LEGACY_MESSAGE_BYTES
