"""The package as a Flower App: its pyproject wiring, its run config, and `flwr run .` offline."""

from __future__ import annotations

import tomllib

import pytest
from flwr.clientapp import ClientApp
from flwr.common.config import validate_config
from flwr.serverapp import ServerApp
from flwr.supercore.object_ref import load_app

from fedbandwidth.checks import ConfigError
from fedbandwidth.server_app import AppSettings, read_settings
from fedbandwidth.wire.commands import APP_PYPROJECT, PROJECT, stage_app

PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())


def test_pyproject_declares_a_valid_flower_app():
    ok, errors, _ = validate_config(PYPROJECT, check_module=True, project_dir=PROJECT)
    assert ok, errors
    components = PYPROJECT["tool"]["flwr"]["app"]["components"]
    assert isinstance(load_app(components["serverapp"], ValueError, PROJECT), ServerApp)
    assert isinstance(load_app(components["clientapp"], ValueError, PROJECT), ClientApp)


def test_shipped_app_pyproject_matches_the_repository(tmp_path):
    shipped = tomllib.loads(APP_PYPROJECT.read_text())
    assert shipped["tool"]["flwr"] == PYPROJECT["tool"]["flwr"]  # the same app, wherever it is staged from
    assert {k: shipped["project"][k] for k in ("name", "version")} == {
        k: PYPROJECT["project"][k] for k in ("name", "version")
    }
    staged = stage_app(tmp_path / "app")
    ok, errors, _ = validate_config(
        tomllib.loads((staged / "pyproject.toml").read_text()), check_module=True, project_dir=staged
    )
    assert ok, errors
    package = staged / "fedbandwidth"
    assert (package / "server_app.py").is_file() and (package / "configs" / "pythia-14m.json").is_file()
    assert not list(staged.rglob("__pycache__")) and not (package / "wire").exists()  # only what the app imports
    assert not (package / "configs" / "facts").exists()


def test_run_config_defaults_match_the_app_settings():
    settings = read_settings(PYPROJECT["tool"]["flwr"]["app"]["config"])
    assert settings == AppSettings()  # one set of defaults, in two places, kept equal


@pytest.mark.parametrize(
    "key,value,needle",
    [
        ("num-server-rounds", 0, "num-server-rounds must be >= 1"),
        ("fraction-train", 1.5, "fraction-train must lie in (0, 1]"),
        ("model", "gpt-5", "model must be one of"),
    ],
)
def test_bad_run_config_is_named(key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_settings({key: value})


# `flwr run .` itself (offline simulation, FLWR_HOME in the run's folder, its SuperLink stopped) runs
# in tests/test_notebook_wire.py, through the notebook's first run: one Ray start instead of two.
