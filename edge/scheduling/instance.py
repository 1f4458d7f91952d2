"""Scheduling instances: load a `discharge-edge/test-schedule-instance/v1` JSON file into frozen
dataclasses, checked whole against the shared schema (../shared/scheduling/instance_schema.json).

Every problem is collected and reported together in one `InstanceError` whose lines name the
file and the JSON path of the field (`modules[3].tasks[0].units[1].duration_min`) and, where
known, the module and unit. The checks mirror the schema (required fields, types, minimums,
enums) plus what the schema states in words: one module per station, every station wired to at
least one channel, unique ids.

Extension used by re-planning (not in the v1 schema, which allows extra fields): a module may
carry `release_min` (integer >= 0), the earliest start of its first unit.

Physical limits (not in the schema): durations, rests and releases are at most MAX_MINUTES
(90 days; a 1e30-minute step is a typo, and refusing it keeps every sum exact for CP-SAT's
int64 and for the bounds). `read_json` (also used for a running plan) accepts a UTF-8 byte
order mark and names the file and line of bytes that are not UTF-8 and of nesting that is too
deep; every value shown in a message is shortened (`_show`). No input raises anything but
InstanceError.

Tests: tests/edge/scheduling/test_schedule_instance.py, test_schedule_input_errors.py,
test_schedule_instance_fuzz.py (hypothesis).
"""

from __future__ import annotations

import codecs
import json
import re
import reprlib
from dataclasses import dataclass
from functools import cached_property
from enum import Enum
from pathlib import Path
from typing import Any

SCHEMA_ID = "discharge-edge/test-schedule-instance/v1"
MAX_MINUTES = 129_600      # 90 days: no test step, rest or release is longer; keeps every sum of
                           # minutes exact in int64 (CP-SAT) and in float (the bounds)
MAX_JSON_DEPTH = 64        # the schema needs 6 levels; the message names the line where it is passed


class TaskOrder(str, Enum):
    FIXED = "fixed"              # tasks run in the listed order
    FIRST_FIXED = "first_fixed"  # the first task first, the others in any order (each one whole)


