"""The report's per-round rows: what Ledger.per_round() counts, without pandas."""

from __future__ import annotations

from fedbandwidth.ledger import Ledger
from fedbandwidth.names import DOWN, EVALUATE, TRAIN, UP
from fedbandwidth.report import ROUND_KEYS, round_rows


def test_round_rows_equal_the_ledgers_per_round_table():
    ledger = Ledger()
    for node in (1, 2, 3):
        ledger.record(1, TRAIN, node, DOWN, 100 + node, 90)
        ledger.record(1, TRAIN, node, UP, 100 + node, 90)
    ledger.record(1, EVALUATE, 4, DOWN, 50, 40)  # evaluation: bytes down, not a training node
    ledger.record(2, TRAIN, 5, DOWN, 70, 60, delivered=False)  # never fetched: neither bytes nor a node
    ledger.record(2, TRAIN, 1, DOWN, 70, 60)
    ledger.record(2, TRAIN, 1, UP, 70, 60, late=True)
    ledger.record(3, TRAIN, 2, DOWN, 9, 1, delivered=False)  # a round with nothing delivered is not a row
    table = ledger.per_round()
    expected = [{k: int(row[k]) for k in ROUND_KEYS} for _, row in table.iterrows()]
    assert (
        round_rows(ledger)
        == expected
        == [
            {"round": 1, "nodes": 3, "down_bytes": 356, "up_bytes": 306, "total_bytes": 662},
            {"round": 2, "nodes": 1, "down_bytes": 70, "up_bytes": 70, "total_bytes": 140},
        ]
    )
