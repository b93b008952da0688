"""The task's text: the docstrings of pinned packages in the venv, the same bytes on every machine.

`make install` pins exact versions (requirements.txt), so the docstrings of numpy, pandas, matplotlib,
huggingface_hub, datasets and flwr are byte for byte the same wherever the venv was set up. A document is
one source file's docstrings (module, classes, functions, in ast order, cleaned by ``ast.get_docstring``);
files are read in sorted RECORD order. The stdlib is left out on purpose: its docs change with Python's
version. The corpus is cached under build/corpus/ and its sha256 is checked: other bytes fail loudly.
Documents are split train / validation / test by a hash of their path (deterministic, by document).
"""

from __future__ import annotations

import ast
import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

from ..checks import ConfigError

PACKAGES = ("numpy", "pandas", "matplotlib", "huggingface_hub", "datasets", "flwr")  # pinned in requirements.txt
CORPUS_BYTES = 8_308_449  # UTF-8 bytes of the documents' text: the bytes every machine must have
# sha256 of the joined documents (path, NUL, text, NUL; in path order)
CORPUS_SHA256 = "6c9e9d6007fab6bd3c8dd61549be507d81bb0bd1ca7372d680c3a34e1caf4a31"
CACHE = Path("build") / "corpus" / "docstrings.json"  # relative to the working directory
SPLITS = ("train", "validation", "test")
SPLIT_SHARES = (0.8, 0.1, 0.1)  # of documents, by a hash of the path
BUILD_LOCK = threading.Lock()


def file_docstrings(source: bytes) -> str:
    """The docstrings of one Python source (module, classes, functions, in ast.walk order), blank-line joined."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    parts = [ast.get_docstring(node) for node in ast.walk(tree) if isinstance(node, kinds)]
    return "\n\n".join(p for p in parts if p)


def read_documents(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """path ("pkg/sub/module.py") -> its docstrings, for every .py file a package's RECORD lists, sorted."""
    import importlib.metadata as metadata

    docs = {}
    for name in packages:
        dist = metadata.distribution(name)
        for file in sorted(str(f) for f in dist.files or [] if str(f).endswith(".py")):
            text = file_docstrings(Path(dist.locate_file(file)).read_bytes())
            if text:
                docs[file] = text
    return dict(sorted(docs.items()))


def digest(docs: dict[str, str]) -> tuple[int, str]:
    """(bytes of the documents' text, sha256 over path and text of each document in order)."""
    sha, size = hashlib.sha256(), 0
    for path, text in docs.items():
        data = text.encode("utf-8")
        sha.update(path.encode("utf-8") + b"\0" + data + b"\0")
        size += len(data)
    return size, sha.hexdigest()


def check_digest(docs: dict[str, str]) -> None:
    """Raise ConfigError (one line) if the documents are not the pinned corpus's bytes."""
    size, sha = digest(docs)
    if (size, sha) != (CORPUS_BYTES, CORPUS_SHA256):
        raise ConfigError(
            f"corpus: {size:,} bytes sha256 {sha[:16]} are not the pinned {CORPUS_BYTES:,} bytes "
            f"{CORPUS_SHA256[:16]} (install the exact versions of requirements.txt: make install)"
        )


@lru_cache(maxsize=1)
def documents() -> dict[str, str]:
    """The checked corpus, read from build/corpus/ or from the packages (and cached there) when missing."""
    with BUILD_LOCK:
        if CACHE.exists():
            docs = json.loads(CACHE.read_text(encoding="utf-8"))
        else:
            docs = read_documents()
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            partial = CACHE.with_suffix(".partial")
            partial.write_text(json.dumps(docs), encoding="utf-8")
            partial.replace(CACHE)
    check_digest(docs)
    return docs


def split_of(path: str) -> str:
    """The split a document belongs to, from the sha256 of its path (train 80%, validation 10%, test 10%)."""
    u = int.from_bytes(hashlib.sha256(path.encode("utf-8")).digest()[:8], "big") / 2**64
    return SPLITS[0] if u < SPLIT_SHARES[0] else SPLITS[1] if u < SPLIT_SHARES[0] + SPLIT_SHARES[1] else SPLITS[2]


def group_of(path: str) -> str:
    """A document's group: its package and first sub-package ("pandas/core"), for non-IID partitions."""
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def split_documents(split: str) -> dict[str, str]:
    """The documents of one split (train, validation or test), in path order."""
    return {path: text for path, text in documents().items() if split_of(path) == split}
