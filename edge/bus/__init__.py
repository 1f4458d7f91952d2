"""The tag bus: read and write PLC tags by name, checked against the tag map.

`open_bus(tag_map, owner)` picks the backend from the map's protocol (Modbus TCP or Logix);
with `plc=MemoryPlc(...)` it gives the in-memory backend. The protocol modules are imported
only when used. Interface and semantics: base.py. Tests: tests/edge/bus/.
"""

from __future__ import annotations

from edge.bus.base import (
    Backoff,
    BusError,
    BusTimeout,
    ConnectionLost,
    Quality,
    TagBus,
    TagValue,
    WriteResult,
)
from edge.bus.memory import MemoryBus, MemoryPlc
from edge.tagmap import Owner, Protocol, TagMap


def open_bus(tag_map: TagMap, owner: Owner, *, plc: MemoryPlc | None = None, **kwargs) -> TagBus:
    """A bus for `owner` on the map's PLC; nothing is sent until the first read or write."""
    if plc is not None:
        return MemoryBus(tag_map, owner, plc, **kwargs)
    if tag_map.protocol is Protocol.MODBUS:
        from edge.bus.modbus import ModbusBus

        return ModbusBus(tag_map, owner, **kwargs)
    from edge.bus.logix import LogixBus

    return LogixBus(tag_map, owner, **kwargs)


__all__ = [
    "Backoff", "BusError", "BusTimeout", "ConnectionLost", "MemoryBus", "MemoryPlc", "Quality",
    "TagBus", "TagValue", "WriteResult", "open_bus",
]
