"""Store-and-forward: the bounded buffer of a line's reports while no host hears them.

Owns `Stored` (one NDATA or DDATA message's metrics, marked historical, and its encoded size)
and `StoreBuffer`, bounded both in messages and in bytes (the payload's encoded size). When
either bound would be passed the oldest message goes, counted in `dropped_messages` and
`dropped_bytes`: memory never grows past the bound, and the loss is reported, not hidden.
Tests: tests/edge/sparkplug/test_buffer.py.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from edge.sparkplug.payload import Metric

MAX_MESSAGES = 20_000
"""Default bound in messages: 64 stations reporting once a second for 5 minutes, plus the line."""
MAX_BYTES = 8 * 1024 * 1024
"""Default bound in bytes of encoded payload (a station's full DDATA is about 150 bytes)."""


@dataclass(frozen=True)
class Stored:
    message_type: str  # NDATA or DDATA
    device: str | None
    metrics: tuple[Metric, ...]
    size_bytes: int

    def historical(self) -> Stored:
        """The same message with every metric marked is_historical (spec: stored data)."""
        if all(m.historical for m in self.metrics):
            return self
        return dataclasses.replace(self, metrics=tuple(dataclasses.replace(m, historical=True) for m in self.metrics))


class StoreBuffer:
    """Oldest first. Not thread-safe: the publisher holds its lock around every call."""

    def __init__(self, max_messages: int = MAX_MESSAGES, max_bytes: int = MAX_BYTES):
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"store-and-forward bound: max_messages {max_messages} and max_bytes {max_bytes} "
                             "must be at least 1")
        self.max_messages = int(max_messages)
        self.max_bytes = int(max_bytes)
        self._items: collections.deque[Stored] = collections.deque()
        self.bytes = 0
        self.dropped_messages = 0
        self.dropped_bytes = 0
        self.high_water_messages = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: Stored) -> None:
        self._items.append(item)
        self.bytes += item.size_bytes
        self._bound()

    def extend_front(self, items: Iterable[Stored]) -> None:
        """Put messages older than everything held in front, keeping their order (the messages
        sent just before a connection was lost, sent again after it)."""
        items = list(items)
        self._items.extendleft(reversed(items))
        self.bytes += sum(i.size_bytes for i in items)
        self._bound()

    def popleft(self) -> Stored:
        item = self._items.popleft()
        self.bytes -= item.size_bytes
        return item

    def _bound(self) -> None:
        while self._items and (len(self._items) > self.max_messages or self.bytes > self.max_bytes):
            old = self._items.popleft()
            self.bytes -= old.size_bytes
            self.dropped_messages += 1
            self.dropped_bytes += old.size_bytes
        self.high_water_messages = max(self.high_water_messages, len(self._items))
