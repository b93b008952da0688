"""How long one model message takes on a link, the way Flower 1.42 really moves it (links.py's formula refined).

``latency + 8 * bytes / rate`` leaves out how the message travels. Flower's Fleet API is protobuf over
HTTP/1.1 (httpx in the SuperNode, uvicorn in the SuperLink), and a message moves **object by object**:
every array is cut into chunks of at most 5 MiB, and each chunk, each array, the record and the message
is its own object, fetched (down) or sent (up) with its own request, two requests at a time. pythia-14m is
164 objects, 128 of them under 10 KB: ~82 request round trips per worker. So the model here adds:

- **framing**: the link carries 66 B of Ethernet/IP/TCP headers per 1448 B of payload (x1.0456);
- **request turns**: every object costs a round trip (2 x latency) plus the processing of one request
  (REQUEST_SECONDS, measured on this machine), two objects in flight at a time, sharing the link; the two
  loops share the CPU, so while one waits out its round trip the other's request is processed: a turn is
  max(2 x latency + OVERLAP x request, request), the round trip hidden on a link faster than the CPU (Wi-Fi);
- **the turns around the objects**: the message and its object tree first, the app (FAB) and the run's
  details with a node's first message, and the receipt (down) or the upload session (up);
- **nodes at once**: one SuperLink process answers every node's requests, so with k nodes moving a model at
  the same time each request waits for k - 1 others' share of it (more up than down: the SuperLink checks
  each pushed object's hash and stores it), for the share of a turn the others keep it busy (a request's
  processing over a turn; the others are taken to be alike): all of it on loopback, where `calibrate`
  measures the share, 0.9 of it on Wi-Fi, a third on 5G, 0.4 on home broadband (a 19 ms request). Both CPU
  terms come from `fedbandwidth calibrate` (calibration.py) when this machine has a calibration; else the
  built-in ones, fitted on two nodes on Wi-Fi and home broadband on one day (benchmarks/results/wire_timing.json).

``message_seconds`` replays that schedule in a small event simulation (two request loops, one shared link).
"""

from __future__ import annotations

import functools
import math

from flwr.common.constant import FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE
from flwr.supercore.constant import FLWR_PRIVATE_MAX_CONCURRENT_OBJ_PULLS

from ..model import tensor_specs
from ..names import DOWN, UP
from ..payload import npy_header_length
from .calibration import Calibration
from .links import BITS_PER_BYTE, LinkProfile

SEGMENT_BYTES, FRAME_BYTES = 1448, 66  # TCP payload per Ethernet frame, and the headers around it
REQUESTS_IN_FLIGHT = FLWR_PRIVATE_MAX_CONCURRENT_OBJ_PULLS  # object requests a SuperNode keeps open
BUILT_IN = Calibration()  # the CPU terms fitted on one machine on one day; `fedbandwidth calibrate` measures yours
REQUEST_SECONDS = BUILT_IN.request_seconds  # processing of one object request (SuperNode + SuperLink), both ways
SUPERLINK_SECONDS = {d: BUILT_IN.superlink_seconds(d) for d in (DOWN, UP)}  # the SuperLink's share, per other node
OBJECT_OVERHEAD_BYTES = 210  # HTTP headers and protobuf framing around each object on the wire
CHUNK_HEAD_BYTES = 13  # "ArrayChunk", two dividers and one ending the head, before the body's length in digits
ARRAY_HEAD_BYTES, CHILD_ID_BYTES = 90, 70  # an Array object: a head, and one 64-hex id per chunk
RECORD_BYTES_PER_ARRAY = 180  # an ArrayRecord lists each array's key and id
SMALL_OBJECTS = (40, 300, 400)  # config/metric record, record dict, message: a few hundred bytes each
OVERLAP = 0.8  # the share of a request's processing its own round trip cannot hide (fitted on sweeps F-K)


def array_objects(data_sizes) -> tuple[int, ...]:
    """Sizes of the objects of a message whose arrays serialize to `data_sizes` bytes (.npy), in the order
    Flower moves them: each array's chunks, then the array, then the record and the small objects."""
    sizes = []
    for data in data_sizes:
        chunks = max(1, math.ceil(data / FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE))
        for k in range(chunks):
            body = min(FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE, data - k * FLWR_PRIVATE_MAX_ARRAY_CHUNK_SIZE)
            sizes.append(CHUNK_HEAD_BYTES + len(str(body)) + body)
        sizes.append(ARRAY_HEAD_BYTES + CHILD_ID_BYTES * chunks)
    sizes.append(RECORD_BYTES_PER_ARRAY * len(data_sizes))
    return tuple(sizes) + SMALL_OBJECTS


