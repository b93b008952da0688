"""The package's shape: every core module under the layering contract, small modules, the CLI imported by no one."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from fedbandwidth.wire.commands import PACKAGE, PROJECT

MAX_LINES = 350  # a module is read top to bottom; past this it holds more than one idea


def core_modules() -> set[str]:
    """Dotted names of the modules at the top of fedbandwidth/ (the lesson's core)."""
    return {f"fedbandwidth.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_every_core_module_is_under_the_core_contract():
    contracts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (core,) = [c for c in contracts if c["type"] == "forbidden"]
    assert set(core["source_modules"]) == core_modules()


def test_no_module_is_too_long():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_only_the_command_line_imports_the_command_line():
    cli = PACKAGE / "cli"
    outside = [p for p in [*PACKAGE.rglob("*.py"), PROJECT / "utils5.py"] if cli not in p.parents]
    importers = [
        str(p.relative_to(PROJECT))
        for p in outside
        if any(n == "fedbandwidth.cli" or n.startswith("fedbandwidth.cli.") for n in imported_modules(p))
    ]
    assert importers == []
