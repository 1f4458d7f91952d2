"""The line seen from outside: one model for the operator page, OPC UA and Sparkplug B (issue 18).

Owns the snapshot (`LineSnapshot` with `StationView`, `AlarmView`, `BatchView`: frozen, JSON-able
with `.to_dict()`; a value may be None, unknown), the command path (`LineCommand`, `Role`,
`CommandResult`, `ROLE_COMMANDS`, `SETPOINTS`) and `LineHub`, which carries both between the
supervisor's scan loop and the servers' threads. `snapshot_of(engine)` and `apply(engine,
command)` read and drive a `FlowEngine` from outside (its PackML machine, the store's station
records, the AlarmBook); they run in the scan thread only (the store and the alarm book are
SQLite connections of that thread).

    hub = LineHub()
    # the scan thread, each scan:        hub.carry_out(lambda c: apply(engine, c)); engine.scan();
    #                                    hub.publish(snapshot_of(engine))
    # any other thread:                  hub.latest(); sub = hub.subscribe(); sub.get(1.0) / await sub.aget(1.0)
    #                                    hub.submit(LineCommand.packml("hold", by="hmi"), Role.OPERATOR)

Roles: an operator may start, stop, hold, unhold, reset, clear, abort and acknowledge; an engineer
may also change a setpoint. A setpoint is one of the line's limits the flow's own write path
applies every scan (`SETPOINTS`: `max_current_a` clips `discharge_current_setpoint_a`,
`max_coolant_lpm` clips `coolant_base_lpm`); a new value must be a write the tag map allows to
the supervisor for that tag (owner, access, limits: `TagBus.check_write`), and the flow's next
`bus.write` checks it again. `apply` gives it to `FlowEngine.set_limit`, which keeps it across a
restart while the line file still has the value it overrode. Every command carried out or
refused is an event in the store (`line_command`, with who and the role).
Tests: tests/edge/lineview/test_model.py.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 8  # snapshots kept per subscriber; a slow one loses the oldest (newest wins)
COMMAND_QUEUE = 64  # commands waiting for the scan loop; more are refused at once
SUBMIT_TIMEOUT_S = 5.0
TRACKED = ("discharging", "resting")  # the station states whose measured current the flow tracks each scan  # `submit` waits this long for the scan loop's answer by default


# -- the snapshot ------------------------------------------------------------------------------------
def _clean(x: Any) -> Any:
    """JSON-able: NaN and infinity become None, tuples lists, nested dataclasses dicts."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    return x


@dataclass(frozen=True)
class StationView:
    index: int
    battery: str | None  # the cell id held (None: empty)
    tier: int | None
    soc_pct: float | None  # the grade's SOC less the charge counted
    temp_degc: float | None  # the core's hottest marker of the station (None: no core status)
    current_a: float | None  # measured at the last scan (discharging, resting; else None: not tracked)
    state: str  # edge.supervisor.stations.StationState value: empty, loading, clamping, discharging...
    isolated: bool  # the core isolates it (a cause bit) or the station is in state isolated
    cause: tuple[str, ...] = ()  # the core's flag names
    channel: str | None = None
    current_setpoint_a: float | None = None  # what the flow last asked
    since_s: float | None = None  # the store's time of the change into `state`

    def to_dict(self) -> dict[str, Any]:
        return _clean(dataclasses.asdict(self))


@dataclass(frozen=True)
class AlarmView:
    id: int
    key: str  # the alarm's tag: core.station.3, plc.write, robot, vision.17 ...
    source: str  # core, plc, robot, historian, supervisor
    priority: str  # high, medium, low
    message: str
    cause: str
    state: str  # ISA-18.2: unack, acked, rtn_unack
    raised_s: float
    station: int | None = None
    battery: str | None = None
    value: float | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(dataclasses.asdict(self))


