"""The store-and-forward buffer's bounds: messages and bytes, the oldest dropped and counted."""

from __future__ import annotations

import pytest

from edge.sparkplug.buffer import StoreBuffer, Stored
from edge.sparkplug.payload import DataType, Metric

pytestmark = pytest.mark.unit


def item(n: int, size: int = 100) -> Stored:
    return Stored("DDATA", "station000", (Metric("report_seq", DataType.UINT64, n),), size)


def test_the_oldest_goes_when_the_message_bound_is_passed():
    buf = StoreBuffer(max_messages=3, max_bytes=10_000)
    for n in range(1, 6):
        buf.append(item(n))
    assert [buf.popleft().metrics[0].value for _ in range(len(buf))] == [3, 4, 5]
    assert (buf.dropped_messages, buf.dropped_bytes, buf.bytes) == (2, 200, 0)


def test_the_byte_bound_holds_and_front_items_keep_their_order():
    buf = StoreBuffer(max_messages=100, max_bytes=250)
    buf.append(item(3))
    buf.append(item(4))
    buf.extend_front([item(1), item(2)])  # 400 bytes: the two oldest go
    assert buf.bytes == 200 and buf.dropped_messages == 2
    assert [buf.popleft().metrics[0].value for _ in range(len(buf))] == [3, 4]


def test_historical_marks_every_metric_and_bad_bounds_are_refused():
    assert all(m.historical for m in item(1).historical().metrics)
    with pytest.raises(ValueError, match="max_messages 0"):
        StoreBuffer(max_messages=0)