class InstanceError(ValueError):
    """A bad instance; `problems` lists every finding as 'file: path: message'."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {source}: {p}" for p in self.problems)
        super().__init__(f"invalid scheduling instance {source} ({len(self.problems)} problem(s)):\n{lines}")


@dataclass(frozen=True)
class Unit:
    """A non-interruptible task unit (the paper's P_ijk). `index` is its global position."""

    index: int
    id: str
    module: int          # index into Instance.modules
    task: int            # index into the module's tasks
    position: int        # index inside the task
    duration_min: int
    rest_before_min: int = 0
    rest_after_min: int = 0
    op: str | None = None
    rate: str | None = None


@dataclass(frozen=True)
class Task:
    item: str
    rest_class_min: int
    units: tuple[Unit, ...]
    temperature: str | None = None


@dataclass(frozen=True)
class Module:
    index: int
    id: str
    station: str
    tasks: tuple[Task, ...]
    release_min: int = 0
    profile: str | None = None


@dataclass(frozen=True)
class Channel:
    index: int
    id: str
    stations: tuple[str, ...]


@dataclass(frozen=True)
class Instance:
    name: str
    channels: tuple[Channel, ...]
    modules: tuple[Module, ...]
    task_order: TaskOrder = TaskOrder.FIXED
    source: str = "<memory>"

    # -- derived views (cheap; computed on demand) ------------------------------------------
    @cached_property
    def units(self) -> tuple[Unit, ...]:
        return tuple(u for m in self.modules for t in m.tasks for u in t.units)

    def unit_by_id(self) -> dict[str, Unit]:
        return {u.id: u for u in self.units}

    @cached_property
    def _wiring(self) -> dict[str, tuple[int, ...]]:
        # channels with the same station list are handled together (a switch matrix is one
        # group), and equal channel tuples are one object: O(wiring) once per instance
        groups: dict[tuple[str, ...], list[int]] = {}
        for ch in self.channels:
            groups.setdefault(ch.stations, []).append(ch.index)
        wired: dict[str, list[int]] = {}
        for stations, chs in groups.items():
            for st in stations:
                wired.setdefault(st, []).extend(chs)
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        out = {}
        for st, chs in wired.items():
            t = tuple(sorted(set(chs))) if len(groups) > 1 else tuple(chs)
            out[st] = shared.setdefault(t, t)
        return out

    def channels_of_station(self) -> dict[str, tuple[int, ...]]:
        """Per wired station, the indices of its channels in ascending order."""
        return dict(self._wiring)

    def channels_of_unit(self) -> list[tuple[int, ...]]:
        """Per global unit index, the channels wired to its module's station."""
        wired = self._wiring
        return [wired[self.modules[u.module].station] for u in self.units]

    @property
    def fixed_wiring(self) -> bool:
        return all(len(chs) == 1 for chs in self._wiring.values())


def required_rest_min(prev: Unit, nxt: Unit) -> int:
    """W between consecutive units x -> y of one module: max(x.rest_after, y.rest_before)."""
    return max(prev.rest_after_min, nxt.rest_before_min)


# ---------------------------------------------------------------------------------------------
# loading


def load_instance(path: str | Path) -> Instance:
    """Read and check one instance file; raises InstanceError naming the file and the fields."""
    return instance_from_dict(read_json(path), source=str(path))


def read_json(path: str | Path) -> Any:
    """One JSON file as UTF-8 (a byte order mark is accepted and dropped). Raises InstanceError
    naming the file and the line for: an unreadable file, bytes that are not UTF-8, text that
    is not JSON, nesting deeper than MAX_JSON_DEPTH."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InstanceError(str(path), [f"cannot read: {exc.strerror or exc}"]) from exc
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InstanceError(str(path), [f"line {line} column {col}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
                                        "save the file as UTF-8"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceError(str(path), [f"line {exc.lineno} column {exc.colno}: not JSON: {exc.msg}"]) from None
    except RecursionError:
        line = _too_deep(text)
        where = f"line {line}: " if line is not None else ""
        raise InstanceError(str(path), [f"{where}JSON nested deeper than {MAX_JSON_DEPTH} levels"]) from None
    except ValueError as exc:   # e.g. an integer of more than 4300 digits
        raise InstanceError(str(path), [f"not JSON: {str(exc)[:200]}"]) from None


_BRACKETS = re.compile(r'[\[\]{}"]')


def _too_deep(text: str) -> int | None:
    """The line where nesting first passes MAX_JSON_DEPTH (brackets inside strings do not
    count), or None; run only when the parser gave up (it recurses per level)."""
    depth, in_string = 0, False
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch == '"':
            # a quote escaped by an odd number of backslashes does not end the string
            i, slashes = m.start() - 1, 0
            while i >= 0 and text[i] == "\\":
                slashes, i = slashes + 1, i - 1
            if not (in_string and slashes % 2):
                in_string = not in_string
        elif in_string:
            continue
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return text.count("\n", 0, m.start()) + 1
        else:
            depth -= 1
    return None


def _show(value: Any) -> str:
    """A short repr of any decoded JSON value for a message (depth and length capped)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 80, 80, 6, 6


def instance_from_dict(data: Any, source: str = "<memory>") -> Instance:
    """Check a decoded instance (all problems at once) and build the dataclasses."""
    problems: list[str] = []
    inst = _Builder(problems).build(data, source)
    if problems or inst is None:
        raise InstanceError(source, problems or ["empty instance"])
    return inst


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Builder:
    def __init__(self, problems: list[str]):
        self.p = problems

    def need(self, obj: dict, key: str, where: str, kind: type | tuple, what: str) -> Any:
        if key not in obj:
            self.p.append(f"{where}.{key}: required field missing" if where else f"{key}: required field missing")
            return None
        value = obj[key]
        ok = _is_int(value) if kind is int else isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            self.p.append(f"{_join(where, key)}: expected {what}, got {type(value).__name__} {_show(value)}")
            return None
        return value

    def opt_int(self, obj: dict, key: str, where: str, default: int, minimum: int) -> int:
        if key not in obj:
            return default
        value = obj[key]
        if not _is_int(value) or not minimum <= value <= MAX_MINUTES:
            self.p.append(f"{_join(where, key)}: expected an integer from {minimum} to {MAX_MINUTES} "
                          f"(minutes), got {_show(value)}")
            return default
        return value

    def build(self, data: Any, source: str) -> Instance | None:
        if not isinstance(data, dict):
            self.p.append(f"top level: expected a JSON object, got {type(data).__name__}")
            return None
        schema = data.get("schema")
        if schema != SCHEMA_ID:
            self.p.append(f"schema: expected {_show(SCHEMA_ID)}, got {_show(schema)}")
        if "time_unit" in data and data["time_unit"] != "min":
            self.p.append(f"time_unit: only 'min' is allowed, got {_show(data['time_unit'])}")
        order_raw = data.get("task_order", "fixed")
        try:
            order = TaskOrder(order_raw)
        except ValueError:
            self.p.append(f"task_order: expected one of {[o.value for o in TaskOrder]}, got {_show(order_raw)}")
            order = TaskOrder.FIXED
        channels = self.channels(data)
        modules = self.modules(data)
        self.cross_check(channels, modules)
        name = data.get("name", Path(source).stem)
        if not isinstance(name, str):
            self.p.append(f"name: expected a string, got {_show(name)}")
            name = str(name)
        return Instance(name, channels, modules, order, source)

    def channels(self, data: dict) -> tuple[Channel, ...]:
        raw = self.need(data, "channels", "", list, "a non-empty array of channels")
        if raw is not None and not raw:
            self.p.append("channels: at least one channel is required")
        out, seen = [], set()
        for i, ch in enumerate(raw or []):
            where = f"channels[{i}]"
            if not isinstance(ch, dict):
                self.p.append(f"{where}: expected an object, got {_show(ch)}")
                continue
            cid = self.need(ch, "id", where, str, "a string")
            stations = self.need(ch, "stations", where, list, "a non-empty array of station ids")
            if stations is not None and not stations:
                self.p.append(f"{where}.stations: channel {_show(cid)} has no station")
            bad = [s for s in stations or [] if not isinstance(s, str)]
            if bad:
                self.p.append(f"{where}.stations: station ids must be strings, got {_show(bad)}")
            if cid in seen:
                self.p.append(f"{where}.id: duplicate channel id {_show(cid)}")
            seen.add(cid)
            if cid is not None:
                out.append(Channel(len(out), cid, tuple(s for s in stations or [] if isinstance(s, str))))
        return tuple(out)

    def modules(self, data: dict) -> tuple[Module, ...]:
        raw = self.need(data, "modules", "", list, "a non-empty array of modules")
        if raw is not None and not raw:
            self.p.append("modules: at least one module is required")
        out: list[Module] = []
        unit_ids: set[str] = set()
        module_ids: set[str] = set()
        counter = [0]
        for i, m in enumerate(raw or []):
            where = f"modules[{i}]"
            if not isinstance(m, dict):
                self.p.append(f"{where}: expected an object, got {_show(m)}")
                continue
            mid = self.need(m, "id", where, str, "a string")
            label = f"{where} (module {_show(mid)})"
            if mid in module_ids:
                self.p.append(f"{label}.id: duplicate module id")
            module_ids.add(mid)
            station = self.need(m, "station", label, str, "a station id string")
            release = self.opt_int(m, "release_min", label, 0, 0)
            tasks_raw = self.need(m, "tasks", label, list, "a non-empty array of tasks")
            if tasks_raw is not None and not tasks_raw:
                self.p.append(f"{label}.tasks: module has no task")
            tasks = []
            for j, t in enumerate(tasks_raw or []):
                task = self.task(t, f"{label}.tasks[{j}]", len(out), j, mid or f"#{i}", unit_ids, counter)
                if task is not None:
                    tasks.append(task)
            if mid is not None and station is not None and tasks:
                profile = m.get("profile") if isinstance(m.get("profile"), str) else None
                out.append(Module(len(out), mid, station, tuple(tasks), release, profile))
        return tuple(out)

    def task(self, t: Any, where: str, mi: int, j: int, mid: str, unit_ids: set, counter: list) -> Task | None:
        if not isinstance(t, dict):
            self.p.append(f"{where}: expected an object, got {_show(t)}")
            return None
        item = self.need(t, "item", where, str, "a test item name")
        rest_class = self.need(t, "rest_class_min", where, int, "an integer >= 0")
        if rest_class is not None and not 0 <= rest_class <= MAX_MINUTES:
            self.p.append(f"{where}.rest_class_min: must be from 0 to {MAX_MINUTES} min, got {_show(rest_class)}")
        temperature = t.get("temperature")
        if temperature is not None and temperature not in ("room", "low", "high"):
            self.p.append(f"{where}.temperature: expected room, low or high, got {_show(temperature)}")
        units_raw = self.need(t, "units", where, list, "a non-empty array of units")
        if units_raw is not None and not units_raw:
            self.p.append(f"{where}.units: task has no unit")
        units = []
        for k, u in enumerate(units_raw or []):
            uw = f"{where}.units[{k}]"
            if not isinstance(u, dict):
                self.p.append(f"{uw}: expected an object, got {_show(u)}")
                continue
            uid = u.get("id", f"{mid}.T{j + 1}.U{k + 1}")
            if not isinstance(uid, str):
                self.p.append(f"{uw}.id: expected a string, got {_show(uid)}")
                continue
            uw = f"{uw} (unit {_show(uid)})"
            if uid in unit_ids:
                self.p.append(f"{uw}.id: duplicate unit id")
            unit_ids.add(uid)
            dur = self.need(u, "duration_min", uw, int, "an integer >= 1")
            if dur is not None and not 1 <= dur <= MAX_MINUTES:
                self.p.append(f"{uw}.duration_min: must be from 1 to {MAX_MINUTES} min "
                              f"({MAX_MINUTES // 1440} days, the longest test step there is), got {_show(dur)}")
                dur = None
            before = self.opt_int(u, "min_rest_before_min", uw, 0, 0)
            after = self.opt_int(u, "min_rest_after_min", uw, 0, 0)
            op = u.get("op")
            if op is not None and op not in ("charge", "discharge", "rest", "measure"):
                self.p.append(f"{uw}.op: expected charge, discharge, rest or measure, got {_show(op)}")
            rate = u.get("rate")
            if rate is not None and not isinstance(rate, str):
                self.p.append(f"{uw}.rate: expected a string, got {_show(rate)}")
                rate = None
            if dur is not None:
                units.append(Unit(counter[0], uid, mi, j, len(units), dur, before, after, op, rate))
                counter[0] += 1
        if item is None or rest_class is None or not units:
            return None
        return Task(item, rest_class, tuple(units), temperature)

    def cross_check(self, channels: tuple[Channel, ...], modules: tuple[Module, ...]) -> None:
        wired = {s for ch in channels for s in ch.stations}
        owner: dict[str, str] = {}
        for m in modules:
            if m.station not in wired:
                self.p.append(f"module {_show(m.id)}: station {_show(m.station)} is not wired to any channel")
            if m.station in owner:
                self.p.append(f"module {_show(m.id)}: station {_show(m.station)} already holds module {_show(owner[m.station])} "
                              "(one module per station)")
            owner.setdefault(m.station, m.id)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def instance_to_dict(inst: Instance) -> dict[str, Any]:
    """The JSON form of an instance (schema v1 plus `release_min` when not 0)."""
    modules = []
    for m in inst.modules:
        tasks = []
        for t in m.tasks:
            units = []
            for u in t.units:
                d: dict[str, Any] = {"id": u.id}
                if u.op:
                    d["op"] = u.op
                if u.rate:
                    d["rate"] = u.rate
                d.update(duration_min=u.duration_min, min_rest_before_min=u.rest_before_min,
                         min_rest_after_min=u.rest_after_min)
                units.append(d)
            td: dict[str, Any] = {"item": t.item}
            if t.temperature:
                td["temperature"] = t.temperature
            td.update(rest_class_min=t.rest_class_min, units=units)
            tasks.append(td)
        md: dict[str, Any] = {"id": m.id, "station": m.station}
        if m.profile:
            md["profile"] = m.profile
        if m.release_min:
            md["release_min"] = m.release_min
        md["tasks"] = tasks
        modules.append(md)
    return {
        "schema": SCHEMA_ID,
        "name": inst.name,
        "time_unit": "min",
        "task_order": inst.task_order.value,
        "channels": [{"id": c.id, "stations": list(c.stations)} for c in inst.channels],
        "modules": modules,
    }
