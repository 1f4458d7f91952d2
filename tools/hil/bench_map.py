"""What the bench's PLC needs of a tag map: its tags by role, its stations, zones and markers.

Owns `BenchLayout` (`bench_layout(tag_map, cells_per_module)`), `bench_tag` and `plant_marker_positions`.
The bench's program (edge/batterymodel/plc.py) keys every value by the role's default tag name
(`marker_temp_degc`, `discharge_permit`, ...); a map may give a role another tag (its `roles:`
section, edge.tagmap.roles). `BenchLayout.served` says which served tag plays each of those keys,
`to_served`/`from_served` rename a scan's values both ways, so a map of other names serves the
same program. A role the map does not have: the bench reads its default (`ABSENT_DEFAULTS`: no
current setpoint = no current, the clamp at 150 kPa, limit 100 %, no relief, no coolant) and does
not publish it. Required: the temperature and pressure roles, the core's heartbeat (the PLC's
watchdog) and the permit.

Stations, zones, markers: S as the core counts it (edge.rtloop.loop.station_count, by role),
Z / S zones and N / S markers a station. The plant's markers (fractions 0..1 along the module's
cells) follow the map's `fixture:` (TagMap.fixture: one station's markers with x_mm and zone)
when it has one, else the core's even split (marker i of a station in zone i // (N/Z), evenly
spaced): spaced as their x along the module when each then lies over a cell of its own zone (the
default 0, 1/3, 2/3, 1 of 4 markers in 2 zones of 6 cells), else spread over their own zone's
cells in x order. Tests: tests/tools/hil/test_bench_map.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.batterymodel.plc import COMMANDS, HEARTBEAT, STATION_LOADED
from edge.placement.robot import ROBOT_READS, ROBOT_WRITES
from edge.placement.vision import VISION_TAGS
from edge.tagmap import TagMap

TEMPS, PRESSURES, PLC_HEARTBEAT, PERMIT = "marker_temp_degc", "zone_pressure_kpa", "plc_heartbeat", "discharge_permit"
MEASURED = ("station_voltage_v", "station_current_a")
ROBOT_CELL = (*ROBOT_WRITES, *ROBOT_READS, *VISION_TAGS, STATION_LOADED)
REQUIRED = (TEMPS, PRESSURES, HEARTBEAT, PERMIT)
"""Without these the bench's PLC cannot run: its sensors, its watchdog, the core's permit."""
ABSENT_DEFAULTS = {"discharge_current_setpoint_a": 0.0, "fixture_pressure_setpoint_kpa": 150.0,
                   "current_limit_pct": 100.0, "relief_second_kpa": 0.0, "coolant_flow_lpm": 0.0}
"""What the PLC program reads for a command role the map lacks (a line whose PLC sets it itself)."""
KEYS = (*REQUIRED, PLC_HEARTBEAT, *COMMANDS, *MEASURED, *ROBOT_CELL)


def bench_tag(tag_map: TagMap, key: str):
    """The tag playing the role whose default tag name is `key` (edge.tagmap.roles.role_tag), or
    the map's tag of that name while the roles module is not there; None when the map has none."""
    try:
        from edge.tagmap.roles import ROLES, role_tag
    except ImportError:
        return tag_map.tag(key)
    for role in ROLES:
        if getattr(role, "default_tag", None) == key:
            return role_tag(tag_map, role.name)
    return tag_map.tag(key)


def station_count(tag_map: TagMap) -> int:
    """S as the core counts it: edge.tagmap.roles.map_station_count, or (before roles) the count
    of the per-station tags (current limit, station safe state, the permit array), which must
    agree, else the zone pressures' count (one zone a station). ValueError names the file."""
    try:
        from edge.tagmap.roles import map_station_count
    except ImportError:
        pass
    else:
        return map_station_count(tag_map)
    counts = {}
    for key in ("current_limit_pct", "station_safe_state", PERMIT):
        tag = bench_tag(tag_map, key)
        if tag is not None and (tag.is_array or key != PERMIT):
            counts[tag.name] = tag.count
    if len(set(counts.values())) > 1:
        raise ValueError(f"{tag_map.source}: the per-station tags disagree on the station count: "
                         + ", ".join(f"{name} {count}" for name, count in counts.items()))
    if counts:
        return next(iter(counts.values()))
    return bench_tag(tag_map, PRESSURES).count


def _field(item, name: str):
    return item[name] if isinstance(item, dict) else getattr(item, name)


def fixture_markers(fixture) -> tuple[np.ndarray, np.ndarray] | None:
    """(x_mm, zone) of one station's markers from a map's fixture (object or mapping), or None."""
    if fixture is None or getattr(fixture, "even_split", False):
        return None
    markers = _field(fixture, "markers")
    return (np.array([float(_field(m, "x_mm")) for m in markers]),
            np.array([int(_field(m, "zone")) for m in markers], dtype=int))


