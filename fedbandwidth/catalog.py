"""Which model a name means: a config shipped with the package, a hub id, or a path to a config.json.

Nothing here imports torch: resolving a name only reads JSON. Hub ids are read from the local
Hugging Face cache (no network); when the hub is reachable, from the hub itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .checks import ConfigError
from .model import CONFIG_DIR, HUB_ORG, hub_reachable

HUB_ID_KEY = "_name_or_path"  # the hub id a shipped config was copied from


@dataclass(frozen=True)
class ModelSource:
    """A model config and where it came from."""

    name: str  # what was asked for: a shipped name, a hub id or a path
    origin: str  # "shipped", "path", "hub cache" or "hub"
    path: Path  # the config.json that was read
    config: dict = field(repr=False, compare=False)  # its contents

    @property
    def model_type(self) -> str:
        """The transformers model type, e.g. "llama"."""
        return self.config["model_type"]


def shipped_models() -> list[str]:
    """Names of the configs shipped in fedbandwidth/configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def shipped_hub_ids() -> dict[str, str]:
    """Hub id (lower case) -> shipped name, for every shipped config."""
    ids = {}
    for name in shipped_models():
        config = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        ids[config.get(HUB_ID_KEY, f"{HUB_ORG}/{name}").lower()] = name
    return ids


def read_config(path: Path, parameter: str = "model") -> dict:
    """The JSON of a model config; ConfigError naming `parameter` if unreadable or not a config."""
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{parameter} {str(path)!r} is not a readable JSON file: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ConfigError(f'{parameter} {str(path)!r} is not a model config (no "model_type")')
    return config


def cached_config(repo_id: str) -> Path | None:
    """The repo's config.json in the local Hugging Face cache, if there (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found) if isinstance(found, str) else None


def downloaded_config(repo_id: str) -> Path | None:
    """The repo's config.json fetched from the hub, if it is reachable and has one."""
    if not hub_reachable():
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(hf_hub_download(repo_id, "config.json"))
    except (HfHubHTTPError, OSError, ValueError):
        return None


def find_config(name: str) -> tuple[str, Path] | None:
    """(origin, path) of the config `name` means, or None."""
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.exists():
        return "path", path
    if (CONFIG_DIR / f"{name}.json").is_file():
        return "shipped", CONFIG_DIR / f"{name}.json"
    if name.count("/") != 1:
        return None
    if cached := cached_config(name):
        return "hub cache", cached
    if shipped := shipped_hub_ids().get(name.lower()):
        return "shipped", CONFIG_DIR / f"{shipped}.json"
    downloaded = downloaded_config(name)
    return ("hub", downloaded) if downloaded else None


def resolve(name: str, parameter: str = "model") -> ModelSource:
    """The config `name` means; ConfigError naming `parameter` if there is none."""
    found = find_config(str(name))
    if found is None:
        raise ConfigError(
            f"{parameter} {name!r} is not a shipped model ({', '.join(shipped_models())}), a path to a "
            "config.json, nor a hub id in the local Hugging Face cache"
        )
    origin, path = found
    return ModelSource(str(name), origin, path, read_config(path, parameter))
