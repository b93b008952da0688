"""Dead vocabulary: pythia-14m's rows that the Python help topics never use, and what they do to a ratio."""

import pytest

from fedbandwidth.compress.vocabulary import byte_tokens_used, dead_rows, ratio_against_live
from fedbandwidth.model import TensorSpec, tensor_specs


def test_distinct_bytes_are_the_rows_a_byte_level_corpus_uses():
    assert byte_tokens_used(b"abracadabra") == 5
    assert byte_tokens_used("é".encode()) == 2  # UTF-8: two byte values


def test_dead_rows_count_every_vocabulary_sized_matrix():
    specs = [
        TensorSpec("gpt_neox.embed_in.weight", (10, 4)),
        TensorSpec("w", (4, 4)),
        TensorSpec("lm_head.weight", (10, 4)),
    ]
    dead = dead_rows(specs, used_rows=3)
    assert dead.dead_bytes == 2 * 7 * 4 * 4  # 7 unused rows of 4 float32 in each of the two vocabulary matrices
    assert dead.message_bytes > 4 * (40 + 16 + 40) and dead.dead_share == dead.dead_bytes / dead.message_bytes


def test_pythia_14m_on_the_help_topics_is_91_percent_dead_rows():
    from pydoc_data.topics import topics

    corpus = "".join(topics[k] for k in sorted(topics)).encode()
    dead = dead_rows(tensor_specs("pythia-14m"), byte_tokens_used(corpus))
    assert (len(corpus), dead.used_rows, dead.vocab_size) == (466_117, 107, 50_304)
    assert (dead.dead_bytes, dead.message_bytes) == (51_401_728, 56_283_760)  # 2 x 50,197 rows x 128 x 4 bytes
    assert dead.dead_share == pytest.approx(0.9133, abs=1e-4)
    assert ratio_against_live(527.31, dead) == pytest.approx(45.74, abs=0.01)  # the retired 527x, without them
