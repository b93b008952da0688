"""The ledger: one row per message, written to CSV as it is recorded.

Two meters write it: the lesson's strategy hooks (`tracking`: one row per message that carried a model) and the
Grid meter (`meter`: every message the ServerApp pushed or pulled, whatever its records, with its stage).
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from .names import DOWN, STRATEGY, TRAIN, UP


@dataclass(frozen=True)
class Transfer:
    """One message that carried arrays between the server and a node."""

    round: int  # federated round, from 1
    phase: str  # "train" or "evaluate"
    node_id: int  # Flower node id of the client
    direction: str  # "down" (server -> client) or "up" (client -> server)
    payload_bytes: int  # bytes as Flower counts them (ArrayRecord.count_bytes())
    tensor_bytes: int  # raw tensor bytes (numel x itemsize), what the course formula counts
    delivered: bool = True  # False: pushed for a node that never fetched it (kept, but not counted as moved)
    late: bool = False  # a reply that came after its round closed: it crossed, but its bytes were wasted
    stage: str = ""  # Grid meter: the message type, or the SecAgg+ stage ("setup", "share_keys", ...)
    array_bytes: int = 0  # Grid meter: ArrayRecords' bytes (count_bytes(): .npy data + keys)
    config_bytes: int = 0  # Grid meter: ConfigRecords' bytes as Flower counts them (8 B a number, + keys)
    metric_bytes: int = 0  # Grid meter: MetricRecords' bytes as Flower counts them
    meter: str = STRATEGY  # who wrote the row: "strategy" (the lesson's hooks) or "grid" (the Grid meter)
    object_bytes: int = 0  # Grid meter with objects=True: the message's objects as Flower deflates them, else 0


COLUMNS = [f.name for f in fields(Transfer)]
PARSERS = {int: int, str: str, bool: lambda text: text == "True"}  # CSV text -> a field's value, by its type
FIELD_TYPES = {f.name: {"int": int, "str": str, "bool": bool}[f.type] for f in fields(Transfer)}


class Ledger:
    """Collects Transfers; appends each to `csv_path` at once, so an interrupted run keeps its rows."""

    def __init__(self, csv_path: str | Path | None = None) -> None:
        self.transfers: list[Transfer] = []
        self.csv_path = Path(csv_path) if csv_path else None
        self.round_listeners: list[Callable[[int], None]] = []
        self.transfer_listeners: list[Callable[[Transfer], None]] = []  # told of every row (e.g. progress)
        self._lock = threading.Lock()
        if self.csv_path:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self.csv_path.write_text(",".join(COLUMNS) + "\n")

    @classmethod
    def from_csv(cls, path: str | Path) -> Ledger:
        """A Ledger holding the rows of a ledger CSV this class wrote (the file is read, never written)."""
        ledger = cls()
        with Path(path).open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != COLUMNS:
                raise ValueError(f"{str(path)!r} has columns {reader.fieldnames}, expected {COLUMNS}")
            for row in reader:
                ledger.transfers.append(Transfer(**{k: PARSERS[FIELD_TYPES[k]](v) for k, v in row.items()}))
        return ledger

    def record(
        self,
        round: int,
        phase: str,
        node_id: int,
        direction: str,
        payload_bytes: int,
        tensor_bytes: int,
        delivered: bool = True,
        late: bool = False,
        **extra,
    ) -> Transfer:
        """Add one transfer (and append it to the CSV file, if any); `extra`: the Grid meter's fields."""
        sizes = int(payload_bytes), int(tensor_bytes)
        row = Transfer(int(round), phase, int(node_id), direction, *sizes, bool(delivered), bool(late), **extra)
        with self._lock:
            self.transfers.append(row)
            if self.csv_path:
                with self.csv_path.open("a", newline="") as f:
                    csv.writer(f).writerow(astuple(row))
        for listener in self.transfer_listeners:
            listener(row)
        return row

    def end_round(self, server_round: int) -> None:
        """Tell listeners (e.g. a progress bar) that a round's training phase is done."""
        for listener in self.round_listeners:
            listener(server_round)

    def total_bytes(self, direction: str | None = None, column: str = "payload_bytes") -> int:
        """Sum of payload (or tensor) bytes moved (undelivered messages left out), optionally for one direction."""
        return sum(getattr(t, column) for t in self.transfers if t.delivered and direction in (None, t.direction))

    def to_frame(self):
        """All transfers as a pandas DataFrame, one row per message."""
        return transfer_frame(self.transfers)

    def to_csv(self, path: str | Path) -> Path:
        """Write all transfers to `path` as CSV."""
        self.to_frame().to_csv(path, index=False)
        return Path(path)

    def per_round(self):
        """One row per round: nodes trained, down/up payload bytes, total and cumulative."""
        return per_round(self.to_frame())


def transfer_frame(transfers):
    """Transfers (or tuples of Transfer's fields, defaults allowed) as a DataFrame with the ledger's COLUMNS."""
    import pandas as pd

    rows = [astuple(t if isinstance(t, Transfer) else Transfer(*t)) for t in transfers]
    return pd.DataFrame(rows, columns=COLUMNS)


def per_round(frame):
    """Aggregate a transfer frame to rounds (delivered messages only): nodes, down/up, total and cumulative bytes."""
    import pandas as pd

    if "delivered" in frame:
        frame = frame[frame["delivered"].astype(bool)]

    rounds = sorted(frame["round"].unique()) if len(frame) else []
    rows = []
    for r in rounds:
        f = frame[frame["round"] == r]
        nodes = f[(f.phase == TRAIN) & (f.direction == DOWN)].node_id.nunique()
        down = int(f[f.direction == DOWN].payload_bytes.sum())
        up = int(f[f.direction == UP].payload_bytes.sum())
        rows.append({"round": int(r), "nodes": int(nodes), "down_bytes": down, "up_bytes": up})
    table = pd.DataFrame(rows, columns=["round", "nodes", "down_bytes", "up_bytes"])
    table["total_bytes"] = table.down_bytes + table.up_bytes
    table["cumulative_bytes"] = table.total_bytes.cumsum()
    return table
