"""The corpus: pinned packages' docstrings, checked by sha256, split by document."""

import pytest

from fedbandwidth.checks import ConfigError
from fedbandwidth.compress import corpus


def test_corpus_is_the_pinned_bytes_split_by_document():
    docs = corpus.documents()
    assert corpus.digest(docs) == (corpus.CORPUS_BYTES, corpus.CORPUS_SHA256) and corpus.CORPUS_BYTES >= 5_000_000
    assert list(docs) == sorted(docs)
    splits = {s: set(corpus.split_documents(s)) for s in corpus.SPLITS}
    assert sum(map(len, splits.values())) == len(docs) == 1957
    assert not (splits["train"] & splits["validation"] or splits["train"] & splits["test"])
    assert not splits["validation"] & splits["test"]
    assert [len(splits[s]) for s in corpus.SPLITS] == [1576, 192, 189]


def test_other_bytes_fail_loudly_in_one_line():
    docs = dict(corpus.documents())
    docs["numpy/__init__.py"] += " "
    with pytest.raises(ConfigError, match="^corpus: 8,308,450 bytes sha256 [0-9a-f]{16} are not the pinned") as err:
        corpus.check_digest(docs)
    assert "\n" not in str(err.value)


def test_docstrings_of_a_source_in_ast_order():
    source = b'"""Module."""\nclass A:\n    """Class\n\n       body."""\n    def f(self):\n        """F."""\nx = 1\n'
    assert corpus.file_docstrings(source) == "Module.\n\nClass\n\nbody.\n\nF."
    assert corpus.file_docstrings(b"def (") == ""
    assert corpus.group_of("pandas/core/frame.py") == "pandas/core" and corpus.group_of("flwr/x.py") == "flwr"
