"""Roles: which tag of a map plays which part for the real-time core and for the supervisor, and
the station fixture a map may carry.

Owns the role catalogue `ROLES` (one `Role` each: name, default tag, the process that owns it,
whether it is required, access, shape, kind), `role_tag`, `role_problems`, `role_notes`,
`map_station_count` (over `per_station_count`, which the core's `station_count` shares), the
fixture (`MapFixture`, `even_split_fixture`) and the parsing of a map's `roles:` and `fixture:`
sections (`load_roles`, `load_fixture`, called by load.py).
Tests: tests/edge/tagmap/test_roles.py, test_commissioning.py; the loop on renamed tags: tests/edge/rtloop/test_roles_loop.py.

A map may have a top-level `roles:` mapping, role name -> tag name. A role not listed there is
played by the tag named like the role's default tag (today's names, which are the role names),
when the map has such a tag and no listed role claims it. So the shipped maps need no `roles:`.

The API, for every process and command that needs a tag by what it does:

- `role_tag(tag_map, "zone_pressure_kpa") -> Tag | None`: the tag playing the role.
- `load_tag_map` refuses (TagMapError) what the `roles:` and `fixture:` sections say wrongly on
  their own: an unknown role, a role naming a tag the map lacks, a listed tag of the wrong type or
  access for its role, one tag listed under two roles, a malformed fixture (markers, zones, areas
  > 0). It does NOT refuse a map for a role it lacks: a map is also a bus's test fixture, and
  which roles are needed depends on who runs it.
- `role_problems(tag_map, process=None) -> list[MapProblem]`: everything that keeps the owner
  processes from running the map: a required role missing (of the processes owning tags in the
  map, or of `process`), a role's tag of the wrong shape, type or access, two roles on one tag,
  the per-station tags disagreeing on the station count, the fixture's marker (zone) count
  times the station count differing from the temperature (pressure) role's size, counts that do
  not split evenly without a fixture. Each names the file and the line (the tag's, the `roles:`
  entry's or the fixture's; line 1 for a role no tag plays). `tags check` refuses a map with
  any; `rtcore run` refuses one with problems for the rtcore process.
- `role_notes(tag_map) -> list[MapProblem]`: warnings, not refusals: no `fixture:` (the core
  uses the even split, `even_split_fixture`).

The fixture: `fixture:` in a map has the form of the line file's (edge/supervisor/README.md) for
ONE station, in its own coordinates: `station_pitch_mm` (default 250), `markers: [{x_mm, y_mm,
zone}]` (zone 0..zones-1 of the station, every zone with a marker) and `zone_area_mm2: [...]`
(> 0). Station s's markers are elements s*m .. s*m+m-1 of the temperature role, its zones
s*z .. of the pressure role; station s lies at x = s * pitch. Without it the core uses the even
split: marker i of a station in zone i // (m/z), markers 50 mm apart along x, stations 250 mm
apart, a 150 x 200 mm module's area shared evenly by its zones (`EVEN_SPLIT`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge.tagmap.checker import Checker, MapProblem, Node
from edge.tagmap.model import Access, DataType, Owner, Tag, TagMap

RT, SUP = Owner.RTCORE, Owner.SUPERVISOR
R, W = Access.READ, Access.WRITE

SHAPES = ("scalar", "marker", "zone", "station", "station_or_scalar", "slot", "terminal")
"""scalar: one element. marker: N = S x markers per station. zone: Z = S x zones per station.
station: S. station_or_scalar: S, or one for the whole line. slot: K, the inbox slots (the count
of vision_battery_id). terminal: 2K (terminal t of slot k at 2k + t)."""
KINDS = ("numeric", "bool", "counter")
"""numeric: any number type (a scaled INT too). bool: BOOL. counter: an integer type."""
INTEGER_TYPES = frozenset({"SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT"})
NOT_NUMERIC = frozenset({"BOOL", "STRING"})


@dataclass(frozen=True)
class Role:
    name: str  # also the default tag's name
    process: Owner  # the process the role is for: it writes a write role, scans a read role
    required: bool  # the process does not run without it
    access: Access  # write: the tag is a write tag owned by `process`; read: the process reads it
    shape: str  # one of SHAPES
    kind: str  # one of KINDS
    what: str
    also_required_by: tuple[Owner, ...] = ()  # other processes that do not run without it
    also_read_by: tuple[Owner, ...] = ()  # other processes that read it when the map has it

    @property
    def default_tag(self) -> str:
        return self.name

    @property
    def required_by(self) -> frozenset[Owner]:
        return frozenset(((self.process,) if self.required else ()) + self.also_required_by)


ROLES: tuple[Role, ...] = (
    # the real-time core (edge/rtloop/loop.py LoopTags)
    Role("marker_temp_degc", RT, True, R, "marker", "numeric", "fixture marker temperatures, station by station"),
    Role("zone_pressure_kpa", RT, True, R, "zone", "numeric", "applied clamp pressure per fixture zone",
         also_required_by=(SUP,)),
    Role("rtcore_heartbeat", RT, True, W, "scalar", "counter", "the core's tick counter; the PLC's watchdog watches it"),
    Role("plc_heartbeat", RT, False, R, "scalar", "counter", "the PLC's counter; frozen = the PLC program stopped"),
    Role("relief_first_kpa", RT, False, W, "zone", "numeric", "S14 relief per zone"),
    Role("relief_second_kpa", RT, False, W, "zone", "numeric", "S15 relief per zone, the one the PLC applies"),
    Role("coolant_flow_lpm", RT, False, W, "station_or_scalar", "numeric", "coolant per station (or one valve)"),
    Role("discharge_permit", RT, False, W, "station_or_scalar", "bool", "the station may discharge"),
    Role("current_limit_pct", RT, False, W, "station_or_scalar", "numeric",
         "the thermal envelope, % of the setpoint (its limits' max is full scale)"),
    Role("station_safe_state", RT, False, W, "station_or_scalar", "bool", "the core isolated the station"),
    Role("safe_state", RT, False, W, "scalar", "bool", "a line-wide fault latched (or not armed)"),
    # the supervisor (edge/supervisor/flow.py REQUIRED_TAGS, PACKTAGS_*)
    Role("coolant_base_lpm", SUP, True, W, "station_or_scalar", "numeric",
         "the strategy's coolant; relief's comes on top", also_read_by=(RT,)),
    Role("discharge_current_setpoint_a", SUP, True, W, "station", "numeric", "the tier's current"),
    Role("fixture_pressure_setpoint_kpa", SUP, True, W, "station", "numeric", "the tier's clamp pressure"),
    Role("station_voltage_v", SUP, True, R, "station", "numeric", "measured module voltage"),
    Role("station_current_a", SUP, True, R, "station", "numeric", "measured station current"),
    Role("station_loaded_id", SUP, True, R, "station", "counter", "the battery at the station, -1 empty",
         also_read_by=(RT,)),
    Role("robot_order_seq", SUP, True, W, "scalar", "counter", "a change is a new robot order"),
    Role("robot_order_pick", SUP, True, W, "scalar", "counter", "the order's pick location"),
    Role("robot_order_place", SUP, True, W, "scalar", "counter", "the order's place location"),
    Role("robot_order_battery_id", SUP, True, W, "scalar", "counter", "the battery the order moves"),
    Role("robot_reset_seq", SUP, True, W, "scalar", "counter", "a change clears a robot fault"),
    Role("robot_ack_seq", SUP, True, R, "scalar", "counter", "the last order the robot accepted"),
    Role("robot_done_seq", SUP, True, R, "scalar", "counter", "the last order the robot finished"),
    Role("robot_state", SUP, True, R, "scalar", "counter", "0 idle .. 4 fault"),
    Role("robot_fault_code", SUP, True, R, "scalar", "counter", "0 none .. 6 drive fault"),
    Role("robot_holding_id", SUP, True, R, "scalar", "counter", "the battery in the gripper, -1 none"),
    Role("vision_battery_id", SUP, True, R, "slot", "counter", "the battery id per inbox slot"),
    Role("vision_frame", SUP, True, R, "slot", "counter", "frame counter per slot"),
    Role("vision_polarity", SUP, True, R, "slot", "counter", "+1, -1 reversed, 0 not seen"),
    Role("vision_confidence_pct", SUP, True, R, "slot", "numeric", "the camera's confidence per slot"),
    Role("vision_terminal_x_mm", SUP, True, R, "terminal", "numeric", "terminal x, 2 per slot"),
    Role("vision_terminal_y_mm", SUP, True, R, "terminal", "numeric", "terminal y, 2 per slot"),
    Role("packml_command", SUP, False, R, "scalar", "counter", "PackTags CntrlCmd (used with the request)"),
    Role("packml_command_request", SUP, False, R, "scalar", "counter", "PackTags CmdChangeRequest (a counter)"),
    Role("packml_state", SUP, False, W, "scalar", "counter", "PackTags StateCurrent"),
)
BY_NAME = {r.name: r for r in ROLES}
STATION_COUNT_ROLES = ("current_limit_pct", "station_safe_state", "discharge_permit")
"""The per-station roles whose count is S (a scalar permit may stand for every station)."""

# -- the fixture ---------------------------------------------------------------------------------
DEFAULT_STATION_PITCH_MM = 250.0


@dataclass(frozen=True)
class EvenSplit:
    """The fixture the core assumes for a map without `fixture:`."""

    marker_pitch_mm: float = 50.0  # between marker points of one station, along x
    station_pitch_mm: float = DEFAULT_STATION_PITCH_MM
    module_area_mm2: float = 150.0 * 200.0  # one station's pressed area, shared evenly by its zones


EVEN_SPLIT = EvenSplit()


@dataclass(frozen=True)
class MarkerSpot:
    x_mm: float  # in the station's own coordinates
    y_mm: float
    zone: int  # the station's zone, 0..zones-1


@dataclass(frozen=True)
class MapFixture:
    """One station's fixture (every station alike); `line` is the `fixture:` key's line, 0 for
    the even split."""

    markers: tuple[MarkerSpot, ...]
    zone_area_mm2: tuple[float, ...]
    station_pitch_mm: float = DEFAULT_STATION_PITCH_MM
    line: int = 0
    even_split: bool = False

    @property
    def markers_per_station(self) -> int:
        return len(self.markers)

    @property
    def zones_per_station(self) -> int:
        return len(self.zone_area_mm2)


def even_split_fixture(markers_per_station: int, zones_per_station: int, split: EvenSplit = EVEN_SPLIT) -> MapFixture:
    """The fixture without `fixture:`: marker i of a station in zone i // (m/z), along x at
    split.marker_pitch_mm, the module's area shared evenly by the zones. ValueError when m % z."""
    m, z = markers_per_station, zones_per_station
    if z < 1 or m < 1 or m % z:
        raise ValueError(f"{m} marker points a station do not split evenly over {z} zones")
    per_zone = m // z
    markers = tuple(MarkerSpot(i * split.marker_pitch_mm, 0.0, i // per_zone) for i in range(m))
    return MapFixture(markers, (split.module_area_mm2 / z,) * z, split.station_pitch_mm, 0, True)


class RoleTable(dict):
    """The map's `roles:` section, role -> tag name; `lines` holds each entry's line."""

    def __init__(self, items=(), lines=None):
        super().__init__(items)
        self.lines: dict[str, int] = dict(lines or {})


# -- finding the tag of a role -------------------------------------------------------------------
def role(name: str) -> Role:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no role {name!r}; the roles: {', '.join(BY_NAME)}") from None


def role_tag(tag_map: TagMap, role_name: str) -> Tag | None:
    """The tag playing `role_name` in `tag_map`: the one `roles:` names, else the tag named like
    the role's default when no listed role claims it; None when none. KeyError: no such role."""
    r = role(role_name)
    listed = tag_map.roles or {}
    if r.name in listed:
        return tag_map.tag(listed[r.name])
    if r.default_tag in listed.values():  # the default-named tag plays another role
        return None
    return tag_map.tag(r.default_tag)


def role_tag_name(tag_map: TagMap, role_name: str) -> str | None:
    tag = role_tag(tag_map, role_name)
    return tag.name if tag is not None else None


def per_station_count(tag_map: TagMap, current_limit: Tag | None, station_safe_state: Tag | None,
                      permit: Tag | None) -> int | None:
    """S from the per-station tags given (a scalar current limit or station-safe tag: one station;
    a scalar permit alone may stand for every station of a line), which must agree (ValueError
    naming the file and the tags); None when none of them counts stations."""
    counts = {}
    for tag, is_permit in ((current_limit, False), (station_safe_state, False), (permit, True)):
        if tag is not None and (tag.is_array or not is_permit):
            counts[tag.name] = tag.count
    if len(set(counts.values())) > 1:
        raise ValueError(f"{tag_map.source}: the per-station tags disagree on the station count: "
                         + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return next(iter(counts.values())) if counts else None


def map_station_count(tag_map: TagMap) -> int:
    """S: the count of the per-station roles (current limit, station safe state, permit array),
    which must agree; a map with none of them has one zone a station. ValueError naming the file
    when they disagree or the map has no pressure role either."""
    counted = per_station_count(tag_map, *(role_tag(tag_map, name) for name in STATION_COUNT_ROLES))
    if counted is not None:
        return counted
    pressures = role_tag(tag_map, "zone_pressure_kpa")
    if pressures is None:
        raise ValueError(f"{tag_map.source}: no tag plays role 'zone_pressure_kpa' (the zone pressures) and no "
                         f"per-station tag gives the station count; the real-time core needs it")
    return pressures.count


def station_fixture(tag_map: TagMap, n_stations: int) -> MapFixture:
    """The map's fixture, or the even split of its temperature and pressure roles over
    `n_stations` (ValueError naming the file when they do not split)."""
    if tag_map.fixture is not None:
        return tag_map.fixture
    temps, pressures = role_tag(tag_map, "marker_temp_degc"), role_tag(tag_map, "zone_pressure_kpa")
    if temps is None or pressures is None:
        missing = "marker_temp_degc" if temps is None else "zone_pressure_kpa"
        raise ValueError(f"{tag_map.source}: no tag plays role {missing!r}; the real-time core needs it")
    n, z = temps.count, pressures.count
    if n % z:
        raise ValueError(f"{tag_map.source}: {n} marker points do not split evenly over {z} zones")
    if n_stations < 1 or z % n_stations:
        raise ValueError(f"{tag_map.source}: {z} zones do not split evenly over {n_stations} stations")
    return even_split_fixture(n // n_stations, z // n_stations)


# -- checks --------------------------------------------------------------------------------------
def _kind_ok(kind: str, data_type: DataType) -> bool:
    name = data_type.value
    if kind == "bool":
        return name == "BOOL"
    if kind == "counter":
        return name in INTEGER_TYPES
    return name not in NOT_NUMERIC


def _kind_text(kind: str) -> str:
    return {"bool": "BOOL", "counter": "an integer type (INT, DINT, ...)",
            "numeric": "a number type (REAL, INT, DINT, ...; not BOOL or STRING)"}[kind]


def _form_problems(r: Role, tag: Tag) -> list[str]:
    """What is wrong with `tag` playing `r`, apart from its size."""
    out = []
    if not _kind_ok(r.kind, tag.data_type):
        out.append(f"is {tag.data_type.value}; role {r.name!r} needs {_kind_text(r.kind)}")
    if r.access is W and (tag.access is not W or tag.owner is not r.process):
        out.append(f"is a {tag.access.value} tag of {tag.owner.value}; role {r.name!r} needs a write tag owned by "
                   f"{r.process.value} (it writes it)")
    if r.access is R and tag.access is W and tag.owner is r.process:
        out.append(f"is a write tag of {tag.owner.value}; role {r.name!r} is read by {r.process.value}, "
                   f"which must not write it")
    if r.name == "current_limit_pct" and tag.limits is None:
        out.append("has no limits; role 'current_limit_pct' needs them (their max is full scale, 100 %)")
    return out


def _size_problem(r: Role, tag: Tag, s: int | None, k: int | None) -> str | None:
    n = tag.count
    if r.shape == "scalar":
        want, ok = "one element", n == 1
    elif s is None:
        return None
    elif r.shape in ("marker", "zone"):
        want, ok = f"a multiple of the {s} stations", n % s == 0
    elif r.shape == "station":
        want, ok = f"one per station ({s})", n == s
    elif r.shape == "station_or_scalar":
        want, ok = f"one per station ({s}) or one for the line", n in (s, 1)
    elif k is None:
        return None
    elif r.shape == "slot":
        want, ok = f"one per inbox slot ({k}, the count of the vision_battery_id role)", n == k
    else:  # terminal
        want, ok = f"two per inbox slot ({2 * k})", n == 2 * k
    return None if ok else f"has {n} elements; role {r.name!r} needs {want}"


def declared_problems(tag_map: TagMap) -> list[MapProblem]:
    """What the `roles:` section says wrongly on its own (load_tag_map refuses these): the form
    of a listed tag for its role and a tag listed twice. Unknown roles and absent tags are
    refused while parsing (`load_roles`)."""
    listed = tag_map.roles or {}
    lines = getattr(listed, "lines", {})
    out, seen = [], {}
    for name, tag_name in listed.items():
        tag, r = tag_map.tag(tag_name), BY_NAME.get(name)
        if tag is None or r is None:
            continue
        line = lines.get(name, tag.source_line)
        if tag_name in seen:
            out.append(MapProblem(tag_map.source, line, tag_name, f"plays role {name!r} and role {seen[tag_name]!r}; "
                                                                  "a tag plays one role"))
        seen[tag_name] = name
        out += [MapProblem(tag_map.source, line, tag_name, f"listed under roles: {m}") for m in _form_problems(r, tag)]
    return out


def role_problems(tag_map: TagMap, process: Owner | None = None) -> list[MapProblem]:
    """Every problem that keeps the processes owning tags in `tag_map` (or `process`) from running
    it; each names the file and a line. Empty: the map is fit for them."""
    source = tag_map.source
    processes = {process} if process is not None else {t.owner for t in tag_map.tags}
    listed = tag_map.roles or {}
    lines = getattr(listed, "lines", {})
    out: list[MapProblem] = []
    players: dict[str, list[str]] = {}
    playing: dict[str, Tag] = {}
    for r in ROLES:
        tag = role_tag(tag_map, r.name)
        if tag is None:
            needing = sorted(p.value for p in r.required_by & processes)
            if needing:
                how = (f"roles: names {listed[r.name]!r}, which the map lacks" if r.name in listed
                       else f"name a tag {r.default_tag!r} or list the role under roles:")
                out.append(MapProblem(source, lines.get(r.name, 1), None,
                                      f"no tag plays role {r.name!r} ({r.what}), which {' and '.join(needing)} "
                                      f"{'needs' if len(needing) == 1 else 'need'}; {how}"))
            continue
        playing[r.name] = tag
        players.setdefault(tag.name, []).append(r.name)
        line = lines.get(r.name, tag.source_line)
        out += [MapProblem(source, line, tag.name, m) for m in _form_problems(r, tag)]
    for tag_name, names in players.items():
        if len(names) > 1:
            out.append(MapProblem(source, tag_map.tag(tag_name).source_line, tag_name,
                                  f"plays roles {', '.join(map(repr, names))}; a tag plays one role"))
    try:
        s = map_station_count(tag_map) if "zone_pressure_kpa" in playing or any(
            n in playing for n in STATION_COUNT_ROLES) else None
    except ValueError as exc:
        first = next(t for n, t in playing.items() if n in STATION_COUNT_ROLES)
        out.append(MapProblem(source, first.source_line, None, str(exc).split(": ", 1)[1]))
        s = None
    slots = playing.get("vision_battery_id")
    k = slots.count if slots is not None else None
    for name, tag in playing.items():
        problem = _size_problem(BY_NAME[name], tag, s, k)
        if problem:
            out.append(MapProblem(source, lines.get(name, tag.source_line), tag.name, problem))
    base, coolant = playing.get("coolant_base_lpm"), playing.get("coolant_flow_lpm")
    if base is not None and coolant is not None and base.count != coolant.count:
        out.append(MapProblem(source, base.source_line, base.name, f"has {base.count} elements, the coolant role's "
                              f"{coolant.name!r} {coolant.count}; the base flow is per coolant valve"))
    if s is not None:
        out += _fixture_problems(tag_map, playing, s)
    return sorted(set(out), key=lambda p: (p.line, p.message))


def _fixture_problems(tag_map: TagMap, playing: dict[str, Tag], s: int) -> list[MapProblem]:
    source, fixture = tag_map.source, tag_map.fixture
    temps, pressures = playing.get("marker_temp_degc"), playing.get("zone_pressure_kpa")
    out = []
    if fixture is None:
        if temps is not None and pressures is not None:
            try:
                station_fixture(tag_map, s)
            except ValueError as exc:
                out.append(MapProblem(source, temps.source_line, temps.name,
                                      str(exc).split(": ", 1)[1] + " (the even split a map without fixture: gets)"))
        return out
    for tag, per_station, what in ((temps, fixture.markers_per_station, "marker"),
                                   (pressures, fixture.zones_per_station, "zone")):
        if tag is not None and tag.count != s * per_station:
            out.append(MapProblem(source, fixture.line, None,
                                  f"fixture: {per_station} {what}s a station x {s} stations = {s * per_station}; "
                                  f"allowed: the {tag.name!r} tag's {tag.count} elements (line {tag.source_line})"))
    return out


def role_notes(tag_map: TagMap) -> list[MapProblem]:
    """Warnings, not refusals: a map of the core's roles without `fixture:` (the even split)."""
    if tag_map.fixture is not None or role_tag(tag_map, "marker_temp_degc") is None:
        return []
    s = EVEN_SPLIT
    return [MapProblem(tag_map.source, 1, None,
                       f"warning: no fixture: section; the core assumes the even split (markers {s.marker_pitch_mm:g} mm "
                       f"apart along x, stations {s.station_pitch_mm:g} mm apart, a {s.module_area_mm2:g} mm2 module "
                       "shared evenly by its zones); give the fixture's geometry (plc_tags/README.md)")]


# -- parsing (load.py) ---------------------------------------------------------------------------
def load_roles(check: Checker, top: Node, tags: list[Tag]) -> RoleTable:
    """The `roles:` section: role name -> tag name, each a known role and a tag of the map."""
    raw = top.get("roles")
    if raw is None:
        return RoleTable()
    line = top.key_lines["roles"]
    if not isinstance(raw, Node):
        check.fail(line, "roles must be a mapping of role name -> tag name")
        return RoleTable()
    names = {t.name for t in tags}
    refused = {e.get("name") for e in top.get("tags") or () if isinstance(e, dict)} - names  # their own lines say why
    table = RoleTable()
    for name, tag_name in raw.items():
        at = raw.key_lines[name]
        if name not in BY_NAME:
            check.fail(at, f"roles: unknown role {name!r}; allowed: {', '.join(BY_NAME)}")
        elif not isinstance(tag_name, str) or not tag_name:
            check.fail(at, f"roles: {name} is {tag_name!r}; allowed: the name of a tag of this map")
        elif tag_name in refused:
            continue  # a tag of the map refused on its own line: not 'which the map lacks'
        elif tag_name not in names:
            check.fail(at, f"roles: {name} names tag {tag_name!r}, which the map lacks", tag_name)
        else:
            table[name] = tag_name
            table.lines[name] = at
    return table


FIXTURE_KEYS = {"station_pitch_mm", "markers", "zone_area_mm2"}


def load_fixture(check: Checker, top: Node) -> MapFixture | None:
    """The `fixture:` section: one station's markers {x_mm, y_mm, zone} and zone areas."""
    raw = top.get("fixture")
    if raw is None:
        return None
    line = top.key_lines["fixture"]
    node = check.mapping(raw, line, "fixture", FIXTURE_KEYS)
    if node is None:
        return None
    before = len(check.problems)
    for key in ("markers", "zone_area_mm2"):
        if key not in node:
            check.fail(line, f"fixture.{key} is missing; it is required")
    pitch = node.get("station_pitch_mm", DEFAULT_STATION_PITCH_MM)
    pitch_line = node.key_lines.get("station_pitch_mm", line)
    if check.number(pitch, pitch_line, "fixture.station_pitch_mm") is not None and pitch <= 0:
        check.fail(pitch_line, f"fixture.station_pitch_mm is {pitch}; allowed: > 0 mm")
    areas = _areas(check, node, line)
    markers = _markers(check, node, line, len(areas) if areas is not None else None)
    if len(check.problems) > before or areas is None or markers is None:
        return None
    used = {m.zone for m in markers}
    empty = [z for z in range(len(areas)) if z not in used]
    if empty:
        check.fail(node.key_lines["markers"], f"fixture.markers: zone(s) {empty} have no marker; allowed: every "
                   f"zone of zone_area_mm2 ({len(areas)}) with at least one marker")
        return None
    return MapFixture(tuple(markers), tuple(areas), float(pitch), line)


def _areas(check: Checker, node: Node, line: int) -> list[float] | None:
    raw = node.get("zone_area_mm2")
    at = node.key_lines.get("zone_area_mm2", line)
    if not isinstance(raw, list) or not raw:
        if "zone_area_mm2" in node:
            check.fail(at, "fixture.zone_area_mm2 must be a non-empty list of areas in mm2, one per zone of a station")
        return None
    out = []
    for i, a in enumerate(raw):
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0:
            check.fail(at, f"fixture.zone_area_mm2[{i}] is {a!r}; allowed: a finite area > 0 mm2")
        else:
            out.append(float(a))
    return out if len(out) == len(raw) else None


def _markers(check: Checker, node: Node, line: int, zones: int | None) -> list[MarkerSpot] | None:
    raw = node.get("markers")
    at = node.key_lines.get("markers", line)
    if not isinstance(raw, list) or not raw:
        if "markers" in node:
            check.fail(at, "fixture.markers must be a non-empty list of {x_mm, y_mm, zone}, one station's markers")
        return None
    out = []
    for i, m in enumerate(raw):
        what = f"fixture.markers[{i}]"
        entry = check.mapping(m, at, what, {"x_mm", "y_mm", "zone"})
        if entry is None:
            continue
        mline = entry.line
        x = check.number(entry.get("x_mm"), entry.key_lines.get("x_mm", mline), f"{what}.x_mm")
        y = check.number(entry.get("y_mm"), entry.key_lines.get("y_mm", mline), f"{what}.y_mm")
        zone = entry.get("zone")
        if isinstance(zone, bool) or not isinstance(zone, int) or zone < 0 or (zones is not None and zone >= zones):
            allowed = f"0..{zones - 1}, a zone of zone_area_mm2" if zones else "a zone of zone_area_mm2"
            check.fail(entry.key_lines.get("zone", mline), f"{what}.zone is {zone!r}; allowed: {allowed}")
            continue
        if x is not None and y is not None:
            out.append(MarkerSpot(x, y, zone))
    return out if len(out) == len(raw) else None


__all__ = ["BY_NAME", "EVEN_SPLIT", "EvenSplit", "MapFixture", "MarkerSpot", "ROLES", "Role", "RoleTable",
           "declared_problems", "even_split_fixture", "load_fixture", "load_roles", "map_station_count",
           "per_station_count", "role", "role_notes", "role_problems", "role_tag", "role_tag_name", "station_fixture"]