@functools.lru_cache(maxsize=16)
def message_objects(model: str) -> tuple[int, ...]:
    """Sizes of the objects of one float32 model message, in the order Flower moves them (chunks, array, ...)."""
    return array_objects([npy_header_length(s.shape) + s.nbytes for s in tensor_specs(model)])


def message_bytes(model: str) -> int:
    """The bytes of one float32 model message of `model`, its objects added up (what a ClientApp decodes)."""
    return sum(message_objects(model))


def wire_rate(bits_per_second: float) -> float:
    """Payload bytes per second a link delivers once Ethernet/IP/TCP headers are paid."""
    return bits_per_second / BITS_PER_BYTE * SEGMENT_BYTES / (SEGMENT_BYTES + FRAME_BYTES)


def request_loops(sizes, bytes_per_second: float, gap: float, loops: int = REQUESTS_IN_FLIGHT) -> float:
    """Seconds until the last object is through: `loops` request loops, each waiting `gap` (a round trip
    and a request's processing) before each object, the objects in flight sharing the link equally."""
    queue, now, waiting, sending = [s + OBJECT_OVERHEAD_BYTES for s in sizes], 0.0, [], {}
    for loop in range(min(loops, len(queue))):
        waiting.append((gap, loop, queue.pop(0)))
    while waiting or sending:
        share = bytes_per_second / len(sending) if sending else 0.0
        next_done = now + min(sending.values()) / share if sending else math.inf
        next_start = min(waiting)[0] if waiting else math.inf
        step = min(next_done, next_start)
        for loop in sending:
            sending[loop] -= (step - now) * share
        now = step
        if next_start <= next_done:
            _, loop, size = min(waiting)
            waiting.remove(min(waiting))
            sending[loop] = size
        else:
            loop = min(sending, key=sending.get)
            del sending[loop]
            if queue:
                waiting.append((now + gap, loop, queue.pop(0)))
    return now


def request_turn(latency: float, request: float, others: int = 0, share: float = 0.0) -> float:
    """Seconds between a request loop's objects: its round trip and its processing, less what the other loop's
    processing hides; plus `others` nodes' `share` of the SuperLink for the part of the turn it processes."""
    turn = max(2 * latency + OVERLAP * request, request)
    return turn + others * share * (request / turn if turn > 0 else 1.0)  # (a turn is never under `request`)


def message_seconds(
    model: str,
    link: LinkProfile,
    direction: str,
    first: bool = False,
    app_bytes: int = 0,
    nodes: int = 1,
    calibration: Calibration = BUILT_IN,
    server: LinkProfile | None = None,
    objects: tuple[int, ...] | None = None,
    level: float | None = None,
) -> float:
    """Seconds from a message's first byte leaving its sender to its last byte reaching the receiver.

    Down: the message and its tree (one latency), with a node's `first` message the run's details and the
    app (two more turns and `app_bytes`), the objects, then the receipt (one turn). Up: the upload session
    (one turn), the objects, and the last object's latency. `nodes`: how many move a model at the same time;
    `calibration`: the machine's CPU terms (calibration.py); `server`: the server's own link, which the
    `nodes` share fairly (its latency adds to the node's); `objects`: the message's own objects (array_objects),
    if it is not the float32 model (e.g. encoded); `level`: this node's share of the server's link in bit/s, if
    not 1/nodes of it (plan.py's max-min fair level; inf: the link does not bind)."""
    latency, rate = link.latency_seconds, wire_rate(link.rate(direction))
    if server is not None:
        share = server.rate(direction) / nodes if level is None else level
        latency, rate = latency + server.latency_seconds, min(rate, wire_rate(share))
    sizes, request = objects or message_objects(model), calibration.request(direction)
    turn = request_turn(latency, request, nodes - 1, calibration.superlink_seconds(direction))
    objects = request_loops(sizes, rate, turn)
    if direction == DOWN:
        setup = latency + (2 * turn + app_bytes / rate if first else 0.0)
        return setup + objects + turn
    return objects + latency
