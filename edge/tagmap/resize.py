"""A station-per-element map resized to another station count, and any map written back as YAML.

`resized(tag_map, stations)` scales every per-station array of a map laid out like the bench's
(plc_tags/hil_*.yaml: S = the station count of its roles, `roles.map_station_count`, each
per-station tag holding a whole number of elements per station: 4 markers, 2 zones, 1 output) to
`stations`, keeping each tag's elements per station. Tags of the robot cell and the camera (the
robot's roles and the slot and terminal roles: one robot, its inbox slots) and scalars keep their
size; `slots=` resizes the camera's arrays to that many inbox slots (K = the count of the role
`vision_battery_id`). The map's `roles:` and its one-station `fixture:` carry over. On Modbus the tags of each table are laid out again
in address order, keeping the map's gap between neighbours, so blocks the map keeps apart stay
apart. `dump_tag_map(tag_map)` is the YAML text that `load_tag_map` reads back to an equal map:
`discharge-edge demo --stations N` serves and runs a line of N stations through files like any
other. Tests: tests/edge/tagmap/test_resize.py.
"""

from __future__ import annotations

from dataclasses import replace

import yaml

from edge.tagmap.model import DataType, ModbusAddress, Protocol, Tag, TagMap
from edge.tagmap.roles import ROLES, map_station_count, role_tag

SLOT_COUNT_ROLE = "vision_battery_id"
LINE_WIDE_ROLES = tuple(r.name for r in ROLES if r.name.startswith(("robot_", "vision_")))
"""Roles of the robot cell and its camera: one robot and its inbox slots, whatever the station count."""
SLOT_ROLES = tuple(r.name for r in ROLES if r.shape in ("slot", "terminal"))


def _played_by(tag_map: TagMap, role_names) -> set[str]:
    return {tag.name for tag in (role_tag(tag_map, name) for name in role_names) if tag is not None}


def per_station(tag: Tag, stations: int, line_wide: set[str] = frozenset()) -> bool:
    """Whether `tag` holds a whole number of elements per station of a `stations`-station map
    (the tags in `line_wide`, the robot cell's and the camera's, never do)."""
    return tag.is_array and tag.count % stations == 0 and tag.name not in line_wide


def resized(tag_map: TagMap, stations: int, *, slots: int | None = None,
            types: dict[str, DataType] | None = None) -> TagMap:
    """`tag_map` for `stations` stations and, with `slots`, that many inbox slots (the camera's
    `vision_*` arrays keep their elements per slot); `types` retypes tags by name. ValueError when
    the map has no station count (or no slots, when asked) or a count is not a positive integer."""
    for name, value, required in (("stations", stations, True), ("slots", slots, False)):
        if (value is not None or required) and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{tag_map.source}: {name} must be a positive integer, got {value!r}")
    slot_tag = role_tag(tag_map, SLOT_COUNT_ROLE)
    if slots is not None and slot_tag is None:
        raise ValueError(f"{tag_map.source}: no tag plays role {SLOT_COUNT_ROLE!r}, whose count is the map's "
                         "inbox slot count")
    base = map_station_count(tag_map)  # ValueError naming the file when the map has no station count
    line_wide, slot_tags = _played_by(tag_map, LINE_WIDE_ROLES), _played_by(tag_map, SLOT_ROLES)
    types = types or {}
    tags = []
    for tag in tag_map.tags:
        if per_station(tag, base, line_wide):
            count = tag.count * stations // base
        elif slots is not None and tag.name in slot_tags and tag.count % slot_tag.count == 0:
            count = tag.count * slots // slot_tag.count
        else:
            count = tag.count
        safe = tag.safe_value
        if isinstance(safe, tuple) and len(safe) != count:
            if len(set(safe)) != 1:
                raise ValueError(f"{tag_map.source}: tag {tag.name!r} has a safe value per element that "
                                 f"differs between elements; it cannot be resized")
            safe = (safe[0],) * count if count > 1 else safe[0]  # a one-element tag is a scalar
        tags.append(replace(tag, count=count, data_type=types.get(tag.name, tag.data_type), safe_value=safe))
    if tag_map.protocol is Protocol.MODBUS:
        tags = _laid_out(tag_map, tags)
    return replace(tag_map, name=f"{tag_map.name}-{stations}", tags=tuple(tags))  # roles and the
    # station-local fixture carry over