@dataclass(frozen=True)
class BatchView:
    recorded: int  # batteries with their record
    total: int  # batteries queued since the state dir began
    waiting: int  # queued, neither on a station nor recorded
    report_path: str | None = None  # where the page serves the batch report (None: not served)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LineSnapshot:
    line: str
    packml_state: str  # PackML state label: Execute, Held, Stopped ...
    mode: str  # PackTags UnitMode: Production
    time_s: float  # the engine's clock at the snapshot
    stations: tuple[StationView, ...]
    alarms: tuple[AlarmView, ...]
    batch: BatchView
    packml_state_number: int | None = None  # PackTags StateCurrent
    allowed_commands: tuple[str, ...] = ()  # the PackML commands the state takes (lower case)
    setpoints: dict[str, float] = field(default_factory=dict)  # SETPOINTS' values now
    seq: int = 0  # the hub's publication number (0: not published)

    def to_dict(self) -> dict[str, Any]:
        return _clean({"line": self.line, "packml_state": self.packml_state, "mode": self.mode, "time_s": self.time_s,
                       "packml_state_number": self.packml_state_number,
                       "allowed_commands": list(self.allowed_commands), "setpoints": dict(self.setpoints),
                       "seq": self.seq, "stations": [s.to_dict() for s in self.stations],
                       "alarms": [a.to_dict() for a in self.alarms], "batch": self.batch.to_dict()})


EMPTY_SNAPSHOT = LineSnapshot(line="", packml_state="Unknown", mode="Production", time_s=float("nan"), stations=(),
                              alarms=(), batch=BatchView(0, 0, 0))


# -- commands and roles ------------------------------------------------------------------------------
class Role(str, enum.Enum):
    OPERATOR = "operator"
    ENGINEER = "engineer"


PACKML_COMMANDS = ("start", "stop", "hold", "unhold", "reset", "clear", "abort")
OPERATOR_COMMANDS = frozenset(PACKML_COMMANDS + ("acknowledge",))
ROLE_COMMANDS = {Role.OPERATOR: OPERATOR_COMMANDS, Role.ENGINEER: OPERATOR_COMMANDS | {"setpoint"}}
#: setpoint name -> (the line limit it sets, the supervisor's tag the flow clips with it, unit)
SETPOINTS = {"max_current_a": ("discharge_current_setpoint_a", "A"),
             "max_coolant_lpm": ("coolant_base_lpm", "L/min")}


@dataclass(frozen=True)
class LineCommand:
    kind: str  # one of PACKML_COMMANDS, "acknowledge", "setpoint"
    alarm_id: int | None = None  # acknowledge
    name: str | None = None  # setpoint: a key of SETPOINTS
    value: float | None = None  # setpoint
    by: str = ""  # who asks, as the server knows it (e.g. "hmi 127.0.0.1 token operator")

    @classmethod
    def packml(cls, kind: str, by: str = "") -> LineCommand:
        return cls(kind.lower(), by=by)

    @classmethod
    def acknowledge(cls, alarm_id: int, by: str = "") -> LineCommand:
        return cls("acknowledge", alarm_id=int(alarm_id), by=by)

    @classmethod
    def setpoint(cls, name: str, value: float, by: str = "") -> LineCommand:
        return cls("setpoint", name=name, value=float(value), by=by)

    def describe(self) -> str:
        if self.kind == "acknowledge":
            return f"acknowledge alarm {self.alarm_id}"
        if self.kind == "setpoint":
            return f"setpoint {self.name} = {self.value:g}"
        return self.kind


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    command: str  # LineCommand.describe()
    message: str  # what was done, or why it was refused
    packml_state: str | None = None  # after the command
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_role(command: LineCommand, role: Role | str) -> str | None:
    """Why `role` may not give `command` (None: it may)."""
    try:
        role = Role(role)
    except ValueError:
        return f"role {role!r} is unknown; allowed: {', '.join(r.value for r in Role)}"
    known = ROLE_COMMANDS[Role.ENGINEER]
    if command.kind not in known:
        return f"command {command.kind!r} is unknown; allowed: {', '.join(sorted(known))}"
    if command.kind not in ROLE_COMMANDS[role]:
        allowed = [r.value for r in Role if command.kind in ROLE_COMMANDS[r]]
        return f"role {role.value} may not give {command.kind!r}; it needs the role {' or '.join(allowed)}"
    return None


