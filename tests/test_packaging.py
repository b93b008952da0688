"""The installed package, not only the checkout: a built copy carries its data and deploys from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import MESSAGE_BYTES, processes_with_flwr_home
from fedbandwidth.wire.commands import PROJECT


def test_an_installed_copy_deploys_outside_the_checkout(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(PROJECT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / "fedbandwidth" / "flower_app.toml").is_file()
    assert (site / "fedbandwidth" / "configs" / "pythia-14m.json").is_file()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import fedbandwidth; print(fedbandwidth.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(site))  # the installed copy, not the checkout
    done = subprocess.run(
        [sys.executable, "-m", "fedbandwidth", "deploy", "--out", str(tmp_path / "out"), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["total_bytes"] == report["predicted_bytes"] == 4 * MESSAGE_BYTES
    assert report["run"]["status"] == "finished:completed"
    assert processes_with_flwr_home(tmp_path / "out" / "flwr_home") == []  # nothing left running
