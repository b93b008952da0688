"""The memory estimate and the refusal of a run that would not fit, before anything starts."""

import pytest

from conftest import run_cli_probe
from fedbandwidth.checks import ConfigError
from fedbandwidth.memory import (
    INPROCESS_BASE_BYTES,
    INPROCESS_MESSAGES,
    RAY_BASE_BYTES,
    RAY_EXTRA_MESSAGES,
    check_fits,
    estimate_memory,
)
from fedbandwidth.units import GIB, MIB

MESSAGE_410M = 1_621_374_206  # legacy payload bytes of one pythia-410m message


def test_inprocess_estimate_does_not_grow_with_nodes():
    few, many = (estimate_memory(MESSAGE_410M, n, "legacy") for n in (2, 1000))
    assert few == many and few.messages == INPROCESS_MESSAGES["legacy"] == 5
    assert few.peak_bytes == 400 * MIB + 5 * MESSAGE_410M == INPROCESS_BASE_BYTES + 8_106_871_030
    assert estimate_memory(MESSAGE_410M, 2, "message").peak_bytes == INPROCESS_BASE_BYTES + 4 * MESSAGE_410M


def test_ray_estimate_holds_a_copy_per_sampled_node():
    estimate = estimate_memory(MESSAGE_410M, 10, "legacy", backend="ray")
    assert estimate.messages == 10 + RAY_EXTRA_MESSAGES == 13
    assert estimate.peak_bytes == 3 * GIB + 13 * MESSAGE_410M == RAY_BASE_BYTES + 21_077_864_678


def test_check_fits_passes_or_refuses_in_one_line():
    estimate = estimate_memory(MESSAGE_410M, 10, "legacy", backend="ray")
    check_fits(estimate, estimate.peak_bytes, "unused")  # exactly enough is enough
    with pytest.raises(ConfigError) as refused:
        check_fits(estimate, 8 * GIB, "try --api message")
    message = str(refused.value)
    assert "\n" not in message and message.endswith("try --api message")
    assert "needs about 22.6 GiB (13 model messages of 1,621,374,206 B + 3.0 GiB" in message
    assert "8.0 GiB is available" in message


def test_cli_refuses_a_run_that_cannot_fit_before_flower_starts(tmp_path):
    out = tmp_path / "out"
    stdout, stderr = run_cli_probe(
        "simulate", "--model", "pythia-410m", "--supernodes", "1000", "--backend", "ray", "--out", str(out)
    )
    assert stdout.split() == ["2", "False", "False"]  # exit 2; neither Ray nor Flower's simulation imported
    assert stderr.count("\n") == 1 and "this run needs about" in stderr and "(1003 model messages" in stderr
    assert "fewer nodes a round (--fraction), --backend inprocess, --api message" in stderr
    assert not out.exists()  # refused before anything was written


def test_deployment_estimate_grows_per_supernode_and_its_largest_fits_exactly():
    from fedbandwidth.memory import (
        DEPLOY_BASE_BYTES,
        DEPLOY_NODE_BYTES,
        estimate_deployment_memory,
        largest_deployment,
    )

    message = 56_283_760  # pythia-14m, Message API
    est = estimate_deployment_memory(message, 10)
    assert est.messages == 3 + 3 * 10 and est.base_bytes == DEPLOY_BASE_BYTES + 10 * DEPLOY_NODE_BYTES
    assert est.peak_bytes == 512 * 2**20 + 10 * 272 * 2**20 + 33 * message
    most = largest_deployment(message, 24 * 2**30)
    assert most == 55  # this machine's 24 GiB, all of it free: 55 SuperNodes of pythia-14m
    assert estimate_deployment_memory(message, most).peak_bytes <= 24 * 2**30
    assert estimate_deployment_memory(message, most + 1).peak_bytes > 24 * 2**30


def test_a_deployment_that_does_not_fit_is_refused_near_the_limit():
    import pytest

    from fedbandwidth.checks import ConfigError
    from fedbandwidth.cli.deploy import check_deployment_memory
    from fedbandwidth.memory import estimate_deployment_memory

    available = estimate_deployment_memory(1_854_056, 40).peak_bytes  # tiny-gptneox: 40 nodes just fit
    check_deployment_memory("tiny-gptneox", 40, available)
    with pytest.raises(ConfigError, match="at most 40 SuperNodes of tiny-gptneox fit here; try fewer --supernodes"):
        check_deployment_memory("tiny-gptneox", 41, available)


def test_deploy_refuses_a_fleet_too_large_in_one_line_before_anything_starts(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "deploy", "--supernodes", "1000", "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "SuperNodes of pythia-14m fit here" in done.stderr and not (tmp_path / "out" / "logs").exists()