# -- the hub -----------------------------------------------------------------------------------------
class Subscription:
    """One reader's live snapshots: a bounded queue, newest wins (a slow reader loses the oldest and
    never grows memory). `get(timeout_s)` blocks a thread; `aget(timeout_s)` awaits in an event loop."""

    def __init__(self, hub: LineHub, maxlen: int):
        self._hub = hub
        self._items: collections.deque[LineSnapshot] = collections.deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.dropped = 0  # snapshots lost to the bound
        self.closed = False

    def _put(self, snapshot: LineSnapshot) -> None:
        with self._cond:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(snapshot)
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop closed
                pass

    def get(self, timeout_s: float | None = None) -> LineSnapshot | None:
        """The oldest snapshot kept, waiting up to `timeout_s` (None: no new one came)."""
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout_s)
            return self._items.popleft() if self._items else None

    async def aget(self, timeout_s: float | None = None) -> LineSnapshot | None:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        with self._cond:
            if self._items:
                return self._items.popleft()
            if self.closed:
                return None
            self._waiters.append((loop, event))
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._cond:
                self._waiters.remove((loop, event))
        with self._cond:
            return self._items.popleft() if self._items else None

    def pending(self) -> int:
        with self._cond:
            return len(self._items)

    def close(self) -> None:
        self._hub._unsubscribe(self)
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pending:
    __slots__ = ("command", "role", "done", "result", "taken", "abandoned")

    def __init__(self, command: LineCommand, role: Role):
        self.command, self.role = command, role
        self.done = threading.Event()
        self.result: CommandResult | None = None
        self.taken = False
        self.abandoned = False


class LineHub:
    """Thread-safe: the scan loop publishes snapshots and carries out the queued commands; the
    servers' threads read the latest snapshot, subscribe to the live ones and submit commands."""

    def __init__(self, *, subscriber_queue: int = SUBSCRIBER_QUEUE, command_queue: int = COMMAND_QUEUE):
        self._lock = threading.Lock()
        self._latest = EMPTY_SNAPSHOT
        self._seq = 0
        self._subs: list[Subscription] = []
        self._subscriber_queue = subscriber_queue
        self._commands: collections.deque[_Pending] = collections.deque()
        self._command_queue = command_queue
        self._wake = threading.Condition(self._lock)

    # -- snapshots
    def publish(self, snapshot: LineSnapshot) -> LineSnapshot:
        """Number it, keep it as the latest and hand it to every subscriber; returns it numbered."""
        with self._lock:
            self._seq += 1
            snapshot = dataclasses.replace(snapshot, seq=self._seq)
            self._latest = snapshot
            subs = list(self._subs)
        for sub in subs:
            sub._put(snapshot)
        return snapshot

    def latest(self) -> LineSnapshot:
        with self._lock:
            return self._latest

    def subscribe(self, maxlen: int | None = None) -> Subscription:
        sub = Subscription(self, maxlen or self._subscriber_queue)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    # -- commands
    def submit(self, command: LineCommand, role: Role | str, timeout_s: float = SUBMIT_TIMEOUT_S) -> CommandResult:
        """Check the role, queue the command for the scan loop and wait up to `timeout_s` for its
        answer. Never waits forever: a command the loop has not taken by then is withdrawn."""
        why = check_role(command, role)
        if why is not None:
            return CommandResult(False, command.describe(), f"refused: {why}", role=str(getattr(role, "value", role)))
        role = Role(role)
        pending = _Pending(command, role)
        with self._lock:
            if len(self._commands) >= self._command_queue:
                return CommandResult(False, command.describe(), f"refused: {self._command_queue} commands wait for "
                                     "the scan loop already", role=role.value)
            self._commands.append(pending)
            self._wake.notify_all()
        if pending.done.wait(timeout_s):
            return pending.result
        with self._lock:
            if not pending.taken:
                pending.abandoned = True
                if pending in self._commands:
                    self._commands.remove(pending)
                return CommandResult(False, command.describe(), f"not carried out: the scan loop did not take it "
                                     f"within {timeout_s:g} s (is the line running?)", role=role.value)
        if pending.done.wait(timeout_s):  # taken: it is being carried out now
            return pending.result
        return CommandResult(False, command.describe(), f"taken by the scan loop but not answered within "
                             f"{2 * timeout_s:g} s; see the line's events", role=role.value)

    def waiting_commands(self) -> int:
        with self._lock:
            return len(self._commands)

    def wait_for_command(self, timeout_s: float) -> bool:
        """The scan loop between scans: True as soon as a command waits (False after `timeout_s`)."""
        with self._lock:
            if not self._commands:
                self._wake.wait(timeout_s)
            return bool(self._commands)

    def carry_out(self, do: Callable[[LineCommand, Role], CommandResult]) -> int:
        """The scan thread: carry out every queued command with `do(command, role)` (e.g.
        `lambda c, r: apply(engine, c, r)`) and answer each; returns how many were carried out."""
        done = 0
        while True:
            with self._lock:
                if not self._commands:
                    return done
                pending = self._commands.popleft()
                if pending.abandoned:
                    continue
                pending.taken = True
            try:
                result = do(pending.command, pending.role)
            except Exception as exc:  # answered, never left hanging; the loop goes on
                log.exception("line command %s failed", pending.command.describe())
                result = CommandResult(False, pending.command.describe(), f"failed: {type(exc).__name__}: {exc}",
                                       role=pending.role.value)
            pending.result = result
            pending.done.set()
            done += 1