def plant_marker_positions(x_mm: np.ndarray, zone: np.ndarray, n_zones: int, cells_per_module: int) -> tuple:
    """Fractions along the module (0 = first cell) for markers at x_mm in `zone` (module docstring)."""
    n_markers = len(x_mm)
    if n_markers == 0 or (zone < 0).any() or (zone >= n_zones).any():
        raise ValueError(f"marker zones {zone.tolist()} are not all in 0..{n_zones - 1}")
    cell_zone = np.arange(cells_per_module) * n_zones // cells_per_module
    span = float(x_mm.max() - x_mm.min())
    along = (x_mm - x_mm.min()) / span if span > 0 else np.full(n_markers, 0.5)
    nearest = np.rint(along * (cells_per_module - 1)).astype(int)
    if (cell_zone[nearest] == zone).all():
        return tuple(float(a) for a in along)
    positions = np.empty(n_markers)
    for z in range(n_zones):
        mine = np.flatnonzero(zone == z)
        if not mine.size:
            continue
        cells = np.flatnonzero(cell_zone == z)
        first, last = cells[0], cells[-1]
        xs = x_mm[mine]
        width = float(xs.max() - xs.min())
        share = (xs - xs.min()) / width if width > 0 else np.full(mine.size, 0.5)
        positions[mine] = (first + share * (last - first)) / max(cells_per_module - 1, 1)
    return tuple(float(p) for p in positions)


@dataclass(frozen=True)
class BenchLayout:
    """A map as the bench serves it (module docstring)."""

    served: dict  # key (the role's default tag name) -> the served tag's name, for every key the map has
    n_stations: int
    zones_per_station: int
    markers_per_station: int
    marker_positions: tuple  # the plant's marker fractions along a module
    from_fixture: bool  # the positions follow the map's fixture (False: the even split)
    scalars: frozenset = frozenset()  # keys whose served tag is one value (a one-station map's zone, ...)

    def has(self, key: str) -> bool:
        return key in self.served

    def to_served(self, values: dict) -> dict:
        """Values keyed by role (default name) -> by served tag name; keys the map lacks are dropped,
        a one-element sequence for a scalar tag is its element."""
        return {self.served[k]: (v[0] if k in self.scalars and isinstance(v, (tuple, list)) and len(v) == 1 else v)
                for k, v in values.items() if k in self.served}

    def from_served(self, values: dict) -> dict:
        back = {name: key for key, name in self.served.items()}
        return {back[name]: v for name, v in values.items()}


def bench_layout(tag_map: TagMap, cells_per_module: int) -> BenchLayout:
    """The bench's view of `tag_map`; ValueError naming the file when it cannot serve it."""
    served = {}
    for key in KEYS:
        tag = bench_tag(tag_map, key)
        if tag is not None:
            served[key] = tag.name
    missing = [k for k in REQUIRED if k not in served]
    if missing:
        raise ValueError(f"{tag_map.source}: the bench's PLC needs the roles {', '.join(missing)} "
                         "(a tag of that name, or one named in the map's roles: section)")
    n_stations = station_count(tag_map)
    n_markers, n_zones = tag_map.tag(served[TEMPS]).count, tag_map.tag(served[PRESSURES]).count
    points = fixture_markers(getattr(tag_map, "fixture", None))
    if n_zones % n_stations or n_markers % n_stations or (points is None and n_markers % n_zones):
        raise ValueError(f"{tag_map.source}: {n_markers} markers, {n_zones} zones and {n_stations} stations do "
                         "not nest (zones and markers a whole number a station; without a fixture, markers a "
                         "whole number a zone)")
    zones, markers = n_zones // n_stations, n_markers // n_stations
    if zones > cells_per_module:
        raise ValueError(f"{tag_map.source}: {zones} zones a station; the bench's module has {cells_per_module} "
                         "cells, at most one zone a cell")
    if points is not None:
        x_mm, zone = points
        if len(x_mm) != markers:
            raise ValueError(f"{tag_map.source}: the fixture has {len(x_mm)} markers a station; "
                             f"{served[TEMPS]} has {markers} ({n_markers} / {n_stations} stations)")
    else:
        x_mm, zone = np.arange(markers, dtype=float), np.arange(markers) // (markers // zones)
    try:
        positions = plant_marker_positions(x_mm, zone, zones, cells_per_module)
    except ValueError as exc:
        raise ValueError(f"{tag_map.source}: fixture: {exc}") from exc
    scalars = frozenset(k for k, name in served.items() if not tag_map.tag(name).is_array)
    return BenchLayout(served, n_stations, zones, markers, positions, points is not None, scalars)

