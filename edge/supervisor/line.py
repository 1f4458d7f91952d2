"""The line file: one YAML file per line, loaded into a frozen `LineConfig` and checked whole.

Owns `load_line(path) -> LineConfig` and the dataclasses it fills: the PLC maps (loaded with
`edge.tagmap.load_tag_map` and checked against the stations), stations and channels, the fixture
geometry of each station (its common part must agree with the rtcore map's `fixture:` when the
map has one; `rtcore run --line` gives the core the line's), routes per chemistry, model
folders, limits, state dir, inbox, the operator page and `serve:` (kept as written, a mapping).
The rtcore map must give the core its roles, the supervisor map the supervisor's
(edge/tagmap/roles.py `role_problems`; the checks here find the supervisor's tags by role too). The
file is read bounded (`edge.tagmap.checker.read_bounded_text`: a regular file only, at most 2 MiB,
UTF-8 or refused with the line and byte offset), so a FIFO or a device is refused, never read. A
file with any problem is refused whole: `LineError` lists every problem as `FILE:LINE: key.path:
what is allowed`, like the tag maps. Keys and units: edge/supervisor/README.md.
Tests: tests/edge/supervisor/test_line.py, test_line_input.py, test_flow_roles.py,
tests/edge/rtloop/test_roles_line.py.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.limits import SHIPPED_MODELS_DIR
from edge.placement.robot import HandshakeTimeouts
from edge.placement.vision import VisionRules
from edge.rtloop.loop import LoopTags, station_count
from edge.supervisor.historian import HistorySettings
from edge.tagmap import Owner, TagMap, TagMapError, load_tag_map
from edge.tagmap.roles import DEFAULT_STATION_PITCH_MM, MarkerSpot, role_problems, role_tag
from edge.tagmap.checker import Node, read_yaml
from rtcore.spec import Fixture

DEFAULT_MODELS_DIR = SHIPPED_MODELS_DIR
DEFAULT_LINK = "discharge-edge-rtcore"  # the rtcore CLI's default link (edge/rtloop/cli.py)
DEFAULT_TIERS = 4  # edge.grading.tiers.TierConfig.n_tiers
DEFAULT_INBOX = "inbox"  # under the state dir
DEFAULT_OPERATOR_PORT = 8080
DEFAULT_CELLS_PER_MODULE = 6  # the bench's modules (edge.batterymodel PlantConfig)
MAX_CELLS_PER_MODULE = 400
DATABASE_FILE = "supervisor.sqlite"
SOC_GAN_METADATA = "soc_gan.json"  # edge/grading/soc_model.py METADATA_FILE
RL_POLICY_METADATA = "rl_policy.json"  # edge/strategy/policy.py METADATA_FILE
# The supervisor's per-station roles: when a map has a tag playing one, its count must be the station count.
SUPERVISOR_STATION_TAGS = ("discharge_current_setpoint_a", "fixture_pressure_setpoint_kpa",
                           "coolant_base_lpm", "station_voltage_v", "station_current_a")

TOP_KEYS = {"name", "state_dir", "tiers", "maps", "rtcore_link", "stations", "channels", "fixture",
            "routes", "models", "limits", "inbox", "operator_page", "placement", "history", "serve"}
REQUIRED_TOP = ("name", "maps", "stations", "channels", "fixture", "routes", "limits")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")


# -- the model ------------------------------------------------------------------------------------
class RouteKind(enum.Enum):
    SECOND_LIFE = "second_life"
    RECYCLING = "recycling"


@dataclass(frozen=True)
class Route:
    """Where a chemistry's discharge ends: the cut-off, and the floor a rested cell must stay
    under (a rebound above it means discharge again), per destination. Volts per cell."""

    chemistry: str
    cutoff_v_per_cell: float
    second_life_floor_v_per_cell: float
    recycling_floor_v_per_cell: float

    def floor_v_per_cell(self, kind: RouteKind) -> float:
        if kind is RouteKind.SECOND_LIFE:
            return self.second_life_floor_v_per_cell
        return self.recycling_floor_v_per_cell


@dataclass(frozen=True)
class Routes:
    default: RouteKind  # the destination when the grade does not decide
    default_chemistry: str  # a battery whose chemistry is not known
    chemistries: tuple[Route, ...]

    def for_chemistry(self, chemistry: str | None = None) -> Route:
        """The route of `chemistry` (None: the default chemistry); KeyError names the known ones."""
        name = self.default_chemistry if chemistry is None else chemistry
        for route in self.chemistries:
            if route.chemistry == name:
                return route
        raise KeyError(f"no route for chemistry {name!r}; the line has {[r.chemistry for r in self.chemistries]}")


@dataclass(frozen=True)
class StationLayout:
    count: int  # S
    zones: int  # fixture zones per station
    markers: int  # marker points per station
    cells_per_module: int = DEFAULT_CELLS_PER_MODULE  # cells in series: module voltage / this = volts per cell


@dataclass(frozen=True)
class Channel:
    name: str
    stations: tuple[int, ...]  # 0-based station indices; a channel serves one station at a time


@dataclass(frozen=True)
class StationFixture:
    markers: tuple[MarkerSpot, ...]  # the one marker type of a station fixture, the map's too
    zone_area_mm2: tuple[float, ...]


@dataclass(frozen=True)
class Models:
    soc_gan_dir: Path  # holds soc_gan.json and the .onnx it names
    rl_policy_dir: Path  # holds rl_policy.json and the .onnx it names


@dataclass(frozen=True)
class LineLimits:
    warning_degc: float
    temp_limit_degc: float
    max_current_a: float
    max_coolant_lpm: float


@dataclass(frozen=True)
class OperatorPage:
    host: str
    port: int


@dataclass(frozen=True)
class Placement:
    """S13: the inbox slots, the vision checks and the robot handshake's timing (contract S13.md)."""

    slots: int = 4
    positive_mm: tuple[float, float] = (-40.0, 0.0)  # expected terminal positions in the slot frame
    negative_mm: tuple[float, float] = (40.0, 0.0)
    tolerance_mm: float = 3.0
    min_confidence_pct: float = 80.0
    max_frame_age_s: float = 2.0
    ack_timeout_s: float = 2.0
    motion_timeout_s: float = 30.0
    retries: int = 1
    vision_frames: int = 3  # fresh frames refused in a row before a battery goes to the reject lane
    clamp_tolerance_pct: float = 5.0  # a zone is clamped at >= setpoint x (1 - this / 100)
    clamp_timeout_s: float = 60.0  # a clamp not reached in this long: the station to fault, the battery rejected

    def vision_rules(self) -> VisionRules:
        return VisionRules(self.positive_mm, self.negative_mm, self.tolerance_mm, self.min_confidence_pct,
                           self.max_frame_age_s)

    def timeouts(self) -> HandshakeTimeouts:
        return HandshakeTimeouts(self.ack_timeout_s, self.motion_timeout_s, self.retries,
                                 reset_timeout_s=max(self.ack_timeout_s, 10.0))


