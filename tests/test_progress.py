"""The progress bar follows the ledger: rounds done, and the nodes of the round under way."""

from fedbandwidth.ledger import Ledger
from fedbandwidth.names import DOWN, EVALUATE, TRAIN, UP
from fedbandwidth.progress import round_progress


def test_the_bar_counts_rounds_and_names_the_nodes():
    ledger = Ledger()
    bar = round_progress(ledger, rounds=2, nodes=3)
    for node in range(3):
        ledger.record(1, TRAIN, node, DOWN, 10, 8)
    ledger.record(1, TRAIN, 0, UP, 10, 8)
    ledger.record(1, EVALUATE, 0, DOWN, 10, 8)  # evaluation is not counted as a train message
    assert bar.n == 0 and bar.postfix == "round 1: model sent to 3/3 nodes, 1 updates back"
    ledger.end_round(1)
    ledger.end_round(2)
    assert bar.n == 2
