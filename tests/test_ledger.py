import csv

from fedbandwidth.ledger import COLUMNS, Ledger, per_round


def fill(ledger):
    for node in (11, 22):
        ledger.record(1, "train", node, "down", 100, 90)
    ledger.record(1, "train", 11, "up", 100, 90)  # node 22 failed: nothing came back
    ledger.record(1, "evaluate", 22, "down", 100, 90)
    ledger.record(2, "train", 22, "down", 100, 90)
    ledger.record(2, "train", 22, "up", 100, 90)


def test_totals_and_per_round():
    ledger = Ledger()
    fill(ledger)
    assert ledger.total_bytes() == 600
    assert ledger.total_bytes("down") == 400 and ledger.total_bytes("up") == 200
    assert ledger.total_bytes(column="tensor_bytes") == 540
    table = ledger.per_round()
    assert table.to_dict("records") == [
        {"round": 1, "nodes": 2, "down_bytes": 300, "up_bytes": 100, "total_bytes": 400, "cumulative_bytes": 400},
        {"round": 2, "nodes": 1, "down_bytes": 100, "up_bytes": 100, "total_bytes": 200, "cumulative_bytes": 600},
    ]


def test_csv_is_written_as_rows_arrive(tmp_path):
    path = tmp_path / "sub" / "ledger.csv"
    ledger = Ledger(csv_path=path)
    assert path.read_text() == ",".join(COLUMNS) + "\n"
    ledger.record(1, "train", 7, "down", 123, 100)
    rows = list(csv.DictReader(path.open()))  # readable before the run ends
    assert rows == [
        {
            "round": "1",
            "phase": "train",
            "node_id": "7",
            "direction": "down",
            "payload_bytes": "123",
            "tensor_bytes": "100",
            "delivered": "True",
            "late": "False",
            "stage": "",
            "array_bytes": "0",
            "config_bytes": "0",
            "metric_bytes": "0",
            "meter": "strategy",
            "object_bytes": "0",
        }
    ]


def test_frame_round_trip(tmp_path):
    ledger = Ledger()
    fill(ledger)
    import pandas as pd

    frame = pd.read_csv(ledger.to_csv(tmp_path / "l.csv"))
    assert list(frame.columns) == COLUMNS and len(frame) == 6
    assert per_round(frame).equals(ledger.per_round())


def test_empty_ledger():
    ledger = Ledger()
    assert ledger.total_bytes() == 0 and ledger.per_round().empty


def test_round_listeners_are_called():
    ledger, seen = Ledger(), []
    ledger.round_listeners.append(seen.append)
    ledger.end_round(1)
    ledger.end_round(2)
    assert seen == [1, 2]


def test_undelivered_is_kept_but_not_moved_and_late_is_read_back(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger = Ledger(csv_path=path)
    ledger.record(1, "train", 7, "down", 123, 100)
    ledger.record(1, "train", 8, "down", 123, 100, delivered=False)  # its node never fetched it
    ledger.record(1, "train", 7, "up", 50, 40, late=True)  # crossed after the round closed
    assert ledger.total_bytes() == 173 and ledger.total_bytes("down") == 123
    assert ledger.per_round().to_dict("records")[0]["down_bytes"] == 123
    back = Ledger.from_csv(path)
    assert back.transfers == ledger.transfers
    assert [t.delivered for t in back.transfers] == [True, False, True]
    assert [t.late for t in back.transfers] == [False, False, True]