@dataclass(frozen=True)
class StatePaths:
    state_dir: Path
    inbox: Path  # arrival-test CSVs are dropped here
    database: Path  # supervisor.sqlite


@dataclass(frozen=True)
class LineConfig:
    """One line, as loaded from one line file; every path is absolute."""

    name: str
    source: Path
    state_dir: Path | None  # None: the command line's --state-dir or the default state dir
    tiers: int
    rtcore_map: TagMap
    supervisor_map: TagMap  # may be the same file as rtcore_map
    rtcore_link: str
    stations: StationLayout
    channels: tuple[Channel, ...]
    fixtures: tuple[StationFixture, ...]  # one per station, station-local coordinates
    station_pitch_mm: float  # station s lies at x = s * pitch along the line
    routes: Routes
    models: Models
    limits: LineLimits
    inbox: Path  # relative: under the state dir (default <state dir>/inbox)
    operator_page: OperatorPage
    placement: Placement = Placement()
    history: HistorySettings = HistorySettings()
    serve: dict = field(default_factory=dict)  # the `serve:` mapping as written, unparsed (a Node: its
    # key_lines give each key's line; issue 18 reads it); {} when absent

    def channel_of(self, station: int) -> Channel:
        for channel in self.channels:
            if station in channel.stations:
                return channel
        raise KeyError(f"station {station} is in no channel of line {self.name!r}")

    def state_paths(self, override: Path | None = None, default: Path | None = None) -> StatePaths:
        """The state dir: `override` (the command line), else the file's, else `default`."""
        state_dir = override or self.state_dir or default
        if state_dir is None:
            raise ValueError(f"{self.source}: no state_dir in the line file and none given")
        state_dir = Path(state_dir).resolve()
        return StatePaths(state_dir, state_dir / self.inbox, state_dir / DATABASE_FILE)

    def rtcore_fixture(self) -> Fixture:
        """The whole line's fixture for the core: markers and zones numbered station by station."""
        xy, marker_zone, area, zone_station = [], [], [], []
        for s, fixture in enumerate(self.fixtures):
            base_zone = s * self.stations.zones
            xy += [(s * self.station_pitch_mm + m.x_mm, m.y_mm) for m in fixture.markers]
            marker_zone += [base_zone + m.zone for m in fixture.markers]
            area += list(fixture.zone_area_mm2)
            zone_station += [s] * len(fixture.zone_area_mm2)
        return Fixture(np.array(xy, float), np.array(marker_zone), np.array(area, float),
                       zone_station=np.array(zone_station, dtype=np.int32))