def _laid_out(tag_map: TagMap, tags: list[Tag]) -> list[Tag]:
    old = {t.name: t for t in tag_map.tags}
    ends: dict = {}  # table -> (old end, new end)
    bit_registers: dict = {}  # (table, old register) -> new register: bits of one register stay together
    laid = []
    for tag in sorted(tags, key=lambda t: (t.address.table.value, t.address.address)):
        table, before = tag.address.table, old[tag.name]
        shared = bit_registers.get((table, before.address.address)) if tag.address.bit is not None else None
        if shared is not None:
            laid.append(replace(tag, address=ModbusAddress(table, shared, tag.address.bit)))
            continue
        old_end, new_end = ends.get(table, (0, 0))
        start = new_end + max(0, before.address.address - old_end)
        laid.append(replace(tag, address=ModbusAddress(table, start, tag.address.bit)))
        if tag.address.bit is not None:
            bit_registers[(table, before.address.address)] = start
        ends[table] = (before.address.address + before.register_count, start + tag.register_count)
    order = {t.name: i for i, t in enumerate(tags)}
    return sorted(laid, key=lambda t: order[t.name])


def dump_tag_map(tag_map: TagMap, header: str = "") -> str:
    """The YAML text of `tag_map` (plc_tags/README.md's fields), which `load_tag_map` reads back
    to an equal map; `header` lines become comments at the top."""
    e = tag_map.endpoint
    endpoint = {"host": e.host, "port": e.port}
    if tag_map.protocol is Protocol.MODBUS:
        endpoint["unit_id"] = e.unit_id
    elif e.route:
        endpoint["route"] = e.route
    document = {
        "connection": {"name": tag_map.name, "protocol": tag_map.protocol.value, "endpoint": endpoint,
                       "timeout_s": tag_map.timeout_s},
        "scan_groups": {g.name: g.period_ms for g in tag_map.scan_groups},
    }
    if tag_map.roles:
        document["roles"] = dict(tag_map.roles)
    if tag_map.fixture is not None and not tag_map.fixture.even_split:
        f = tag_map.fixture
        document["fixture"] = {"station_pitch_mm": f.station_pitch_mm,
                               "markers": [{"x_mm": m.x_mm, "y_mm": m.y_mm, "zone": m.zone} for m in f.markers],
                               "zone_area_mm2": list(f.zone_area_mm2)}
    document["tags"] = [_tag_entry(t, tag_map.protocol) for t in tag_map.tags]
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _tag_entry(tag: Tag, protocol: Protocol) -> dict:
    entry: dict = {"name": tag.name}
    if tag.description:
        entry["description"] = tag.description
    if isinstance(tag.address, ModbusAddress):
        entry["address"] = str(tag.address)  # table:address, with .bit for a bit of a register
    else:
        entry["address"] = tag.address
    entry["type"] = tag.type_text
    entry.update(access=tag.access.value, owner=tag.owner.value, unit=tag.unit)
    if (tag.scaling.gain, tag.scaling.offset) != (1.0, 0.0):
        entry["scaling"] = {"gain": tag.scaling.gain, "offset": tag.scaling.offset}
    if tag.limits is not None:
        entry["limits"] = {"min": tag.limits.min, "max": tag.limits.max}
    if protocol is Protocol.MODBUS and tag.data_type is not DataType.BOOL:
        entry["byte_order"] = tag.byte_order.value
    if tag.safe_value is not None:
        safe = tag.safe_value
        if isinstance(safe, tuple):
            safe = safe[0] if len(set(safe)) == 1 else list(safe)
        entry["safe_value"] = safe
    entry["scan_group"] = tag.scan_group
    return entry
