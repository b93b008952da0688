"""The link model of how Flower moves a message: its objects against Flower's own, and schedules by hand."""

from __future__ import annotations

import pytest

from fedbandwidth.wire.links import LinkProfile
from fedbandwidth.wire.transfer import (
    OBJECT_OVERHEAD_BYTES,
    OVERLAP,
    REQUEST_SECONDS,
    SUPERLINK_SECONDS,
    message_objects,
    message_seconds,
    request_loops,
    request_turn,
    wire_rate,
)


def flower_objects(model: str) -> list[int]:
    """Sizes of the objects Flower itself makes of a train message's content, in the order it moves them."""
    from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict
    from flwr.supercore.inflatable.inflatable_object import (
        get_all_nested_objects,
        get_object_tree,
        iterate_object_tree,
    )

    from fedbandwidth.model import random_arrays

    content = RecordDict(
        {"arrays": ArrayRecord({k: Array(v) for k, v in random_arrays(model).items()}), "config": ConfigRecord({})}
    )
    objects = get_all_nested_objects(content)
    return [len(objects[t.object_id].deflate()) for t in iterate_object_tree(get_object_tree(content))]


def test_objects_match_flowers_own_in_number_order_and_size():
    ours, theirs = list(message_objects("tiny-gptneox")), flower_objects("tiny-gptneox")
    assert len(ours) == len(theirs) + 1  # + the Message object, which wraps the content
    big = [i for i, size in enumerate(theirs) if size > 10_000]
    assert [ours[i] for i in big] == [theirs[i] for i in big]  # chunks: exact, in the same places
    assert sum(ours) == pytest.approx(sum(theirs), rel=0.005)
    assert len(message_objects("pythia-14m")) == 164  # 84 chunks, 76 arrays, record, config, content, message


def test_wire_rate_pays_66_bytes_of_headers_per_1448():
    assert wire_rate(8e6) == pytest.approx(1e6 * 1448 / 1514)


def test_request_loops_by_hand():
    rate, gap = 1e6, 0.1  # bytes/s, seconds before each object
    one = 1e6 - OBJECT_OVERHEAD_BYTES  # exactly 1 s on the link with its overhead
    assert request_loops([one], rate, gap) == pytest.approx(1.1)
    # two loops: both objects start after the gap and share the link
    assert request_loops([one, one], rate, gap) == pytest.approx(2.1)
    # three objects: the third waits for a loop (1.1 s + 2 x ... ): both done at 2.1, third at 2.2 + 1.0
    assert request_loops([one, one, one], rate, gap) == pytest.approx(3.2)
    # one loop: strictly one after the other
    assert request_loops([one, one], rate, gap, loops=1) == pytest.approx(2.2)


def test_message_seconds_adds_the_turns_around_the_objects():
    link = LinkProfile.from_mbit("t", 8, 8, 50)
    turn = 2 * 0.05 + OVERLAP * REQUEST_SECONDS  # a 100 ms round trip hides part of the other loop's processing
    objects = request_loops(message_objects("tiny-gptneox"), wire_rate(8e6), turn)
    up = message_seconds("tiny-gptneox", link, "up")
    down = message_seconds("tiny-gptneox", link, "down")
    first = message_seconds("tiny-gptneox", link, "down", first=True, app_bytes=100_000)
    assert up == pytest.approx(objects + 0.05)
    assert down == pytest.approx(0.05 + objects + turn)
    assert first == pytest.approx(down + 2 * turn + 100_000 / wire_rate(8e6))
    formula = 0.05 + 8 * sum(message_objects("tiny-gptneox")) / 8e6
    assert up > formula  # the turns and the headers cost time the formula leaves out


def test_a_round_trip_shorter_than_a_request_is_hidden_by_the_other_loop():
    assert request_turn(0.001, 0.02) == pytest.approx(0.02)  # 2 ms + 0.8 x 20 ms < 20 ms: the CPU is the turn
    assert request_turn(0.02, 0.02) == pytest.approx(0.04 + OVERLAP * 0.02)
    assert request_turn(0.0, 0.0, others=1, share=0.01) == pytest.approx(0.01)  # loopback: the whole share


def test_nodes_at_once_wait_for_each_others_share_of_the_superlink():
    link = LinkProfile.from_mbit("t", 8, 8, 50)
    for direction in ("down", "up"):
        alone = 2 * 0.05 + OVERLAP * REQUEST_SECONDS
        turn = alone + SUPERLINK_SECONDS[direction] * REQUEST_SECONDS / alone  # one other node, busy r / turn of it
        objects = request_loops(message_objects("tiny-gptneox"), wire_rate(8e6), turn)
        tail = turn if direction == "down" else 0.0
        assert message_seconds("tiny-gptneox", link, direction, nodes=2) == pytest.approx(0.05 + objects + tail)
    assert SUPERLINK_SECONDS["up"] > SUPERLINK_SECONDS["down"]  # pushed objects are hashed and stored
