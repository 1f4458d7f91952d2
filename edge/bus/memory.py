"""In-memory backend of the tag bus: a `MemoryPlc` holding raw tag values, and `MemoryBus`.

For unit tests, software-in-the-loop runs in one process, and the rtcore benchmark. The PLC
side can be taken offline, made slow or given a device error per tag, so the same contract
tests and fault tests run here as over the real protocols. Tests: tests/edge/bus/.
"""

from __future__ import annotations

import threading
import time

from edge.bus.base import BusTimeout, ConnectionLost, Quality, TagBus, plant_raw, raw_to_eu
from edge.tagmap import DataType, Owner, Tag, TagMap
from edge.tagmap.model import Value


def _zero(tag: Tag) -> Value:
    if tag.data_type is DataType.STRING:
        return ""
    zero = False if tag.data_type is DataType.BOOL else (0.0 if tag.data_type.is_float else 0)
    return (zero,) * tag.count if tag.is_array else zero


class MemoryPlc:
    """The PLC side: raw values by tag name, and fault switches."""

    def __init__(self, tag_map: TagMap):
        self.tag_map = tag_map
        self._raw: dict[str, Value] = {t.name: _zero(t) for t in tag_map.tags}
        self._lock = threading.Lock()
        self.online = True
        self.delay_s = 0.0
        self.device_errors: set[str] = set()  # tag names answered with an error
        self.generation = 0  # bumps on every restart; a bus connected before must reconnect

    # plant side, in engineering units
    def get(self, name: str) -> Value:
        tag = self.tag_map.tag(name)
        with self._lock:
            return raw_to_eu(tag, self._raw[name])[0]

    def set(self, name: str, value: Value) -> None:
        tag = self.tag_map.tag(name)
        raw = plant_raw(tag, value)
        with self._lock:
            self._raw[name] = raw

    def restart(self) -> None:
        """A PLC restart: every connection is dropped; retained values stay."""
        self.generation += 1

    # bus side
    def read_raw(self, names: list[str]) -> dict[str, Value]:
        with self._lock:
            return {n: self._raw[n] for n in names}

    def write_raw(self, values: dict[str, Value]) -> None:
        with self._lock:
            self._raw.update(values)


class MemoryBus(TagBus):
    def __init__(self, tag_map: TagMap, owner: Owner, plc: MemoryPlc, **kwargs):
        super().__init__(tag_map, owner, **kwargs)
        self.plc = plc
        self._generation = -1

    def _connect(self, deadline: float) -> None:
        if not self.plc.online:
            raise ConnectionLost(f"{self.tag_map.name}: memory PLC is offline")
        self._generation = self.plc.generation

    def _disconnect(self) -> None:
        self._generation = -1

    def _answer(self, deadline: float) -> None:
        if not self.plc.online or self._generation != self.plc.generation:
            raise ConnectionLost(f"{self.tag_map.name}: memory PLC dropped the connection")
        if self.plc.delay_s:
            remaining = deadline - time.monotonic()
            time.sleep(min(self.plc.delay_s, max(0.0, remaining)))
            if self.plc.delay_s > remaining:
                raise BusTimeout(f"{self.tag_map.name}: no answer within {remaining:.3f} s")

    def _read_raw(self, tags: list[Tag], requests, deadline: float) -> dict[str, Value | Quality]:
        self._answer(deadline)
        raw = self.plc.read_raw([t.name for t in tags])
        return {t.name: Quality.BAD_DEVICE if t.name in self.plc.device_errors else raw[t.name] for t in tags}

    def _write_raw(self, items: list[tuple[Tag, Value]], requests, deadline: float) -> dict[str, Quality]:
        self._answer(deadline)
        accepted = {t.name: raw for t, raw in items if t.name not in self.plc.device_errors}
        self.plc.write_raw(accepted)
        return {t.name: Quality.GOOD if t.name in accepted else Quality.BAD_DEVICE for t, _ in items}


__all__ = ["MemoryBus", "MemoryPlc"]
