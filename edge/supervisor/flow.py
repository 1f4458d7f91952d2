"""The supervisor's flow engine: one `scan()` every `scan_s` runs a line from arrival to record.

Owns `FlowEngine` (PackML, arrivals, assignment by tier, placement through vision and the robot
(S13: slot -> station, clamp, discharge, station -> out lane; a refused battery slot -> reject
lane), discharge per station, rest and rebound, records, resume), `FlowSettings`, `PlanSettings`,
`FlowError` and the roles it needs (`REQUIRED_TAGS`, the robot cell's `PLACEMENT_TAGS`: role names of
edge/tagmap/roles.py; `flow_tags` finds the supervisor map's tag playing each, so a map of the
PLC's own names runs with a `roles:` section). Every station change and every queued battery goes into the `Store` first and
is acted on after (write before act); a battery is recorded exactly once (`DuplicateRecord` means
done). Flow, tags and resume: edge/supervisor/README.md, "The flow".
Line limits changed while the line runs: `FlowEngine.set_limit` (`LIMIT_ROLES`, `LimitRefused`).
Tests: tests/edge/supervisor/test_flow.py, test_flow_roles.py, test_flow_limits.py, test_run_cli.py;
the cost of `waiting()` and a scan at 2000 records: test_bench_flow.py.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.placement.robot import (NO_BATTERY, OUT_LANE, REJECT_LANE, ROBOT_READS, ROBOT_WRITES, Move, MoveResult,
                                  location_kind, slot_location, station_location)
from edge.placement.vision import VISION_TAGS
from edge.bus import BusError, Quality, open_bus
from edge.bus.memory import MemoryPlc
from edge.grading.features import CellsFileError, read_cells_csv
from edge.rtloop.handle import RtcoreError
from edge.strategy.history import History
from edge.strategy.loop_controller import batch_setpoints, fixed_strategy
from edge.strategy.model import NOMINAL_CAPACITY_AH, Strategy
from edge.strategy.planner import grade_cells_table, plan_tiers, sane_rows
from edge.strategy.supervisor import StationDriver
from edge.supervisor.alarms import AlarmBook, AlarmSpec, AlarmWatcher
from edge.supervisor.assigning import EARLY_MARGIN, ChannelTiers, channel_loads, predicted_discharge_s
from edge.supervisor.historian import Historian, TickSample
from edge.supervisor.line import LineConfig, RouteKind
from edge.supervisor.models import LineModels
from edge.supervisor.packml import Command, CommandReader, CommandRefused, PackMlMachine, State, UnknownCommand
from edge.supervisor.placing import RobotCell
from edge.supervisor.stations import StationState as St
from edge.supervisor.store import DuplicateRecord, Store
from edge.tagmap import Owner, TagMap
from edge.tagmap.roles import role, role_problems, role_tag
from rtcore.spec import Flag

log = logging.getLogger(__name__)


def _role(name: str) -> str:
    """Role `name` of the catalogue (KeyError: not a role)."""
    return role(name).name


# The flow's tags are roles of edge/tagmap/roles.py (`_role` refuses a name the catalogue lacks).
# Inside the flow (and edge/placement, edge/supervisor/placing.py) values are keyed by role name;
# the engine finds each role's tag in the supervisor map (`role_tag`: the map's `roles:` entry,
# else the tag named like the role) and reads and writes the PLC under the map's own tag names.
STATION_LOADED = _role("station_loaded_id")  # per station: the battery there (NO_BATTERY: empty)
PRESSURE_TAG = _role("zone_pressure_kpa")  # per zone: the applied clamp (the clamp check before the permit)
#: S13: the robot's order handshake, the camera per slot, the battery per station.
PLACEMENT_TAGS = tuple(map(_role, ROBOT_WRITES + ROBOT_READS + VISION_TAGS)) + (STATION_LOADED,)
STRATEGY_TAGS = tuple(map(_role, ("discharge_current_setpoint_a", "fixture_pressure_setpoint_kpa", "coolant_base_lpm")))
MEASURED_TAGS = tuple(map(_role, ("station_voltage_v", "station_current_a")))
REQUIRED_TAGS = STRATEGY_TAGS + MEASURED_TAGS + (PRESSURE_TAG,) + PLACEMENT_TAGS
"""The roles the flow does not run without (role names; the map's tags may be named otherwise)."""
PER_STATION = MEASURED_TAGS + (STATION_LOADED,)
PACKTAGS_READ = (_role("packml_command"), _role("packml_command_request"))  # used only when the map has both
PACKTAGS_STATE = _role("packml_state")  # written only when the map has it
READ_ROLES = tuple(dict.fromkeys(MEASURED_TAGS + (PRESSURE_TAG,) + PLACEMENT_TAGS))
"""Read every scan (the robot's order fields too: the handshake reads back what it wrote)."""
LIMIT_ROLES = {"max_current_a": ("discharge_current_setpoint_a", "A"),
               "max_coolant_lpm": ("coolant_base_lpm", "L/min")}
"""The line limits `FlowEngine.set_limit` may change, each with the role whose write it clips."""
HISTORY_FILE = "strategy_history.sqlite"
SECOND_LIFE_MIN_SOH = 0.7  # the grade sends a battery to second life when its SOH interval lies above
HOLDING = frozenset({St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE})
ON_STATION = (St.CLAMPING, St.DISCHARGING, St.RESTING)  # the battery sits in the clamp
STILL_A = 0.05  # |station_current_a| below this: no current (the robot may work there)
CONFIRM_SCANS = 3  # scans a station that does not show a battery just placed is read again


class FlowError(RuntimeError):
    """The engine cannot start (a map without the tags it needs, a station the PLC disagrees on)."""


class LimitRefused(ValueError):
    """`FlowEngine.set_limit` refused a value; the message says why (naming the tag, file and line
    when the tag map refuses it). Nothing was changed."""


def flow_tags(sup: TagMap) -> dict[str, str]:
    """Role -> the supervisor map's tag name, for every role the flow uses that the map plays.
    FlowError naming the file when a role in `REQUIRED_TAGS` has no tag, or when a tag playing one
    of the flow's roles is unfit for it (type, access, size: `role_problems`, with file and line)."""
    roles = REQUIRED_TAGS + PACKTAGS_READ + (PACKTAGS_STATE,)
    tags = {r: t.name for r in roles if (t := role_tag(sup, r)) is not None}
    missing = [r for r in REQUIRED_TAGS if r not in tags]
    if missing:
        raise FlowError(f"{sup.source}: the supervisor map lacks {', '.join(missing)}; the flow needs them "
                        "(the robot cell's vision and order tags, strategy and measured tags per station; a tag "
                        "of another name plays a role when the map lists it under roles:, plc_tags/README.md)")
    ours = set(tags.values())
    unfit = [p for p in role_problems(sup, Owner.SUPERVISOR) if p.tag in ours]
    if unfit:
        raise FlowError(f"{sup.source}: the supervisor map's tags do not fit the flow's roles: "
                        + "; ".join(str(p) for p in unfit))
    return tags


@dataclass(frozen=True)
class PlanSettings:
    max_simulations: int = 16
    max_seconds: float = 120.0
    use_tree: bool = True
    rollout_modules: int = 4
    rollout_dt_s: float = 2.0
    seed: int = 0


@dataclass(frozen=True)
class FlowSettings:
    scan_s: float = 1.0
    rest_s: float = 60.0  # rest after a discharge pass before the rebound check (clock seconds)
    max_redischarges: int = 5  # rebounds discharged again at most this often, then done
    stop_detect_s: float = 5.0  # current asked and permitted but none measured this long: the PLC ended the pass
    bus_timeout_s: float = 1.0  # each read or write of a scan (the map's timeout is sized for the core's tick)
    plan_in_background: bool = False  # grade and plan arrivals on a worker thread while the scans go on
    history_thread: bool = False  # the historian writes on its own thread (run: yes); else at scans, every flush_s
    max_track_gap_s: float = 3600.0  # a longer gap in the tracking (a supervisor down) counts this much
    plan: PlanSettings = field(default_factory=PlanSettings)


def plc_battery_id(cell_id: str) -> int | None:
    """The DINT written to `robot_order_battery_id`: the cell id itself when it is a whole number in
    0..2**31-1 (`NO_BATTERY`, -1, means no battery); None when the PLC cannot carry it."""
    try:
        value = int(str(cell_id).strip())
    except ValueError:
        return None
    return value if 0 <= value < 2**31 else None


def cause_names(bits: int) -> list[str]:
    return [f.name for f in Flag if f.value and f.value & int(bits)] or [f"0x{int(bits):x}"]


def _station_reading(status, name: str, s: int) -> float:
    """Station s's number in the core's status field `name` (station_hot_degc...); NaN when
    there is no status, no such station in it, or the number is not finite."""
    values = getattr(status, name) if status is not None else ()
    return _finite(values[s]) if len(values) > s else float("nan")


def _permitted(status, s: int) -> bool:
    """The core lets the station discharge (no core status: assumed)."""
    if status is None:
        return True
    permit = status.station_permit[s] if len(status.station_permit) > s else True
    frac = status.station_current_limit_frac[s] if len(status.station_current_limit_frac) > s else 1.0
    return bool(permit) and frac > 0.0


def _finite(x: Any, default: float = float("nan")) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return default
    return x if math.isfinite(x) else default


class _Job:
    """One arrival file graded and planned on a daemon thread (it never holds up an exit)."""

    def __init__(self, path: Path, work: Callable, known: set[str]):
        self.path = path
        self.done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = work(path, known)
            except BaseException as exc:  # handed to the scan thread, raised there
                self._error = exc
            finally:
                self.done.set()

        threading.Thread(target=run, name=f"plan-{path.name}", daemon=True).start()

    def result(self):
        if self._error is not None:
            raise self._error
        return self._result


class FlowEngine:
    """One line's flow. `core` is an `RtcoreHandle` (or None: no core attached, no limits sent);
    `clock` gives seconds (plant or wall time); `plc` runs the bus on an in-memory PLC."""

    def __init__(self, line: LineConfig, state_dir: Path, models: LineModels, *, core=None,
                 settings: FlowSettings = FlowSettings(), clock: Callable[[], float] = time.time,
                 plc: MemoryPlc | None = None, bus=None, planner: Callable | None = None):
        self.line, self.settings, self.models, self.core, self.clock = line, settings, models, core, clock
        self.n = line.stations.count
        sup = line.supervisor_map
        self.tags = flow_tags(sup)  # role -> the map's tag name
        self._role_of = {tag: r for r, tag in self.tags.items()}
        self.zones = line.stations.zones
        self.paths = line.state_paths(override=Path(state_dir))
        self.store = Store(self.paths.state_dir, self.n, clock=clock)
        for d in (self.paths.inbox, self.paths.inbox / "done", self.paths.inbox / "rejected"):
            d.mkdir(parents=True, exist_ok=True)
        self.bus = bus or open_bus(sup, Owner.SUPERVISOR, plc=plc)
        self.planner = planner or self._plan
        self.route = line.routes.for_chemistry(None)
        self.machine = PackMlMachine(self.store.line_state(), on_change=self.store.set_line_state)
        self.packtags = all(r in self.tags for r in PACKTAGS_READ)
        self.packtags_state = PACKTAGS_STATE in self.tags
        self.reader = CommandReader()
        self._drivers: dict[int, StationDriver] = {}
        self._job: _Job | None = None
        self._limits_sent = None
        self._last_scan: float | None = None
        self.current_a = np.zeros(self.n)
        self.cell = RobotCell(line.placement, self.n, self.store)
        self.tiers = ChannelTiers()  # edge/placement/assign.py: which tier each empty channel takes
        self._predicted: dict[str, float] = {}
        self._cell_of: dict[int, str] = {}
        self._cell_of_n = -1
        self.batteries = self._load_batteries()
        self._recorded: set[str] = self.store.recorded_ids()  # kept by _record: never read back per scan
        self._open = dict.fromkeys(c for c in self.batteries if c not in self._recorded)  # queued, not recorded
        self._line_limits = dataclasses.asdict(line.limits)  # the line file's, which set_limit overrides
        self._restore_limits()
        self.historian = Historian(self.paths.state_dir, self.n, self.zones, settings=line.history,
                                   thread=settings.history_thread)
        self.alarms = AlarmBook(self.paths.state_dir, clock=clock)
        self.watcher = AlarmWatcher(self.alarms, self.store)
        self._plc_read_problem: str | None = None
        self._plc_write_problem: str | None = None
        self._historian_problem: str | None = None
        self._limits_now: tuple | None = None
        self.restarts = sum(1 for e in self.store.events(kind="supervisor_start") if e.data.get("resume"))
        resume = bool(self.store.line_history() or self.batteries or any(
            r.state is not St.EMPTY for r in self.store.stations()))
        self.store.add_event("supervisor_start", "resumed from the store" if resume else "fresh start",
                             data={"resume": resume, "state": self.machine.state.label})
        self.restarts += int(resume)
        self._check_resume()

    # -- batteries (queued rows are events of kind battery_queued) ------------------------------------
    def _load_batteries(self) -> dict[str, dict]:
        return {e.battery_id: dict(e.data) for e in self.store.events(kind="battery_queued")}

    def waiting(self) -> list[str]:
        """Queued batteries neither on a station nor recorded, in arrival order. Reads the S station
        rows only: the queued batteries not recorded yet are kept in memory (from the store once at
        start; each queue adds one, each record takes one), so the cost does not grow with the
        records in the store."""
        on_station = {r.battery_id for r in self.store.stations() if r.battery_id}
        return [c for c in self._open if c not in on_station]

    def recorded(self) -> frozenset[str]:
        """The cell ids recorded (done, isolated or rejected), without reading the store."""
        return frozenset(self._recorded)

    # -- line limits changed while the line runs ---------------------------------------------------------
    def set_limit(self, name: str, value: float, *, by: str = "") -> tuple[float, float]:
        """Change one of the line's limits (`LIMIT_ROLES`: `max_current_a`, `max_coolant_lpm`);
        returns (before, after). The flow's own write path applies it from the next scan: it clips
        every station's current setpoint (and the drivers' ceiling) or base coolant. Checked first:
        a finite number > 0, as in the line file, and a value the tag map lets the supervisor
        write to the role's tag (`TagBus.check_write`: owner, access, type, the tag's limits);
        `LimitRefused` says why and nothing changes. Written to the store before it is applied (a
        `setpoint_changed` event: name, before, value, unit, tag, role, by, and the line file's
        value it overrides), and kept across a restart while the line file still has that value
        (a line file edited since wins: `setpoint_dropped`)."""
        if name not in LIMIT_ROLES:
            raise LimitRefused(f"limit {name!r} is unknown; allowed: {', '.join(LIMIT_ROLES)}")
        role_name, unit = LIMIT_ROLES[name]
        value = self._check_limit(name, value)
        before = float(getattr(self.line.limits, name))
        tag = self._tag(role_name)
        self.store.add_event("setpoint_changed", f"{name}: {before:g} -> {value:g} {unit} by {by or '?'}",
                             data={"name": name, "before": before, "value": value, "unit": unit, "tag": tag.name,
                                   "role": role_name, "by": by, "line_value": self._line_limits[name]})
        self._apply_limit(name, value)
        log.info("limit %s: %g -> %g %s by %s", name, before, value, unit, by or "?")
        return before, value

    def _check_limit(self, name: str, value) -> float:
        role_name, unit = LIMIT_ROLES[name]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
            raise LimitRefused(f"{name} = {value!r}; allowed: a finite number > 0 {unit}")
        tag = self._tag(role_name)
        check = self.bus.check_write(tag.name, (number,) * tag.count if tag.count > 1 else number)
        if check.quality is not Quality.GOOD:
            played = tag.name if tag.name == role_name else f"{tag.name} (role {role_name})"
            raise LimitRefused(f"{name} = {number:g} {unit}: the write of {played} "
                               f"({self.line.supervisor_map.source.name}, line {tag.source_line}) is refused: "
                               f"{check.detail or check.quality.value}")
        return number

    def _apply_limit(self, name: str, value: float) -> None:
        self.line = dataclasses.replace(self.line, limits=dataclasses.replace(self.line.limits, **{name: value}))
        if name == "max_current_a":
            for driver in self._drivers.values():
                driver.max_a = value  # the driver's ceiling; its soft start and SOC go on
            self._predicted.clear()  # predicted discharge times depend on it

    def _restore_limits(self) -> None:
        """The limits set while the line ran before (`set_limit`), applied again at start when the
        line file still has the value each overrode and the map still allows it; else dropped (an
        event saying why) and the line file's value holds."""
        last: dict[str, dict] = {}
        for e in self.store.events(kind="setpoint_changed"):
            if e.data.get("name") in LIMIT_ROLES:
                last[e.data["name"]] = e
        for e in self.store.events(kind="setpoint_dropped"):
            if e.data.get("name") in last and e.id > last[e.data["name"]].id:
                del last[e.data["name"]]  # dropped at an earlier start: said once
        for name, event in last.items():
            data = event.data
            unit = LIMIT_ROLES[name][1]
            now = self._line_limits[name]
            if data.get("line_value") != now:
                why = (f"the line file's {name} is now {now:g} {unit} (it was {data.get('line_value')!r} when "
                       f"{data.get('value')!r} was set); the line file's holds")
            else:
                try:
                    value = self._check_limit(name, data.get("value"))
                except LimitRefused as exc:
                    why = f"{exc}; the line file's {now:g} {unit} holds"
                else:
                    self._apply_limit(name, value)
                    self.store.add_event("setpoint_restored", f"{name}: {value:g} {unit} (set by "
                                         f"{data.get('by') or '?'}) over the line file's {now:g} {unit}",
                                         data={"name": name, "value": value, "unit": unit, "line_value": now})
                    continue
            self.store.add_event("setpoint_dropped", f"{name}: {why}", data={"name": name, "line_value": now,
                                                                             "value": data.get("value")})
            log.warning("limit %s not restored: %s", name, why)

    # -- the scan ------------------------------------------------------------------------------------------
    def command(self, cmd: Command) -> bool:
        """Carry out a PackML command; False (logged, an event) when the state refuses it."""
        try:
            self.machine.command(cmd)
        except CommandRefused as exc:
            log.warning("%s", exc)
            self.store.add_event("packml_refused", str(exc))
            return False
        log.info("PackML: %s -> %s", cmd.label, self.machine.state.label)
        return True

    def start(self) -> bool:
        """`--start`: Reset (from Stopped or Complete) then Start, each acting state completed."""
        if self.machine.state in (State.STOPPED, State.COMPLETE):
            self.command(Command.RESET)
            self._complete_acting_state()
        if self.machine.state is State.IDLE:
            self.command(Command.START)
            self._complete_acting_state()
        return self.machine.state is State.EXECUTE

    def scan(self) -> None:
        now = self.clock()
        dt = 0.0 if self._last_scan is None else max(0.0, now - self._last_scan)
        self._last_scan = now
        self._poll_packtags()
        self._complete_acting_state()
        self.read_inbox()
        values = self._read()
        status = self.core.status() if self.core is not None else None
        self._line_trip(status)
        execute = self.machine.state is State.EXECUTE
        self.cell.look(values, now)
        result = self.cell.scan_robot(values, now)  # a move under way goes on in every state
        if result is not None:
            self._moved(result, values, now)
        for rec in self.store.stations():
            self._station_scan(rec, values, status, now, dt, execute)
        if execute and self.cell.handshake.ready:
            self._next_move(now, values, status)
        written = self._write(values)
        self._send_limits()
        self._keep(now, values, status, written)

    def _keep(self, now: float, values, status, written: dict) -> None:
        """The scan into the historian (queued: never blocks) and the alarms raised or cleared."""
        recs = self.store.stations()
        n = self.n

        def per_station(name: str) -> np.ndarray:
            got = getattr(status, name, ()) if status is not None else ()
            return np.asarray(got, float) if len(got) == n else np.full(n, np.nan)

        limits, self._limits_now = self._limits_now, None
        self.historian.observe(TickSample(
            now, tuple(r.battery_id for r in recs), voltage_v=values["station_voltage_v"].copy(),
            current_a=values["station_current_a"].copy(), hot_degc=per_station("station_hot_degc"),
            pressure_kpa=values[PRESSURE_TAG].reshape(n, -1).copy(), relief_kpa=per_station("station_relief_max_kpa"),
            coolant_lpm=per_station("station_coolant_lpm"), permit=per_station("station_permit"),
            limit_frac=per_station("station_current_limit_frac"),
            current_setpoint_a=written["discharge_current_setpoint_a"].copy(),
            pressure_setpoint_kpa=written["fixture_pressure_setpoint_kpa"].copy(),
            coolant_base_lpm=written["coolant_base_lpm"].copy(), limits=limits))
        self.historian.pump()
        problem = self.historian.problem()
        if problem != self._historian_problem:
            self.store.add_event("historian_write_failed" if problem else "historian_write_ok",
                                 problem or "the historian writes again")
            self._historian_problem = problem
        conditions = {
            "plc.read": self._plc_read_problem and AlarmSpec("plc.read", "medium", "PLC read failed",
                                                             self._plc_read_problem, source="plc"),
            "plc.write": self._plc_write_problem and AlarmSpec("plc.write", "medium", "PLC write refused",
                                                               self._plc_write_problem, source="plc"),
            "historian": problem and AlarmSpec("historian", "low", "historian write failed", problem,
                                               source="historian"),
        }
        self.watcher.scan(now, status, self.machine.state.label, recs, conditions)

    def _line_trip(self, status) -> None:
        """The core latched the whole line safe (link lost, a frozen PLC, overruns): every permit
        is off, so the line aborts (PackML Abort, an event naming the causes). The batteries stay
        on their stations; after the operator's `rtcore reset` and Clear, Reset, Start they go on."""
        if status is None or not status.safe_state or self.machine.state in (State.ABORTING, State.ABORTED):
            return
        names = cause_names(status.safe_cause)
        self.store.add_event("line_tripped", f"the core latched the line safe ({', '.join(names)}); line aborted",
                             data={"cause": names, "state": self.machine.state.label})
        log.error("the core latched the line safe (%s): PackML Abort", ", ".join(names))
        self.command(Command.ABORT)

    def needs_operator(self) -> str | None:
        """Why the line cannot go on by itself (Aborted: the operator clears it), else None."""
        if self.machine.state in (State.ABORTING, State.ABORTED):
            trips = self.store.events(kind="line_tripped")
            return trips[-1].text if trips else f"the line is {self.machine.state.label}"
        return None

    def idle(self) -> bool:
        """Nothing waits (in the inbox, in planning, in the queue) and every station is empty or
        isolated (or fault)."""
        if self._job is not None or self._inbox_files():
            return False
        return (not self.waiting() and not self.cell.handshake.busy
                and all(r.state in (St.EMPTY, St.ISOLATED, St.FAULT) for r in self.store.stations()))

    def _poll_packtags(self) -> None:
        if not self.packtags:
            return
        try:
            values = {self._role_of[v.name]: v for v in self.bus.read([self.tags[r] for r in PACKTAGS_READ],
                                                                       timeout_s=self.settings.bus_timeout_s)}
        except BusError:
            return
        if not all(v.quality.usable for v in values.values()):
            return
        try:
            cmd = self.reader.poll(int(values["packml_command"].value), int(values["packml_command_request"].value))
        except UnknownCommand as exc:
            self.store.add_event("packml_refused", str(exc))
            return
        if cmd is not None:
            self.command(cmd)

    def _complete_acting_state(self) -> None:
        """Every acting state but Execute completes at the scan after it was entered: its work
        (currents to 0, no new loads) is what this scan writes."""
        while self.machine.is_acting and self.machine.state is not State.EXECUTE:
            self.machine.state_complete()

    def _tag(self, role_name: str):
        """The supervisor map's tag playing `role_name`."""
        return self.line.supervisor_map.tag(self.tags[role_name])

    def _read(self) -> dict[str, np.ndarray]:
        """Every role the flow reads, by role name, as float arrays (NaN where not readable); the
        per-station ones have S elements, the zones S x zones."""
        sizes = {r: self._tag(r).count for r in READ_ROLES}
        out = {}
        try:
            answers = self.bus.read([self.tags[r] for r in READ_ROLES], timeout_s=self.settings.bus_timeout_s)
        except BusError as exc:  # a lost PLC: nothing measured this scan; the core keeps protecting
            log.warning("PLC read failed: %s", exc)
            self._plc_read_problem = f"PLC read failed: {exc}"
            return {r: np.full(sizes[r], np.nan) for r in READ_ROLES}
        self._plc_read_problem = None
        for r, v in zip(READ_ROLES, answers):
            value = np.atleast_1d(np.asarray(v.value, float)) if v.quality.usable and v.value is not None else None
            ok = value is not None and value.shape == (sizes[r],)
            out[r] = value if ok else np.full(sizes[r], np.nan)
        return out

    # -- one station ---------------------------------------------------------------------------------------
    def _station_scan(self, rec, values, status, now: float, dt: float, execute: bool) -> None:
        s, state, cell, data = rec.station, rec.state, rec.battery_id, dict(rec.data)
        cause = int(status.station_cause[s]) if status is not None and len(status.station_cause) > s else 0
        hot = _station_reading(status, "station_hot_degc", s)
        if state in (St.DISCHARGING, St.RESTING):
            self._track(s, data, values, hot, now)
        if cause and state in HOLDING - {St.DONE}:
            names = cause_names(cause)
            data.update(cause=names)
            self.store.set_station(s, St.ISOLATED, cell, data)
            self.current_a[s] = 0.0
            self.store.add_event("station_isolated", f"station {s}: the core isolated it ({', '.join(names)})",
                                 station=s, battery_id=cell, data={"cause": names})
            self.tiers.need(f"station {s} isolated")
            self._record(s, cell, data, "isolated", now)
            return
        if state is St.ISOLATED and cell and self.store.battery(cell) is None:
            self._record(s, cell, data, "isolated", now)  # a kill between isolation and record
        if state is St.LOADING:
            self.current_a[s] = 0.0
            move = self.cell.handshake.move
            if move is None or move.place != station_location(s):  # a restart lost the order: see where it is
                self._placed(s, cell, data, values, now, None)
        elif state is St.CLAMPING:
            self.current_a[s] = 0.0
            self._clamping(s, cell, data, values, now, _station_reading(status, "station_relief_max_kpa", s))
        elif state is St.DISCHARGING:
            self._discharging(s, cell, data, values, hot, now, dt, execute, _permitted(status, s))
        elif state is St.RESTING:
            self.current_a[s] = 0.0
            if execute and now >= data["rest_until"]:
                self._rebound(s, cell, data, values, now)
            else:
                self.store.update_station_data(s, data)
        elif state is St.DONE:
            self.current_a[s] = 0.0
            self._done(s, cell, data, now)
        else:
            self.current_a[s] = 0.0

    def _track(self, s: int, data: dict, values, hot: float, now: float) -> None:
        """Charge removed (trapezoid over the measured current), peak and time above warning,
        over the time since this station was last tracked: after a supervisor restart that is
        the whole gap (at most `max_track_gap_s`), bridged from the last current to this one."""
        dt = min(max(0.0, now - data.get("tracked_at", now)), self.settings.max_track_gap_s)
        current = max(0.0, _finite(values["station_current_a"][s], 0.0))
        last = data.get("last_current_a", current)
        data.update(tracked_at=now, last_current_a=current)
        data["charge_ah"] = data.get("charge_ah", 0.0) + 0.5 * (current + last) * dt / 3600.0
        if math.isfinite(hot):
            data["peak_temp_degc"] = max(data.get("peak_temp_degc") or -273.0, hot)
            if hot > self.line.limits.warning_degc:
                data["time_above_warning_s"] = data.get("time_above_warning_s", 0.0) + dt

    def _placed(self, s: int, cell: str, data: dict, values, now: float, result: MoveResult | None) -> None:
        """The load move of station s ended (`result`), or a loading station has no open move (a
        restart): the battery at the station goes to the clamp. The PLC's tags are not read as one
        (the robot's done and the station's battery may come a scan apart), so a station that does
        not show the battery is read `CONFIRM_SCANS` more scans before the flow concludes: empty
        again, and the battery rejected with the robot's reason (no longer in its slot: dropped,
        or put in the reject lane by the recovery), refused for the reject lane (still in its
        slot), or, after a restart with no result, waiting in its slot again."""
        if result is not None:
            placement = dict(data.get("placement", {}), acked_s=result.acked_s, done_s=result.done_s,
                             attempts=len(result.attempts))
            data = dict(data, placement=placement, robot_ok=result.ok, robot_reason=result.reason)
        loaded = values[STATION_LOADED][s]
        if math.isfinite(loaded) and int(loaded) == data["plc_id"]:
            b = self.batteries[cell]
            clamp = {"plc_id": data["plc_id"], "slot": data.get("slot"), "channel": self.line.channel_of(s).name,
                     "vision": data.get("vision"), "placement": data.get("placement", {}),
                     "clamp_kpa": b["strategy"]["pressure_kpa"], "clamp_started_s": now}
            self.store.set_station(s, St.CLAMPING, cell, clamp)
            log.info("station %d: battery %s placed; clamping at %.0f kPa", s, cell, clamp["clamp_kpa"])
            return
        seen = int(data.get("confirm_scans", -1)) + 1
        if seen < CONFIRM_SCANS:
            self.store.update_station_data(s, dict(data, confirm_scans=seen))
            return
        self.store.set_station(s, St.EMPTY, None, {})
        slot = self.cell.slot_of(data["plc_id"])
        if "robot_ok" not in data and slot is not None:
            return  # a restart lost the move's result; the battery waits in its slot again
        why = (f"robot: {data['robot_reason']}" if data.get("robot_reason")
               else "robot: the station does not hold it after the move")
        if slot is not None:  # still in its slot: to the reject lane next, with the reason
            self.cell.refuse(cell, why, self.cell.slots[slot].verdict, station=s)
        else:  # dropped, or put in the reject lane by the robot's recovery
            self._record(None, cell, dict(vision=data.get("vision"), slot=data.get("slot"),
                                          placement=data.get("placement")), "rejected", now, reason=why)

    def _clamping(self, s: int, cell: str, data: dict, values, now: float, relief_kpa: float) -> None:
        """No current until every zone of the station holds the tier's clamp (within the tolerance).
        A clamp not reached within placement.clamp_timeout_s does not wait forever: the battery is
        recorded rejected with the pressures read and the core's relief on the station, and the
        station goes to fault (its alarm) with the battery on it, for the operator to clear."""
        zones = values[PRESSURE_TAG][s * self.zones:(s + 1) * self.zones]
        floor = data["clamp_kpa"] * (1.0 - self.line.placement.clamp_tolerance_pct / 100.0)
        if not (zones.size and np.isfinite(zones).all() and (zones >= floor).all()):
            waited_s, limit_s = now - data.get("clamp_started_s", now), self.line.placement.clamp_timeout_s
            if waited_s >= limit_s:
                read = ", ".join(f"{z:.1f}" for z in zones.tolist())
                relief = f"; the core's relief on the station {relief_kpa:.0f} kPa" if math.isfinite(relief_kpa) else ""
                why = (f"clamp: {data['clamp_kpa']:.0f} kPa not reached in {waited_s:.0f} s "
                       f"(placement.clamp_timeout_s {limit_s:g}); zones read [{read}] kPa{relief}")
                log.error("station %d: battery %s: %s: station to fault, battery rejected", s, cell, why)
                self.store.add_event("clamp_failed", f"station {s}: battery {cell}: {why}", station=s, battery_id=cell)
                self._record(s, cell, data, "rejected", now, reason=why)
                self.store.set_station(s, St.FAULT, cell, dict(data, reason=why))
                self.tiers.need(f"station {s} fault")
            return
        keep = {k: data[k] for k in ("plc_id", "slot", "channel", "vision", "placement")}
        data = dict(keep, clamped_s=now, clamp_kpa=data["clamp_kpa"], clamp_measured_kpa=[round(float(z), 2) for z in zones],
                    start_s=now, passes=1, redischarges=0, charge_ah=0.0, peak_temp_degc=None,
                    time_above_warning_s=0.0)
        self.store.set_station(s, St.DISCHARGING, cell, data)
        self._drivers.pop(s, None)
        log.info("station %d: battery %s clamped (%s kPa): discharging", s, cell, data["clamp_measured_kpa"])

    def _driver(self, s: int, cell: str, data: dict) -> StationDriver:
        driver = self._drivers.get(s)
        if driver is None:
            b = self.batteries[cell]
            capacity_ah = NOMINAL_CAPACITY_AH * min(max(b["soh_est"], 0.3), 1.2)
            soc = b["soc_pct"] - 100.0 * data.get("charge_ah", 0.0) / capacity_ah
            driver = StationDriver([Strategy.from_dict(b["strategy"])], np.array([soc]), np.array([b["soh_est"]]),
                                   cutoff_v_per_cell=self.route.cutoff_v_per_cell,
                                   station_max_current_a=self.line.limits.max_current_a)
            self._drivers[s] = driver
        return driver

    def _discharging(self, s, cell, data, values, hot, now, dt, execute, permitted) -> None:
        v_cell = values["station_voltage_v"][s] / self.line.stations.cells_per_module
        current = values["station_current_a"][s]
        driver = self._driver(s, cell, data)
        asked = self.current_a[s]  # what the last scan wrote
        if execute and permitted and asked > 0.05 and _finite(current, 0.0) < max(0.05, 0.02 * asked):
            data["stalled_s"] = data.get("stalled_s", 0.0) + dt  # the PLC's own cut-off (a cell at its limit)
        else:
            data["stalled_s"] = 0.0
        at_cutoff = math.isfinite(v_cell) and v_cell <= self.route.cutoff_v_per_cell and data.get("drawn")
        if at_cutoff or data["stalled_s"] >= self.settings.stop_detect_s:
            data["pass_end"] = "cut-off" if at_cutoff else "current stopped"
            self.current_a[s] = 0.0
            # a pass that drew nothing (the PLC's cut-off holds on its weakest cell) cannot be repeated
            data.update(rest_until=now + self.settings.rest_s, pass_drew=bool(data.get("drawn")), drawn=False,
                        stalled_s=0.0)
            self.store.set_station(s, St.RESTING, cell, data)
            self._drivers.pop(s, None)
            return
        if _finite(current, 0.0) > 0.0:
            data["drawn"] = True
        self.store.update_station_data(s, data)
        if not execute:
            self.current_a[s] = 0.0
            driver._last_a[:] = 0.0  # the soft start again after a hold
            return
        hot_in = np.array([hot if math.isfinite(hot) else np.nan])
        self.current_a[s] = float(driver.step(np.array([_finite(current, 0.0)]), np.array([v_cell]), hot_in, dt)[0])

    def limits_of(self, cell: str) -> dict:
        """The limits in force for a battery: the line's, the tier limits its station's core had, the route's."""
        strategy = Strategy.from_dict(self.batteries[cell]["strategy"])
        kind = self.route_kind(cell)
        return {"line": dataclasses.asdict(self.line.limits),
                "core": dataclasses.asdict(strategy.station_limits()),
                "route": {"kind": kind.value, "chemistry": self.route.chemistry, "cutoff_v_per_cell": self.route.cutoff_v_per_cell,
                          "floor_v_per_cell": self.route.floor_v_per_cell(kind),
                          "cells_per_module": self.line.stations.cells_per_module},
                "max_redischarges": self.settings.max_redischarges}

    def route_kind(self, cell: str) -> RouteKind:
        b = self.batteries[cell]
        if b["soh_est"] - b["soh_sd"] >= SECOND_LIFE_MIN_SOH:
            return RouteKind.SECOND_LIFE
        if b["soh_est"] + b["soh_sd"] < SECOND_LIFE_MIN_SOH:
            return RouteKind.RECYCLING
        return self.line.routes.default

    def _rebound(self, s, cell, data, values, now) -> None:
        v_cell = values["station_voltage_v"][s] / self.line.stations.cells_per_module
        floor = self.route.floor_v_per_cell(self.route_kind(cell))
        data["rebound_v_per_cell"] = _finite(v_cell, None)
        if (math.isfinite(v_cell) and v_cell > floor and data.get("pass_drew", True)
                and data["redischarges"] < self.settings.max_redischarges):
            data.update(redischarges=data["redischarges"] + 1, passes=data["passes"] + 1)
            self.store.add_event("redischarge", f"station {s}: {cell} rebounded to {v_cell:.3f} V/cell above "
                                 f"{floor:g} V", station=s, battery_id=cell)
            self.store.set_station(s, St.DISCHARGING, cell, data)
        else:
            data["end_s"] = now
            if (math.isfinite(v_cell) and v_cell > floor and data.get("pass_drew", True)
                    and data["redischarges"] >= self.settings.max_redischarges):
                self.store.add_event("rebound_failed", f"station {s}: {cell} still rebounds to {v_cell:.3f} V/cell, "
                                     f"above the {floor:g} V floor, after {data['redischarges']} re-discharges",
                                     station=s, battery_id=cell,
                                     data={"value": round(float(v_cell), 4), "unit": "V/cell", "floor_v_per_cell": floor})
            self.store.set_station(s, St.DONE, cell, data)
            took_s, expected_s = now - float(data.get("start_s", now)), self.predicted_s(cell)
            if took_s < (1.0 - EARLY_MARGIN) * expected_s:
                self.tiers.need(f"battery {cell} done in {took_s:.0f} s, predicted {expected_s:.0f} s")

    def _done(self, s, cell, data, now) -> None:
        """Recorded first; the robot then takes the battery to the out lane (`_next_move`)."""
        if not data.get("recorded"):
            self._record(s, cell, data, "done", data.get("end_s", now))
            self.store.update_station_data(s, dict(data, recorded=True))

    def _unloaded(self, s: int, cell: str, data: dict, values, result: MoveResult) -> None:
        loaded = values[STATION_LOADED][s]
        if math.isfinite(loaded) and int(loaded) == NO_BATTERY:
            if not result.ok:
                self.store.add_event("unload_failed", f"station {s}: battery {cell} left the station but not into "
                                     f"the out lane: {result.reason}", station=s, battery_id=cell)
            self.store.set_station(s, St.EMPTY, None, {})
            self._drivers.pop(s, None)
        elif not result.ok:
            self.store.set_station(s, St.FAULT, cell, dict(data, reason=f"unload failed: robot: {result.reason}"))

    def _record(self, s: int | None, cell: str, data: dict, outcome: str, end_s: float, reason: str = "") -> None:
        b = self.batteries[cell]
        capacity_ah = NOMINAL_CAPACITY_AH * min(max(b["soh_est"], 0.3), 1.2)
        charge = float(data.get("charge_ah", 0.0))
        record = {
            "cell_id": cell, "station": s, "tier": b["tier"], "soc_pct": b["soc_pct"], "soc_lo_pct": b["soc_lo_pct"],
            "soc_hi_pct": b["soc_hi_pct"], "soc_level": b["soc_level"], "soh_est": b["soh_est"], "soh_sd": b["soh_sd"],
            "strategy": b["strategy"], "route": self.route_kind(cell).value, "outcome": outcome, "reason": reason,
            "cause": data.get("cause", []), "start_s": data.get("start_s"), "end_s": end_s,
            "charge_removed_ah": round(charge, 6),
            "residual_pct_est": round(b["soc_pct"] - 100.0 * charge / capacity_ah, 3),
            "peak_temp_degc": data.get("peak_temp_degc"), "time_above_warning_s": data.get("time_above_warning_s", 0.0),
            "passes": data.get("passes", 0), "redischarges": data.get("redischarges", 0),
            "rebound_v_per_cell": data.get("rebound_v_per_cell"), "pass_end": data.get("pass_end"),
            "source": b["source"],
            "slot": data.get("slot"), "channel": data.get("channel"), "placement": data.get("placement"),
            "vision": data.get("vision"), "clamp_kpa": data.get("clamp_kpa"), "clamped_s": data.get("clamped_s"),
            "limits": self.limits_of(cell),
        }
        try:
            self.store.record_battery(cell, record, self.models.versions)
            log.info("battery %s recorded: %s", cell, outcome)
        except DuplicateRecord:
            log.info("battery %s already recorded (resume)", cell)
        self._recorded.add(cell)
        self._open.pop(cell, None)

    # -- placement: the robot's next move ---------------------------------------------------------------
    def _moved(self, result: MoveResult, values, now: float) -> None:
        """A robot move ended: carry its outcome to the station or the battery it concerns."""
        move = result.move
        cell = self.cell_of(move.battery_id)
        pick = location_kind(move.pick, self.n, self.line.placement.slots)
        place = location_kind(move.place, self.n, self.line.placement.slots)
        if place is not None and place[0] == "station":
            rec = self.store.station(place[1])
            if rec.state is St.LOADING and rec.battery_id == cell:
                self._placed(place[1], cell, dict(rec.data), values, now, result)
        elif pick is not None and pick[0] == "station":
            rec = self.store.station(pick[1])
            if rec.state is St.DONE and rec.battery_id == cell:
                self._unloaded(pick[1], cell, dict(rec.data), values, result)
        elif place is not None and place[0] == "reject" and cell in self.batteries:
            refused = self.cell.refused.get(cell, {})
            reason = refused.get("reason", "refused")
            if not result.ok:
                reason += f"; the move to the reject lane failed: {result.reason}"
            self._record(None, cell, {"slot": pick[1] if pick else None, "vision": refused.get("vision"),
                                      "placement": {"ordered_s": result.ordered_s, "acked_s": result.acked_s,
                                                    "done_s": result.done_s, "place": "reject lane"}},
                         "rejected", now, reason=reason)

    def cell_of(self, plc_id: int) -> str:
        """The queued battery whose PLC id is `plc_id` (a cell_id such as '007' is id 7)."""
        if self._cell_of_n != len(self.batteries):  # batteries are only ever added
            self._cell_of = {b["plc_id"]: c for c, b in self.batteries.items() if b.get("plc_id") is not None}
            self._cell_of_n = len(self.batteries)
        return self._cell_of.get(int(plc_id), str(plc_id))

    def predicted_s(self, cell: str) -> float:
        if cell not in self._predicted:
            self._predicted[cell] = predicted_discharge_s(self.batteries[cell], self.line.limits.max_current_a)
        return self._predicted[cell]

    def _plan_tiers(self, now: float, recs, causes, waiting: list[str]) -> None:
        """A new tier plan when one is due (assign.py, bounded by its time limit)."""
        if not self.tiers.stale:
            return
        by_tier: dict[int, list[float]] = {}
        for c in waiting:
            if c not in self.cell.refused:
                by_tier.setdefault(int(self.batteries[c]["tier"]), []).append(self.predicted_s(c))
        loads = channel_loads(self.line.channels, recs, self.batteries,
                              {r.battery_id: self.predicted_s(r.battery_id) for r in recs
                               if r.battery_id in self.batteries}, now, causes)
        if self.tiers.update(loads, by_tier) is not None and self.tiers.calls:
            a = self.tiers.assignment
            self.store.add_event("tier_plan", f"tiers to channels ({self.tiers.why}): {a.channel_tier}",
                                 data={"channel_tier": a.channel_tier, "why": self.tiers.why,
                                       "predicted_makespan_s": _finite(a.predicted_makespan_s, None),
                                       "lower_bound_s": _finite(a.lower_bound_s, None)})

    def _still(self, values, s: int) -> bool:
        current = values["station_current_a"][s]
        return math.isfinite(current) and abs(current) < STILL_A and self.current_a[s] == 0.0

    def _next_move(self, now: float, values, status) -> None:
        """One move for the robot when it is free: unload a done station, else a refused battery to
        the reject lane, else the next battery of a channel's tier into an empty station."""
        recs = self.store.stations()
        for rec in recs:
            if rec.state is St.DONE and rec.data.get("recorded") and self._still(values, rec.station):
                self.cell.start(Move(station_location(rec.station), OUT_LANE, rec.data["plc_id"]), now)
                self.store.update_station_data(rec.station, dict(rec.data, unload_ordered_s=now))
                return
        recorded = self._recorded
        on_station = {r.battery_id for r in recs if r.battery_id}
        candidates = []  # (slot, cell) that vision lets move
        for view in self.cell.slots:
            cell = self.cell_of(view.battery_id)
            if view.battery_id == NO_BATTERY or cell not in self.batteries or cell in on_station:
                continue  # empty, or a battery not queued yet (its arrival file is being graded)
            if cell in recorded or cell in self.cell.refused:
                if cell not in self.cell.refused:
                    self.cell.refuse(cell, "already recorded; it does not belong in the inbox", view.verdict)
                self.cell.start(Move(slot_location(view.slot), REJECT_LANE, view.battery_id), now)
                return
            if self.cell.vision_refused(view.slot):
                self.cell.refuse(cell, f"vision: {view.verdict.reason}", view.verdict)
                self.cell.start(Move(slot_location(view.slot), REJECT_LANE, view.battery_id), now)
                return
            if view.verdict.ok:
                candidates.append((view.slot, cell, view.verdict))
        if candidates:
            self._load_next(now, values, status, recs, candidates)

    def _load_next(self, now, values, status, recs, candidates) -> None:
        """An empty station the core does not hold isolated takes a battery of its channel's tier
        (a channel holding none takes the tier most batteries wait in, among those in the slots)."""
        causes = tuple(status.station_cause) if status is not None else ()
        waiting = self.waiting()
        self._plan_tiers(now, recs, causes, waiting)
        for channel in self.line.channels:
            busy = [self.batteries[r.battery_id]["tier"] for r in recs
                    if r.station in channel.stations and r.battery_id in self.batteries and r.state in HOLDING]
            free = [s for s in channel.stations if recs[s].state is St.EMPTY and not (len(causes) > s and causes[s])
                    and self._still(values, s) and math.isfinite(values[STATION_LOADED][s])
                    and int(values[STATION_LOADED][s]) == NO_BATTERY]
            if not free:
                continue
            in_slots = {self.batteries[c]["tier"] for _, c, _ in candidates}
            planned = self.tiers.tier_for(channel.name)
            if busy:
                tier = busy[0]
            elif planned in in_slots:
                tier = planned
            else:  # no plan, or its tier not in the slots yet: the tier most batteries wait in, among the slots'
                counts: dict[int, int] = {}
                for c in waiting:
                    if self.batteries[c]["tier"] in in_slots:
                        counts[self.batteries[c]["tier"]] = counts.get(self.batteries[c]["tier"], 0) + 1
                tier = max(counts, key=lambda t: (counts[t], -t)) if counts else None
            pick = next(((k, c, v) for k, c, v in candidates if self.batteries[c]["tier"] == tier), None)
            if pick is None:
                continue
            slot, cell, verdict = pick
            s = free[0]
            plc_id = self.batteries[cell]["plc_id"]
            self.store.set_station(s, St.LOADING, cell, {
                "plc_id": plc_id, "slot": slot, "channel": channel.name, "vision": verdict.to_dict(),
                "placement": {"slot": slot, "station": s, "ordered_s": now}})
            self.cell.start(Move(slot_location(slot), station_location(s), plc_id), now)
            log.info("station %d: battery %s from slot %d (tier %d, channel %s)", s, cell, slot, tier, channel.name)
            return

    def _write(self, values) -> dict[str, np.ndarray]:
        pressure = np.array([self._tag("fixture_pressure_setpoint_kpa").safe_value[0]] * self.n, float)
        coolant = np.array([self._tag("coolant_base_lpm").safe_value[0]] * self.n, float)
        for rec in self.store.stations():
            s = rec.station
            if rec.state in ON_STATION and rec.battery_id in self.batteries:
                strategy = self.batteries[rec.battery_id]["strategy"]
                pressure[s] = strategy["pressure_kpa"]
                coolant[s] = min(strategy["coolant_base_lpm"], self.line.limits.max_coolant_lpm)
            if rec.state is not St.DISCHARGING or self.machine.state is not State.EXECUTE:
                self.current_a[s] = 0.0
        current = np.clip(self.current_a, 0.0, self.line.limits.max_current_a)
        out = {"discharge_current_setpoint_a": current, "fixture_pressure_setpoint_kpa": pressure,
               "coolant_base_lpm": coolant}
        payload = {k: tuple(float(x) for x in v) for k, v in out.items()}
        payload.update(self.cell.writes())
        if self.packtags_state:
            payload[PACKTAGS_STATE] = int(self.machine.state)
        try:
            results = self.bus.write({self.tags[r]: v for r, v in payload.items()},
                                     timeout_s=self.settings.bus_timeout_s)
        except BusError as exc:
            log.warning("PLC write failed: %s", exc)
            self._plc_write_problem = f"PLC write failed: {exc}"
            return out
        bad = [r for r in results if r.quality is not Quality.GOOD]
        for r in bad:
            log.warning("write of %s refused: %s %s", r.name, r.quality.value, r.detail)
        self._plc_write_problem = ("; ".join(f"write of {r.name} refused: {r.quality.value} {r.detail}".strip()
                                             for r in bad) or None)
        return out

    def _send_limits(self) -> None:
        if self.core is None:
            return
        strategies = []
        for rec in self.store.stations():
            b = self.batteries.get(rec.battery_id) if rec.battery_id else None
            strategies.append(Strategy.from_dict(b["strategy"]) if b else fixed_strategy())
        limits = tuple(s.station_limits() for s in strategies)
        if limits != self._limits_sent:
            try:
                self.core.send_setpoints(batch_setpoints(strategies))
            except RtcoreError as exc:  # the core is not up (yet): it keeps its last limits; retry next scan
                log.warning("tier limits not sent: %s", exc)
                return
            self._limits_sent = limits
            self._limits_now = tuple(dataclasses.asdict(x) for x in limits)

    # -- arrivals ------------------------------------------------------------------------------------------
    def read_inbox(self) -> int:
        """Read, grade, plan and queue the CSVs in the inbox; returns the batteries queued.

        In the foreground (the default) every file is handled now. With `settings.plan_in_background`
        one file at a time is graded and planned on a worker thread while the scans go on; its
        batteries are queued at the first scan after the work ends. The file stays in the inbox
        until then, so a supervisor killed meanwhile reads it again."""
        if not self.settings.plan_in_background:
            return sum(self._queue(path, *self._prepare(path, self._known())) for path in self._inbox_files())
        queued = 0
        if self._job is not None and self._job.done.is_set():
            job, self._job = self._job, None
            queued = self._queue(job.path, *job.result())
        if self._job is None:
            files = self._inbox_files()
            if files:
                self._job = _Job(files[0], self._prepare, self._known())
        return queued

    def _inbox_files(self) -> list[Path]:
        return sorted(self.paths.inbox.glob("*.csv"))

    def _known(self) -> set[str]:
        return set(self.batteries) | self._recorded

    def _reject_file(self, path: Path, why: str) -> None:
        target = self.paths.inbox / "rejected" / path.name
        (target.parent / f"{path.name}.error.txt").write_text(why + "\n")
        shutil.move(str(path), target)
        self.store.add_event("arrival_rejected", why, data={"file": path.name})
        log.warning("inbox: %s rejected: %s", path.name, why)

    def _prepare(self, path: Path, known: set[str]):
        """Read, grade and plan one arrival file (no store writes: the worker thread may run it).
        Returns (error, prepared): the file's refusal, or the rows to queue."""
        try:
            cells = read_cells_csv(path)
        except CellsFileError as exc:
            return str(exc), None
        lines = cells.lines if cells.lines is not None else np.arange(len(cells)) + 2
        keep = np.array([str(c) not in known for c in cells.cell_ids], bool)
        duplicates = [str(c) for c in cells.cell_ids[~keep]]
        refused = tuple(cells.refused)  # outside the physical ranges: not graded
        if not keep.any():
            return None, (cells, lines, None, None, duplicates, refused)
        rows = np.flatnonzero(keep)
        cells, lines = cells.subset(rows), lines[rows]
        grades = grade_cells_table(cells, self.line.tiers, model=self.models.soc)
        sane, absurd = sane_rows(cells, grades)  # an absurd grade is neither planned nor queued
        refused += absurd
        if not sane.size:
            return None, (cells, lines, None, None, duplicates, refused)
        if absurd:
            cells, grades, lines = cells.subset(sane), grades.select(sane), lines[sane]
        started = time.monotonic()
        plans = self.planner(cells, grades)
        log.info("inbox: %s: %d batteries graded and planned in %.1f s", path.name, len(cells),
                 time.monotonic() - started)
        return None, (cells, lines, grades, plans, duplicates, refused)

    def _queue(self, path: Path, error: str | None, prepared) -> int:
        """Write what `_prepare` made into the store (one event per battery), then move the file."""
        if error is not None:
            self._reject_file(path, error)
            return 0
        cells, lines, grades, plans, duplicates, refused = prepared
        for r in refused:  # outside the physical range, or an absurd grade: no plan, no record
            self.store.add_event("arrival_refused", r.message(path.name), battery_id=str(r.cell_id),
                                 data=r.to_dict() | {"file": path.name})
            log.warning("inbox: %s", r.message(path.name))
        for c in duplicates:
            self.store.add_event("arrival_duplicate", f"{path.name}: battery {c} is already queued or recorded; "
                                 "not queued again", battery_id=c, data={"file": path.name})
        queued = 0
        for i, cell in enumerate(grades.cell_ids if grades is not None else ()):
            cell = str(cell)
            if cell in self.batteries:  # queued by a file read while this one was planned
                continue
            tier = int(grades.tier[i])
            data = {"file": path.name, "line": int(lines[i]), "tier": tier, "plc_id": plc_battery_id(cell),
                    "soc_pct": float(grades.soc_pct[i]), "soc_lo_pct": float(grades.soc_lo_pct[i]),
                    "soc_hi_pct": float(grades.soc_hi_pct[i]), "soc_level": float(grades.soc_level),
                    "soh_est": float(grades.soh_est[i]), "soh_sd": float(grades.soh_sd),
                    "strategy": plans[tier].to_dict(),
                    "features": {k: float(v[i]) for k, v in cells.columns.items() if k.startswith("feat_")},
                    "source": f"{path.name}:{int(lines[i])}"}
            self.store.add_event("battery_queued", f"battery {cell} queued (tier {tier})", battery_id=cell, data=data)
            self.batteries[cell] = dict(data)
            self._open[cell] = None
            queued += 1
            if data["plc_id"] is None:
                self._record(None, cell, {}, "rejected", self.clock(),
                             reason=f"cell id {cell!r} cannot be written to robot_order_battery_id "
                                    "(a whole number 0..2147483647)")
        shutil.move(str(path), self.paths.inbox / "done" / path.name)
        if queued:
            self.tiers.need(f"{queued} batteries queued from {path.name}")
        self.store.add_event("arrival_read", f"{path.name}: {queued} batteries queued", data={"file": path.name})
        log.info("inbox: %s: %d batteries queued", path.name, queued)
        return queued

    def _plan(self, cells, grades) -> dict[int, Strategy]:
        p = self.settings.plan
        with History(self.paths.state_dir / HISTORY_FILE) as history:
            plans = plan_tiers(cells, grades, history, policy=self.models.policy, max_simulations=p.max_simulations,
                               max_seconds=p.max_seconds, seed=p.seed, rollout_modules=p.rollout_modules,
                               use_tree=p.use_tree, rollout_dt_s=p.rollout_dt_s)
        return {t: plan.strategy for t, plan in plans.items()}

    # -- resume ----------------------------------------------------------------------------------------------
    def _check_resume(self) -> None:
        """A station holding a battery in the store must hold it on the PLC too (discharging,
        resting): else it goes to fault, naming both ids, for the operator to clear."""
        values = self._read()
        for rec in self.store.stations():
            if rec.state in ON_STATION:
                loaded = values[STATION_LOADED][rec.station]
                if math.isfinite(loaded) and int(loaded) != rec.data["plc_id"]:
                    held = "no battery" if int(loaded) == NO_BATTERY else f"battery id {int(loaded)}"
                    why = f"the PLC reports {held} loaded, the store battery {rec.battery_id}"
                    self.store.set_station(rec.station, St.FAULT, rec.battery_id, dict(rec.data, reason=why))
                    self.store.add_event("resume_mismatch", why, station=rec.station, battery_id=rec.battery_id)
                else:
                    log.info("station %d: resumes %s with battery %s", rec.station, rec.state.value, rec.battery_id)

    def summary(self) -> dict:
        records = [b.record | {"recorded_at": b.recorded_at, "model_versions": b.model_versions}
                   for b in self.store.batteries()]
        return {
            "line": self.line.name, "state_dir": str(self.paths.state_dir), "packml_state": self.machine.state.label,
            "batteries_processed": len(records), "batteries_waiting": len(self.waiting()),
            "restarts": self.restarts, "model_versions": self.models.versions,
            "batteries": records,
            "robot_moves": [dict(e.data, at=e.at) for e in self.store.events(kind="robot_move")],
            "stations": [{"station": r.station, "state": r.state.value, "battery_id": r.battery_id}
                         for r in self.store.stations()],
            "alarms_active": [a.to_dict() for a in self.alarms.active()],
        }

    def close(self) -> None:
        """Close the store; a planning job under way is abandoned (its file stays in the inbox)."""
        self._job = None  # a daemon thread: it ends with the process
        self.historian.close()
        self.alarms.close()
        self.store.close()
