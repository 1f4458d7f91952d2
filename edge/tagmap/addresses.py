"""Checks across the tags of one map: two tags on the same PLC data.

Tests: tests/edge/tagmap/test_load.py.
"""

from __future__ import annotations

from edge.tagmap.checker import Checker
from edge.tagmap.model import ModbusAddress, Protocol, Tag


def check_address_overlaps(check: Checker, tags: list[Tag], protocol: Protocol | None) -> None:
    """Record a problem for every tag whose data overlaps an earlier tag's."""
    if protocol is Protocol.MODBUS:
        _check_modbus_overlaps(check, tags)


def _check_modbus_overlaps(check: Checker, tags: list[Tag]) -> None:
    spans = sorted(
        ((t.address.table.value, t.address.address, t.address.address + t.register_count, t)
         for t in tags if isinstance(t.address, ModbusAddress)),
        key=lambda span: span[:3],
    )
    for (table_a, _, end_a, a), (table_b, start_b, _, b) in zip(spans, spans[1:]):
        if table_a == table_b and start_b < end_a:
            check.fail(b.source_line, f"address {b.address} overlaps tag {a.name!r} (line {a.source_line}, "
                       f"{a.address} spans {a.register_count} {'bits' if a.address.table.is_bits else 'registers'})", b.name)
