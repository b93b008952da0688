"""Three meters of one deployment, side by side, every difference named: the ledger, Flower's own traffic
counters, and the relays.

- **ledger** (the app's strategy hooks and RoundGrid): each moved model message as `ArrayRecord.count_bytes()`
  (tensor data in .npy format + key names); undelivered messages left out.
- **Flower** (`flwr ls --run-id N`: the SuperLink's per-run "network traffic", Fleet API only, counted in
  `superlink/servicer/fleet/fleet_handlers.py`): the protobuf `ByteSize()` of PullMessages requests and of the
  responses that carried a message, of PushMessages requests and responses, plus the length of every object
  a SuperNode pulled (outbound, "down") or pushed and the SuperLink stored (inbound, "up"). An object is what
  Flower makes of a record to move it: the record, each array, each 5 MiB chunk, each with a header (type,
  children, length). Not counted: HTTP framing, TLS, heartbeats, registration, GetRun, the app (GetFab), the
  polls that found nothing, ConfirmMessageReceived, and the ServerApp's own traffic (the Runtime API).
- **relays**: every byte of the TCP stream between a SuperNode and the SuperLink (after TLS, before TCP/IP).

So Flower - ledger = the objects' headers (`object_framing`, computed here from the model's arrays as Flower
deflates them) + the object tree each message's protobuf lists (`object_trees`) + the message's own objects
(message, record dict, config or metrics) and protobuf fields (`flower_rest`; measured down: 8.8 KB a message
of tiny-gptneox, 11.7 KB of pythia-14m); relays - Flower = what Flower does not count (`relay_rest`). Objects
the SuperLink still holds are not pushed again, nor counted (the echo client's uplink); a node killed
mid-download has pulled objects of a message the ledger left out as undelivered.
"""

from __future__ import annotations

from ..names import DOWN, UP
from ..units import format_bytes

DIRECTIONS = (DOWN, UP)


def varint_bytes(n: int) -> int:
    """Bytes of `n` as a protobuf varint."""
    return max(1, (n.bit_length() + 6) // 7)


def array_costs(shape: tuple[int, ...], dtype: str) -> tuple[int, int, int]:
    """(objects, header bytes, tree bytes) of one array as Flower moves it: the Array and its 5 MiB chunks.

    They depend on the shape and dtype only, so one random array of that shape (one at a time) tells."""
    import numpy as np
    from flwr.app import Array
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree

    array = Array(np.random.default_rng(0).standard_normal(shape).astype(dtype))
    nested = get_all_nested_objects(array).values()
    return len(nested), sum(len(obj.deflate()) for obj in nested) - len(array.data), get_object_tree(array).ByteSize()


def object_costs(model: str) -> dict[str, int]:
    """What Flower adds to one model message's payload to move it: each object's header and the record's own
    object (`framing`), and the object tree the message's protobuf carries (`tree`); `objects`: how many.
    Computed array by array (never the whole model in memory); equal to deflating the whole record."""
    import numpy as np
    from flwr.app import Array, ArrayRecord

    from ..model import tensor_specs

    specs, costs = tensor_specs(model), {}
    for spec in specs:
        costs.setdefault((tuple(spec.shape), spec.dtype), array_costs(tuple(spec.shape), spec.dtype))
    parts = [costs[tuple(spec.shape), spec.dtype] for spec in specs]
    # the record's own object: keys and child ids, whatever the arrays hold (distinct ones: no dedup)
    small = ArrayRecord({s.name: Array(np.full((1,) * len(s.shape), i, s.dtype)) for i, s in enumerate(specs)})
    record = len(small.deflate()) - sum(len(key) for key in small.keys())
    tree = 2 + 64 + sum(1 + varint_bytes(t) + t for _, _, t in parts)  # the record's id, then each array's tree
    return {"objects": 1 + sum(p[0] for p in parts), "framing": record + sum(p[1] for p in parts), "tree": tree}


def meter_rows(report: dict, ledger, flower: dict | None, costs: dict[str, int]) -> list[dict]:
    """Per direction: the ledger's, Flower's and the relays' bytes, and the parts that tell them apart."""
    if flower is None:
        return []
    rows = []
    for d in DIRECTIONS:
        messages = sum(1 for t in ledger.transfers if t.direction == d and t.delivered)
        moved, relays = report[f"{d}_bytes"], report["wire_bytes"][d]
        framing, tree = messages * costs["framing"], messages * costs["tree"]
        rows.append(
            {
                "direction": d,
                "messages": messages,
                "ledger_bytes": moved,
                "flower_bytes": flower[d],
                "relay_bytes": relays,
                "object_framing": framing,
                "object_trees": tree,
                "flower_rest": flower[d] - moved - framing - tree,
                "relay_rest": relays - flower[d],
            }
        )
    return rows


def render_meters(rows: list[dict]) -> list[str]:
    """Three meters, one line per direction, and what separates them."""
    return [
        f"{r['direction']:>4}: ledger {r['ledger_bytes']:,} B | Flower's counter {r['flower_bytes']:,} B "
        f"(+{r['object_framing']:,} object headers, +{r['object_trees']:,} object trees, {r['flower_rest']:+,} "
        f"message objects and protobufs) | relays "
        f"{r['relay_bytes']:,} B ({r['relay_rest']:+,}: HTTP, heartbeats, polls, the app; "
        f"{format_bytes(abs(r['relay_rest']))})"
        for r in rows
    ]