# -- the engine from outside (the scan thread only) --------------------------------------------------
def _num(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _soc_pct(battery: dict, charge_ah: float) -> float | None:
    from edge.strategy.model import NOMINAL_CAPACITY_AH

    soc, soh = _num(battery.get("soc_pct")), _num(battery.get("soh_est"))
    if soc is None or soh is None:
        return None
    return soc - 100.0 * charge_ah / (NOMINAL_CAPACITY_AH * min(max(soh, 0.3), 1.2))


_RECORDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> the cell ids known recorded


def _recorded(engine) -> set[str]:
    """The queued batteries with their record. A record is never taken back, so each battery is
    looked up (one indexed query) only until it is found recorded: the cost of a scan's snapshot
    does not grow with the batteries recorded (reading every record each scan did: 2000 records,
    about 60 ms)."""
    known = _RECORDED.setdefault(engine, set())
    for cell in engine.batteries:
        if cell not in known and engine.store.battery(cell) is not None:
            known.add(cell)
    return known


def snapshot_of(engine, *, report_path: str | None = None) -> LineSnapshot:
    """The line as the engine has it now (after a scan): PackML, every station, the active alarms,
    the batch. Reads the store and the alarm book (the scan thread's connections) and the core's
    last status (shared memory); writes nothing."""
    from edge.rtloop.handle import RtcoreError
    from edge.supervisor.flow import cause_names

    status = None
    if engine.core is not None:
        try:
            status = engine.core.status()
        except (RtcoreError, OSError, ValueError):
            status = None
    records = engine.store.stations()
    recorded = _recorded(engine)
    on_station = {r.battery_id for r in records if r.battery_id}
    waiting = sum(1 for c in engine.batteries if c not in on_station and c not in recorded)
    stations = []
    for r in records:
        s = r.station
        cause_bits = int(status.station_cause[s]) if status is not None and len(status.station_cause) > s else 0
        hot = _num(status.station_hot_degc[s]) if status is not None and len(status.station_hot_degc) > s else None
        battery = engine.batteries.get(r.battery_id) if r.battery_id else None
        names = tuple(r.data.get("cause") or ()) if not cause_bits else tuple(cause_names(cause_bits))
        state = getattr(r.state, "value", str(r.state))
        try:
            channel = engine.line.channel_of(s).name
        except KeyError:
            channel = None
        stations.append(StationView(
            index=s, battery=r.battery_id, tier=int(battery["tier"]) if battery else None,
            soc_pct=_soc_pct(battery, float(r.data.get("charge_ah", 0.0) or 0.0)) if battery else None,
            temp_degc=hot, current_a=_num(r.data.get("last_current_a")) if state in TRACKED else None,
            state=state, isolated=bool(cause_bits) or state == "isolated", cause=names, channel=channel,
            current_setpoint_a=_num(engine.current_a[s]) if s < len(engine.current_a) else None, since_s=_num(r.since)))
    alarms = tuple(AlarmView(id=a.id, key=a.key, source=a.source, priority=a.priority, message=a.text, cause=a.cause,
                             state=a.state, raised_s=a.raised_at, station=a.station, battery=a.battery_id,
                             value=_num(a.value), unit=a.unit)
                   for a in engine.alarms.active())
    machine = engine.machine
    return LineSnapshot(
        line=engine.line.name, packml_state=machine.state.label, mode="Production", time_s=float(engine.clock()),
        stations=tuple(stations), alarms=alarms,
        batch=BatchView(recorded=len(recorded), total=len(engine.batteries), waiting=waiting, report_path=report_path),
        packml_state_number=int(machine.state),
        allowed_commands=tuple(c.label.lower() for c in machine.allowed() if c.label.lower() in PACKML_COMMANDS),
        setpoints={name: float(getattr(engine.line.limits, name)) for name in SETPOINTS})


def apply(engine, command: LineCommand, role: Role | str = Role.OPERATOR) -> CommandResult:
    """Carry out one command on the engine (the scan thread), after the role check; the result
    says what was done or why not. Every outcome is a `line_command` event in the store."""
    why = check_role(command, role)
    role_name = str(getattr(role, "value", role))
    if why is None:
        if command.kind in PACKML_COMMANDS:
            ok, message = _packml(engine, command)
        elif command.kind == "acknowledge":
            ok, message = _acknowledge(engine, command, role_name)
        else:
            ok, message = _setpoint(engine, command)
    else:
        ok, message = False, f"refused: {why}"
    result = CommandResult(ok, command.describe(), message, packml_state=engine.machine.state.label, role=role_name)
    engine.store.add_event("line_command", f"{command.describe()} by {command.by or '?'} ({role_name}): {message}",
                           data={"command": _clean(dataclasses.asdict(command)), "role": role_name, "ok": ok})
    (log.info if ok else log.warning)("line command %s by %s (%s): %s", command.describe(), command.by, role_name,
                                      message)
    return result


def _packml(engine, command: LineCommand) -> tuple[bool, str]:
    from edge.supervisor.packml import Command

    cmd = Command[command.kind.upper()]
    before = engine.machine.state
    if engine.command(cmd):  # refused: logged and a packml_refused event (an alarm) by the engine
        return True, f"PackML {cmd.label}: {before.label} -> {engine.machine.state.label}"
    allowed = ", ".join(c.label for c in engine.machine.allowed()) or "no command"
    return False, f"refused: PackML {cmd.label} in state {before.label}; the state takes {allowed}"


def _acknowledge(engine, command: LineCommand, role: str) -> tuple[bool, str]:
    from edge.supervisor.alarms import AlarmError, operator_identity

    if command.alarm_id is None:
        return False, "refused: acknowledge needs the alarm's id"
    alarm = engine.alarms.get(command.alarm_id)
    if alarm is None:
        return False, f"refused: no alarm {command.alarm_id}"
    if alarm.acked_at is not None:
        return True, f"alarm {alarm.id} ({alarm.key}) was acknowledged already; state {alarm.state}"
    by = operator_identity("page" if not command.by else command.by.split()[0]) | {"role": role,
                                                                                  "client": command.by}
    try:
        after = engine.alarms.ack(alarm.id, by=by)
    except AlarmError as exc:
        return False, f"refused: {exc}"
    return True, f"alarm {after.id} ({after.key}) acknowledged; state {after.state}"


def _setpoint(engine, command: LineCommand) -> tuple[bool, str]:
    """A line limit through the engine's public path (`FlowEngine.set_limit`: the map's own write
    check, `TagBus.check_write`, then the store, then the flow's write path from the next scan)."""
    from edge.supervisor.flow import LimitRefused

    if command.name not in SETPOINTS:
        return False, f"refused: setpoint {command.name!r} is unknown; allowed: {', '.join(SETPOINTS)}"
    role_name, unit = SETPOINTS[command.name]
    try:
        before, value = engine.set_limit(command.name, command.value, by=command.by or "")
    except LimitRefused as exc:
        return False, f"refused: {exc}"
    tag_name = engine.tags.get(role_name, role_name)
    return True, f"{command.name}: {before:g} -> {value:g} {unit} (clips {tag_name} from the next scan)"
