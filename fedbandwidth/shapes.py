"""What a forecast needs of an architecture, without importing torch when its config was seen before.

Building a model on the meta device means importing torch, transformers and peft (seconds). What a forecast
reads of it (state-dict names and shapes, which are floating point, unique parameters, tied keys, every module
and the nn.Linear ones' sizes, peft's default targets) depends only on the config's content and the libraries'
versions, so it is kept as JSON under a key made of both: shipped for the shipped configs (configs/facts/),
cached for any other (under $FEDBANDWIDTH_CACHE, else $XDG_CACHE_HOME/fedbandwidth or ~/.cache/fedbandwidth).
LoRA and DoRA adapters on nn.Linear modules follow from those sizes as peft makes them (tests check every shipped
config against peft); any other target (an Embedding, a Conv1D) is built by peft once and cached with its options.
An entry that does not parse, or carries another key, is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .adapters import LoraSpec, matches, unmatched_targets
from .catalog import resolve
from .model import CONFIG_DIR

SCHEMA = 1  # bump when the facts' layout changes: every older entry is then rebuilt
LIBRARIES = ("torch", "transformers", "peft")  # their versions are part of every key
CACHE_ENV = "FEDBANDWIDTH_CACHE"  # directory of the cache of facts (default: the user's cache)
FACTS_DIR = CONFIG_DIR / "facts"  # facts of the shipped configs, one <name>.json each
MODEL_FIELDS = {"architecture", "state", "parameters", "tied_keys", "modules", "default_targets"}
ADAPTER_FIELDS = {"state", "peft_trainable_parameters", "unmatched_targets"}
PEFT_PREFIX = "base_model.model."  # get_peft_model_state_dict's prefix of an adapter's module name
_MEMO: dict[str, dict] = {}  # facts read or built in this process, by key


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions of torch, transformers and peft (read from package metadata: nothing imported)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions


def entry_key(config: dict, options: dict | None = None) -> str:
    """The key of a config's facts: a hash of its content, the libraries' versions and `options`."""
    content = {"schema": SCHEMA, "config": config, "libraries": library_versions(), "options": options or {}}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def cache_dir() -> Path:
    """Where facts of configs seen before are kept."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedbandwidth"


def read_entry(path: Path, key: str, fields: set[str]) -> dict | None:
    """The facts in `path` if it parses, carries `key` and every field; None otherwise (to be rebuilt)."""
    try:
        entry = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    facts = entry.get("facts") if isinstance(entry, dict) and entry.get("key") == key else None
    return facts if isinstance(facts, dict) and fields <= facts.keys() else None


def write_entry(path: Path, key: str, facts: dict) -> None:
    """Write facts under `key`, atomically (a reader sees the old entry or the new one); skipped if unwritable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"key": key, "libraries": library_versions(), "facts": facts}))
        os.replace(partial, path)
    except OSError:
        pass


def build_model_facts(name: str) -> dict:
    """The facts of `name`'s config from the meta device (imports torch, transformers and peft)."""
    from .architecture import build_meta, default_lora_targets, facts_of

    source = resolve(name)
    return {**facts_of(build_meta(source)), "default_targets": list(default_lora_targets(source.model_type))}


def model_facts(name: str) -> dict:
    """The facts of the model `name` means: shipped, cached, or built on the meta device (then cached)."""
    source = resolve(name)
    key = entry_key(source.config)
    if key in _MEMO:
        return _MEMO[key]
    cached = cache_dir() / f"model-{key}.json"
    places = [FACTS_DIR / f"{source.path.stem}.json"] if source.origin == "shipped" else []
    facts = next((f for p in [*places, cached] if (f := read_entry(p, key, MODEL_FIELDS))), None)
    if facts is None:
        facts = build_model_facts(name)
        write_entry(cached, key, facts)
    _MEMO[key] = facts
    return facts


def derived_adapters(facts: dict, lora: LoraSpec) -> dict | None:
    """Adapter facts as peft makes them on nn.Linear modules (A r x in, B out x r, DoRA's out); None if not all are."""
    modules = facts["modules"]
    unmatched = unmatched_targets(list(modules), lora)
    chosen = [name for name in modules if any(matches(name, t) for t in lora.targets)]
    if any(modules[name] is None for name in chosen):
        return None
    rows, count = [], 0
    for name in chosen:
        (features_in, features_out), prefix = modules[name], PEFT_PREFIX + name
        rows += [[f"{prefix}.lora_A.weight", [lora.rank, features_in], True, "float32"]]
        rows += [[f"{prefix}.lora_B.weight", [features_out, lora.rank], True, "float32"]]
        rows += [[f"{prefix}.lora_magnitude_vector", [features_out], True, "float32"]] if lora.dora else []
        count += lora.rank * (features_in + features_out) + (features_out if lora.dora else 0)
    return {"state": rows, "peft_trainable_parameters": count, "unmatched_targets": unmatched}


def adapter_options(lora: LoraSpec) -> dict:
    """What of a LoRA spec decides its tensors (alpha scales values, not shapes)."""
    return {"rank": lora.rank, "targets": list(lora.targets), "dora": lora.dora}


def adapter_facts(name: str, lora: LoraSpec) -> dict:
    """The adapters `lora` puts on `name`: derived from its modules, else cached, else built by peft (then cached)."""
    facts = model_facts(name)
    if (derived := derived_adapters(facts, lora)) is not None:
        return derived
    key = entry_key(resolve(name).config, adapter_options(lora))
    cached = cache_dir() / f"adapters-{key}.json"
    if key not in _MEMO and (found := read_entry(cached, key, ADAPTER_FIELDS)):
        _MEMO[key] = found
    if key not in _MEMO:
        from .architecture import adapter_facts_of, build_meta

        _MEMO[key] = adapter_facts_of(build_meta(resolve(name)), lora)
        write_entry(cached, key, _MEMO[key])
    return _MEMO[key]


def default_targets(name: str) -> tuple[str, ...]:
    """peft's default LoRA targets for `name`'s architecture (e.g. llama: q_proj, v_proj); () if it has none."""
    return tuple(model_facts(name)["default_targets"])


def ship_facts() -> list[Path]:
    """(Re)write configs/facts/<name>.json for every shipped config, from the meta device (after a library bump)."""
    from .catalog import shipped_models

    written = []
    for name in shipped_models():
        path = FACTS_DIR / f"{name}.json"
        write_entry(path, entry_key(resolve(name).config), build_model_facts(name))
        written.append(path)
    return written
