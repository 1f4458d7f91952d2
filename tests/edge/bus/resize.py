"""Bench maps resized to a line of any number of stations (for the scale tests and benchmarks).

`resized(tag_map, stations)` scales every array of the HIL map (S = discharge_permit's count) (plc_tags/hil_*.yaml)
to `stations`, keeping each tag's elements per station (4 markers, 2 zones, 1 output), and lays
the Modbus tags of each table out again in address order, keeping the map's gap between
neighbours (so the fast and slow blocks stay apart). Only the dataclasses change (dataclasses.replace): the YAML
files are never touched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edge.tagmap import DataType, ModbusAddress, Protocol, TagMap, load_tag_map

ROOT = Path(__file__).resolve().parents[3]


def resized(tag_map: TagMap, stations: int, *, types: dict[str, DataType] | None = None) -> TagMap:
    """`tag_map` (a bench map) for `stations` stations; `types` retypes tags by name."""
    types = types or {}
    base = tag_map.tag("discharge_permit").count  # S, as the controller counts stations
    tags = []
    for tag in tag_map.tags:
        count = tag.count * stations // base if tag.is_array else 1
        data_type = types.get(tag.name, tag.data_type)
        safe = tag.safe_value
        if tag.is_array and isinstance(safe, tuple):
            safe = (safe[0],) * count
        tags.append(replace(tag, count=count, data_type=data_type, safe_value=safe))
    if tag_map.protocol is Protocol.MODBUS:
        old = {t.name: t for t in tag_map.tags}
        ends: dict = {}  # table -> (old end, new end)
        laid = []
        for tag in sorted(tags, key=lambda t: (t.address.table.value, t.address.address)):
            table, before = tag.address.table, old[tag.name]
            old_end, new_end = ends.get(table, (0, 0))
            start = new_end + before.address.address - old_end
            laid.append(replace(tag, address=ModbusAddress(table, start)))
            ends[table] = (before.address.address + before.register_count, start + tag.register_count)
        order = {t.name: i for i, t in enumerate(tags)}
        tags = sorted(laid, key=lambda t: order[t.name])
    return TagMap(f"{tag_map.name}-{stations}", tag_map.protocol, tag_map.endpoint, tag_map.timeout_s,
                  tag_map.scan_groups, tuple(tags), tag_map.source)


def bench_map(protocol: str, stations: int) -> TagMap:
    """The HIL bench map for `stations`; marker temperatures are REAL on both protocols unless the
    Modbus INT layout is asked for with protocol 'modbus-int'."""
    if protocol == "logix":
        return resized(load_tag_map(ROOT / "plc_tags/hil_logix.yaml"), stations)
    base = load_tag_map(ROOT / "plc_tags/hil_modbus.yaml")
    if protocol == "modbus-int":
        return resized(base, stations)
    return resized(base, stations, types={"marker_temp_degc": DataType.REAL})