# -- problems -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineProblem:
    file: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class LineError(ValueError):
    """A line file that must not be used; `problems` lists every problem found."""

    def __init__(self, problems: list[LineProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _Reader:
    """Reads located YAML into plain values, collecting a problem per bad field."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[LineProblem] = []

    def fail(self, line: int, key: str, message: str) -> None:
        self.problems.append(LineProblem(self.path, line, key, message))

    @staticmethod
    def line_of(node: Node, key: Any) -> int:
        return node.key_lines.get(key, node.line)

    def section(self, parent: Node, key: str, path: str, allowed: set[str], required=()) -> Node | None:
        """The mapping at parent[key] with unknown keys refused and required ones demanded."""
        if key not in parent:
            return None
        value = parent[key]
        if not isinstance(value, Node):
            self.fail(self.line_of(parent, key), path, "must be a mapping")
            return None
        for k in value:
            if k not in allowed:
                self.fail(value.key_lines[k], f"{path}.{k}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for k in required:
            if k not in value:
                self.fail(value.line, f"{path}.{k}", "missing; it is required")
        return value

    def number(self, node: Node, key: str, path: str, default: float | None = None, *, low: float | None = None,
               high: float | None = None, above: float | None = None, unit: str = "") -> float | None:
        if key not in node:
            return default
        raw, line = node[key], self.line_of(node, key)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            self.fail(line, path, f"is {raw!r}; allowed: a finite number{f' in {unit}' if unit else ''}")
            return None
        if (above is not None and raw <= above) or (low is not None and raw < low) or (high is not None and raw > high):
            self.fail(line, path, f"is {raw}{' ' + unit if unit else ''}; allowed: {_range(low, high, above)}")
            return None
        return float(raw)

    def integer(self, node: Node, key: str, path: str, default: int | None, low: int, high: int) -> int | None:
        if key not in node:
            return default
        raw, line = node[key], self.line_of(node, key)
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            self.fail(line, path, f"is {raw!r}; allowed: an integer {low}..{high}")
            return None
        return raw

    def text(self, node: Node, key: str, path: str, default: str | None = None, pattern=None, what="") -> str | None:
        if key not in node:
            return default
        raw, line = node[key], self.line_of(node, key)
        if not isinstance(raw, str) or not raw or (pattern is not None and not pattern.match(raw)):
            self.fail(line, path, f"is {raw!r}; allowed: {what or 'a non-empty string'}")
            return None
        return raw


def _range(low, high, above) -> str:
    parts = [f"> {above:g}"] if above is not None else []
    parts += [f">= {low:g}"] if low is not None else []
    parts += [f"<= {high:g}"] if high is not None else []
    return " and ".join(parts)


# -- loading --------------------------------------------------------------------------------------
def load_line(path: str | Path) -> LineConfig:
    """Load and check one line file; raise `LineError` listing every problem."""
    path = Path(path).resolve()
    try:  # a regular file of at most 2 MiB, UTF-8 (never blocks on a FIFO, never reads a device)
        document, yaml_problems = read_yaml(path, empty="empty; a line file needs " + ", ".join(REQUIRED_TOP))
    except TagMapError as exc:
        raise LineError([LineProblem(path, p.line, "the file", p.message) for p in exc.problems]) from None
    read = _Reader(path)
    read.problems += [LineProblem(path, p.line, "the file", p.message) for p in yaml_problems]
    if not isinstance(document, Node):
        read.fail(1, "the file", "must be a mapping of " + ", ".join(sorted(TOP_KEYS)))
        raise LineError(read.problems)
    top = document
    for key in top:
        if key not in TOP_KEYS:
            read.fail(top.key_lines[key], str(key), f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}")
    for key in REQUIRED_TOP:
        if key not in top:
            read.fail(1, key, "missing; it is required")
    here = path.parent

    name = read.text(top, "name", "name", pattern=NAME_RE, what="a name of letters, digits, '.', '_', '-'")
    state_dir = read.text(top, "state_dir", "state_dir", what="a folder, relative to the line file")
    tiers = read.integer(top, "tiers", "tiers", DEFAULT_TIERS, 1, 20)
    link = read.text(top, "rtcore_link", "rtcore_link", DEFAULT_LINK, NAME_RE,
                     "a plain name (letters, digits, '.', '_', '-'; no '/', not starting with '.')")
    layout = _load_stations(read, top)
    maps = _load_maps(read, top, here, layout)
    channels = _load_channels(read, top, layout)
    fixtures, pitch, common = _load_fixture(read, top, layout)
    routes = _load_routes(read, top)
    models = _load_models(read, top, here)
    limits = _load_limits(read, top, maps[1] if maps else None)
    inbox = read.text(top, "inbox", "inbox", DEFAULT_INBOX, what="a folder, relative to the state dir")
    page = _load_operator_page(read, top)
    placement = _load_placement(read, top, maps[1] if maps else None)
    history = _load_history(read, top)
    if maps and common is not None:
        _check_fixture_agrees(read, top, maps[0], common, pitch)
    serve = top.get("serve") if top.get("serve") is not None else {}
    if not isinstance(serve, dict):
        read.fail(read.line_of(top, "serve"), "serve", f"is {serve!r}; allowed: a mapping")
    if read.problems:
        raise LineError(sorted(read.problems, key=lambda p: p.line))
    state_path = (here / state_dir).resolve() if state_dir else None
    return LineConfig(name, path, state_path, tiers, maps[0], maps[1], link, layout, channels, fixtures, pitch,
                      routes, models, limits, Path(inbox), page, placement, history, serve)


def _load_stations(read: _Reader, top: Node) -> StationLayout | None:
    node = read.section(top, "stations", "stations", {"count", "zones", "markers", "cells_per_module"},
                        ("count", "zones", "markers"))
    if node is None:
        return None
    count = read.integer(node, "count", "stations.count", None, 1, 256)
    zones = read.integer(node, "zones", "stations.zones", None, 1, 64)
    markers = read.integer(node, "markers", "stations.markers", None, 1, 256)
    cells = read.integer(node, "cells_per_module", "stations.cells_per_module", DEFAULT_CELLS_PER_MODULE,
                         1, MAX_CELLS_PER_MODULE)
    if zones and markers and markers % zones:
        read.fail(read.line_of(node, "markers"), "stations.markers",
                  f"is {markers}; allowed: a multiple of stations.zones ({zones}), the core splits markers evenly over zones")
        return None
    if None in (count, zones, markers):
        return None
    # a bad cells_per_module is already a problem; the rest of the layout still checks the maps and fixture
    return StationLayout(count, zones, markers, cells or DEFAULT_CELLS_PER_MODULE)


def _load_maps(read: _Reader, top: Node, here: Path, layout: StationLayout | None):
    node = read.section(top, "maps", "maps", {"rtcore", "supervisor"}, ("rtcore", "supervisor"))
    if node is None:
        return None
    loaded = {}
    for role in ("rtcore", "supervisor"):
        rel = read.text(node, role, f"maps.{role}", what="a tag-map file, relative to the line file")
        if rel is None:
            continue
        line = read.line_of(node, role)
        file = (here / rel).resolve()
        if not file.is_file():
            read.fail(line, f"maps.{role}", f"{file} does not exist; allowed: a tag-map file, relative to the line file")
            continue
        try:
            loaded[role] = load_tag_map(file)
        except TagMapError as exc:
            first = str(exc.problems[0]) if exc.problems else str(exc)
            more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            read.fail(line, f"maps.{role}", f"the tag map does not load: {first}{more}")
    if len(loaded) < 2:
        return None
    rt, sup = loaded["rtcore"], loaded["supervisor"]
    if layout is not None:
        _check_map_sizes(read, node, rt, sup, layout)
    return rt, sup


def _check_map_sizes(read: _Reader, node: Node, rt: TagMap, sup: TagMap, layout: StationLayout) -> None:
    line = read.line_of(node, "rtcore")
    problems = role_problems(rt, Owner.RTCORE)
    for problem in problems:  # the core's roles (edge/tagmap/roles.py): missing, or of the wrong shape
        read.fail(line, "maps.rtcore", f"the tag map does not give the core its roles: {problem}")
    for problem in role_problems(sup, Owner.SUPERVISOR):  # the supervisor's roles: missing, or unfit
        if problem in problems:
            continue  # one map for both processes: said for the core above
        read.fail(read.line_of(node, "supervisor"), "maps.supervisor",
                  f"the tag map does not give the supervisor its roles: {problem}")
    try:
        tags = LoopTags.for_map(rt)
    except ValueError:
        return  # said above
    for tag_name, per_station, what in ((tags.temps, layout.markers, "markers"), (tags.pressures, layout.zones, "zones")):
        tag = rt.tag(tag_name)
        want = layout.count * per_station
        if tag.count != want:
            read.fail(line, "maps.rtcore", f"{rt.source.name}: {tag_name} has {tag.count} elements; allowed: "
                      f"stations.count x stations.{what} = {layout.count} x {per_station} = {want}")
    try:
        s = station_count(rt, tags)
    except ValueError as exc:
        if not problems:
            read.fail(line, "maps.rtcore", str(exc))
    else:
        if s != layout.count:
            read.fail(line, "maps.rtcore", f"{rt.source.name} has {s} stations (its per-station tags); "
                      f"allowed: stations.count = {layout.count}")
    for role_name in SUPERVISOR_STATION_TAGS:
        tag = role_tag(sup, role_name)
        if tag is not None and tag.count != layout.count:
            read.fail(read.line_of(node, "supervisor"), "maps.supervisor", f"{sup.source.name}: {_played(tag.name, role_name)} "
                      f"has {tag.count} elements; allowed: stations.count = {layout.count}")


def _played(tag_name: str, role_name: str) -> str:
    """A tag named for the message: `tag` when it is the role's default name, else `tag (role r)`."""
    return tag_name if tag_name == role_name else f"{tag_name} (role {role_name})"


def _check_fixture_agrees(read: _Reader, top: Node, rt: TagMap, common: StationFixture, pitch: float) -> None:
    """When the rtcore map has a `fixture:` (edge/tagmap/roles.py), the line's fixture (its common
    part and pitch; `fixture.stations.<s>` may refine a station, which the core takes with
    `rtcore run --line`) must be the map's."""
    core = rt.fixture
    if core is None:
        return
    line, node = read.line_of(top, "fixture"), top["fixture"]
    where = f"{rt.source}:{core.line}"
    if common.markers != core.markers:
        ours = [(m.x_mm, m.y_mm, m.zone) for m in core.markers]
        theirs = [(m.x_mm, m.y_mm, m.zone) for m in common.markers]
        read.fail(read.line_of(node, "markers"), "fixture.markers", f"are {theirs}; the rtcore map's fixture ({where}) "
                  f"has {ours}; the two must agree")
    if list(common.zone_area_mm2) != list(core.zone_area_mm2):
        read.fail(read.line_of(node, "zone_area_mm2"), "fixture.zone_area_mm2", f"is {list(common.zone_area_mm2)}; "
                  f"the rtcore map's fixture ({where}) has {list(core.zone_area_mm2)}; the two must agree")
    if not math.isclose(pitch, core.station_pitch_mm):
        read.fail(read.line_of(node, "station_pitch_mm") if "station_pitch_mm" in node else line,
                  "fixture.station_pitch_mm", f"is {pitch:g} mm; the rtcore map's fixture ({where}) has "
                  f"{core.station_pitch_mm:g} mm; the two must agree")


def _load_channels(read: _Reader, top: Node, layout: StationLayout | None) -> tuple[Channel, ...]:
    node = read.section(top, "channels", "channels", set(top["channels"]) if isinstance(top.get("channels"), Node) else set())
    if node is None:
        return ()
    if not node:
        read.fail(read.line_of(top, "channels"), "channels", "is empty; allowed: channel name -> list of stations")
        return ()
    owner: dict[int, str] = {}
    out = []
    before = len(read.problems)
    for name, stations in node.items():
        line, path = node.key_lines[name], f"channels.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            read.fail(line, path, "the channel name must be letters, digits, '.', '_', '-'")
            continue
        if (not isinstance(stations, list) or not stations
                or any(isinstance(s, bool) or not isinstance(s, int) for s in stations)):
            read.fail(line, path, f"is {stations!r}; allowed: a non-empty list of station indices")
            continue
        for s in stations:
            if layout is not None and not 0 <= s < layout.count:
                read.fail(line, path, f"station {s} does not exist; allowed: 0..{layout.count - 1}")
            elif s in owner:
                read.fail(line, path, f"station {s} is already in channel {owner[s]!r}; each station is in exactly one channel")
            else:
                owner[s] = name
        out.append(Channel(name, tuple(stations)))
    if layout is not None and len(read.problems) == before:
        missing = sorted(set(range(layout.count)) - set(owner))
        if missing:
            read.fail(read.line_of(top, "channels"), "channels", f"stations {missing} are in no channel; "
                      "allowed: each station in exactly one channel")
    return tuple(out)


def _load_station_fixture(read: _Reader, node: Node, path: str, layout: StationLayout) -> StationFixture | None:
    markers_raw, areas_raw = node.get("markers"), node.get("zone_area_mm2")
    ok = True
    markers = []
    if not isinstance(markers_raw, list) or len(markers_raw) != layout.markers:
        n = len(markers_raw) if isinstance(markers_raw, list) else markers_raw
        read.fail(read.line_of(node, "markers"), f"{path}.markers",
                  f"has {n!r} entries; allowed: a list of stations.markers = {layout.markers} marker points")
        ok = False
    else:
        per_zone = layout.markers // layout.zones
        for i, raw in enumerate(markers_raw):
            mpath = f"{path}.markers[{i}]"
            if not isinstance(raw, Node):
                read.fail(node.key_lines["markers"], mpath, "must be a mapping {x_mm, y_mm, zone}")
                ok = False
                continue
            m = raw
            for k in m:
                if k not in ("x_mm", "y_mm", "zone"):
                    read.fail(m.key_lines[k], f"{mpath}.{k}", "unknown key; allowed: x_mm, y_mm, zone")
                    ok = False
            x = read.number(m, "x_mm", f"{mpath}.x_mm", unit="mm")
            y = read.number(m, "y_mm", f"{mpath}.y_mm", unit="mm")
            zone = read.integer(m, "zone", f"{mpath}.zone", None, 0, layout.zones - 1)
            if zone is not None and zone != i // per_zone:
                read.fail(read.line_of(m, "zone"), f"{mpath}.zone", f"is {zone}; allowed: {i // per_zone} "
                          f"(the core puts marker i of a station in zone i // {per_zone}, as the map orders them)")
                zone = None
            if None in (x, y, zone):
                ok = False
            else:
                markers.append(MarkerSpot(x, y, zone))
    areas = []
    if not isinstance(areas_raw, list) or len(areas_raw) != layout.zones:
        n = len(areas_raw) if isinstance(areas_raw, list) else areas_raw
        read.fail(read.line_of(node, "zone_area_mm2"), f"{path}.zone_area_mm2",
                  f"has {n!r} entries; allowed: a list of stations.zones = {layout.zones} areas in mm2")
        ok = False
    else:
        for i, a in enumerate(areas_raw):
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0:
                read.fail(read.line_of(node, "zone_area_mm2"), f"{path}.zone_area_mm2[{i}]",
                          f"is {a!r}; allowed: a finite area > 0 mm2")
                ok = False
            else:
                areas.append(float(a))
    return StationFixture(tuple(markers), tuple(areas)) if ok else None


def _load_fixture(read: _Reader, top: Node, layout: StationLayout | None):
    keys = {"markers", "zone_area_mm2", "station_pitch_mm", "stations"}
    node = read.section(top, "fixture", "fixture", keys, ("markers", "zone_area_mm2"))
    if node is None or layout is None:
        return (), 0.0, None
    pitch = read.number(node, "station_pitch_mm", "fixture.station_pitch_mm", DEFAULT_STATION_PITCH_MM, above=0.0, unit="mm")
    common = _load_station_fixture(read, node, "fixture", layout)
    fixtures = [common] * layout.count
    overrides = read.section(node, "stations", "fixture.stations",
                             set(node["stations"]) if isinstance(node.get("stations"), Node) else set())
    for s, raw in (overrides or {}).items():
        path, line = f"fixture.stations.{s}", overrides.key_lines[s]
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < layout.count:
            read.fail(line, path, f"station {s!r} does not exist; allowed: 0..{layout.count - 1}")
            continue
        station_node = read.section(overrides, s, path, {"markers", "zone_area_mm2"}, ("markers", "zone_area_mm2"))
        if station_node is not None:
            fixtures[s] = _load_station_fixture(read, station_node, path, layout)
    if pitch is None or any(f is None for f in fixtures):
        return (), 0.0, None
    return tuple(fixtures), pitch, common


def _load_routes(read: _Reader, top: Node) -> Routes | None:
    node = read.section(top, "routes", "routes", {"default", "default_chemistry", "chemistries"}, ("chemistries",))
    if node is None:
        return None
    default = RouteKind.RECYCLING
    if "default" in node:
        try:
            default = RouteKind(node["default"])
        except ValueError:
            read.fail(node.key_lines["default"], "routes.default",
                      f"is {node['default']!r}; allowed: {', '.join(k.value for k in RouteKind)}")
    chem = read.section(node, "chemistries", "routes.chemistries",
                        set(node["chemistries"]) if isinstance(node.get("chemistries"), Node) else set())
    if chem is None:
        return None
    if not chem:
        read.fail(node.key_lines["chemistries"], "routes.chemistries", "is empty; allowed: chemistry -> route")
        return None
    route_keys = ("cutoff_v_per_cell", "second_life_floor_v_per_cell", "recycling_floor_v_per_cell")
    routes = []
    for name in chem:
        path = f"routes.chemistries.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            read.fail(chem.key_lines[name], path, "the chemistry name must be letters, digits, '.', '_', '-'")
            continue
        r = read.section(chem, name, path, set(route_keys), route_keys)
        if r is None:
            continue
        cutoff = read.number(r, "cutoff_v_per_cell", f"{path}.cutoff_v_per_cell", above=0.0, high=5.0, unit="V")
        floors = []
        for key in route_keys[1:]:
            floor = read.number(r, key, f"{path}.{key}", above=0.0, high=5.0, unit="V")
            if floor is not None and cutoff is not None and floor <= cutoff:
                read.fail(read.line_of(r, key), f"{path}.{key}",
                          f"is {floor:g} V; allowed: above the cut-off ({cutoff:g} V)")
                floor = None
            floors.append(floor)
        if cutoff is not None and None not in floors and all(k in r for k in route_keys):
            routes.append(Route(name, cutoff, floors[0], floors[1]))
    names = [str(n) for n in chem]
    default_chem = read.text(node, "default_chemistry", "routes.default_chemistry", names[0] if len(names) == 1 else None)
    if default_chem is None and "default_chemistry" not in node:
        read.fail(node.line, "routes.default_chemistry", f"missing; required with more than one chemistry ({', '.join(names)})")
    elif default_chem is not None and default_chem not in names:
        read.fail(node.key_lines["default_chemistry"], "routes.default_chemistry",
                  f"is {default_chem!r}; allowed: {', '.join(names)}")
    if len(routes) != len(chem) or default_chem not in names:
        return None
    return Routes(default, default_chem, tuple(routes))


def _load_models(read: _Reader, top: Node, here: Path) -> Models | None:
    node = read.section(top, "models", "models", {"soc_gan", "rl_policy"})
    dirs = {}
    for key, meta in (("soc_gan", SOC_GAN_METADATA), ("rl_policy", RL_POLICY_METADATA)):
        rel = read.text(node, key, f"models.{key}", what="a folder, relative to the line file") if node else None
        folder = (here / rel).resolve() if rel else DEFAULT_MODELS_DIR
        if node is not None and key in node and rel is None:
            continue
        line = read.line_of(node, key) if node is not None else read.line_of(top, "models")
        if not (folder / meta).is_file():
            read.fail(line, f"models.{key}", f"{folder} holds no {meta}; allowed: a folder an export wrote "
                      f"({meta} and the .onnx it names)")
            continue
        dirs[key] = folder
    if len(dirs) < 2:
        return None
    return Models(dirs["soc_gan"], dirs["rl_policy"])


def _load_limits(read: _Reader, top: Node, sup: TagMap | None) -> LineLimits | None:
    keys = ("warning_degc", "temp_limit_degc", "max_current_a", "max_coolant_lpm")
    node = read.section(top, "limits", "limits", set(keys), keys)
    if node is None:
        return None
    warning = read.number(node, "warning_degc", "limits.warning_degc", low=0.0, high=100.0, unit="degC")
    limit = read.number(node, "temp_limit_degc", "limits.temp_limit_degc", low=0.0, high=100.0, unit="degC")
    if warning is not None and limit is not None and warning >= limit:
        read.fail(read.line_of(node, "warning_degc"), "limits.warning_degc",
                  f"is {warning:g} degC; allowed: below limits.temp_limit_degc ({limit:g} degC)")
        warning = None
    current = read.number(node, "max_current_a", "limits.max_current_a", above=0.0, unit="A")
    coolant = read.number(node, "max_coolant_lpm", "limits.max_coolant_lpm", above=0.0, unit="L/min")
    for key, value, role_name, unit in (("max_current_a", current, "discharge_current_setpoint_a", "A"),
                                        ("max_coolant_lpm", coolant, "coolant_base_lpm", "L/min")):
        tag = role_tag(sup, role_name) if sup is not None and value is not None else None
        if tag is not None and tag.limits is not None and value > tag.limits.max:
            read.fail(read.line_of(node, key), f"limits.{key}", f"is {value:g} {unit}; allowed: <= {tag.limits.max:g} "
                      f"{unit}, the limit of {_played(tag.name, role_name)} in {sup.source.name}")
            return None
    if None in (warning, limit, current, coolant) or not all(k in node for k in keys):
        return None
    return LineLimits(warning, limit, current, coolant)


def _load_operator_page(read: _Reader, top: Node) -> OperatorPage | None:
    node = read.section(top, "operator_page", "operator_page", {"host", "port"})
    if node is None:
        return OperatorPage("127.0.0.1", DEFAULT_OPERATOR_PORT)
    host = read.text(node, "host", "operator_page.host", "127.0.0.1", what="an IP address")
    if host is not None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            read.fail(read.line_of(node, "host"), "operator_page.host", f"is {host!r}; allowed: an IP address "
                      "(127.0.0.1: this machine only)")
            host = None
    port = read.integer(node, "port", "operator_page.port", DEFAULT_OPERATOR_PORT, 1, 65535)
    return OperatorPage(host, port) if host is not None and port is not None else None


PLACEMENT_KEYS = {"slots", "terminals", "tolerance_mm", "min_confidence_pct", "max_frame_age_s", "ack_timeout_s",
                  "motion_timeout_s", "retries", "vision_frames", "clamp_tolerance_pct", "clamp_timeout_s"}


def _load_placement(read: _Reader, top: Node, sup: TagMap | None) -> Placement | None:
    """`placement:` (optional: every key has its default, contract S13.md section 2)."""
    node = read.section(top, "placement", "placement", PLACEMENT_KEYS)
    if node is None:
        return Placement() if "placement" not in top else None
    d = Placement()
    slots = read.integer(node, "slots", "placement.slots", d.slots, 1, 64)
    tag = role_tag(sup, "vision_battery_id") if sup is not None else None
    if slots is not None and tag is not None and tag.count != slots:
        read.fail(read.line_of(node, "slots"), "placement.slots", f"is {slots}; allowed: {tag.count}, the count of "
                  f"{_played(tag.name, 'vision_battery_id')} in {sup.source.name}")
        slots = None
    terminals = {"positive": d.positive_mm, "negative": d.negative_mm}
    t_node = read.section(node, "terminals", "placement.terminals", {"positive", "negative"})
    for name in ("positive", "negative") if t_node is not None else ():
        at = read.section(t_node, name, f"placement.terminals.{name}", {"x_mm", "y_mm"}, ("x_mm", "y_mm"))
        if at is not None:
            xy = tuple(read.number(at, k, f"placement.terminals.{name}.{k}", low=-1000.0, high=1000.0, unit="mm")
                       for k in ("x_mm", "y_mm"))
            terminals[name] = None if None in xy or not all(k in at for k in ("x_mm", "y_mm")) else xy
    values = dict(
        tolerance_mm=read.number(node, "tolerance_mm", "placement.tolerance_mm", d.tolerance_mm, above=0.0,
                                 high=100.0, unit="mm"),
        min_confidence_pct=read.number(node, "min_confidence_pct", "placement.min_confidence_pct",
                                       d.min_confidence_pct, low=0.0, high=100.0, unit="%"),
        max_frame_age_s=read.number(node, "max_frame_age_s", "placement.max_frame_age_s", d.max_frame_age_s,
                                    above=0.0, high=3600.0, unit="s"),
        ack_timeout_s=read.number(node, "ack_timeout_s", "placement.ack_timeout_s", d.ack_timeout_s, above=0.0,
                                  high=3600.0, unit="s"),
        motion_timeout_s=read.number(node, "motion_timeout_s", "placement.motion_timeout_s", d.motion_timeout_s,
                                     above=0.0, high=3600.0, unit="s"),
        retries=read.integer(node, "retries", "placement.retries", d.retries, 0, 10),
        vision_frames=read.integer(node, "vision_frames", "placement.vision_frames", d.vision_frames, 1, 100),
        clamp_tolerance_pct=read.number(node, "clamp_tolerance_pct", "placement.clamp_tolerance_pct",
                                        d.clamp_tolerance_pct, above=0.0, high=50.0, unit="%"),
        clamp_timeout_s=read.number(node, "clamp_timeout_s", "placement.clamp_timeout_s", d.clamp_timeout_s,
                                    above=0.0, high=3600.0, unit="s"),
    )
    if slots is None or None in values.values() or None in terminals.values():
        return None
    return Placement(slots, terminals["positive"], terminals["negative"], **values)


HISTORY_KEYS = {"max_mb", "max_age_days", "bucket_s", "window_s", "flush_s"}


def _load_history(read: _Reader, top: Node) -> HistorySettings | None:
    """`history:` (optional: every key has its default, HistorySettings)."""
    node = read.section(top, "history", "history", HISTORY_KEYS)
    if node is None:
        return HistorySettings() if "history" not in top else None
    d = HistorySettings()
    values = dict(
        max_mb=read.number(node, "max_mb", "history.max_mb", d.max_mb, low=1.0, high=1e7, unit="MB"),
        max_age_days=read.number(node, "max_age_days", "history.max_age_days", d.max_age_days, above=0.0,
                                 high=36500.0, unit="days"),
        bucket_s=read.number(node, "bucket_s", "history.bucket_s", d.bucket_s, low=0.1, high=3600.0, unit="s"),
        window_s=read.number(node, "window_s", "history.window_s", d.window_s, low=0.0, high=3600.0, unit="s"),
        flush_s=read.number(node, "flush_s", "history.flush_s", d.flush_s, low=0.05, high=60.0, unit="s"),
    )
    if None in values.values():
        return None
    return HistorySettings(**values)
