"""Alarms on the ISA-18.2 model: raised, acknowledged, cleared (return to normal), kept in the store.

Owns `AlarmBook` (the `alarms` table of `<state dir>/supervisor.sqlite`, its own connection,
`synchronous=FULL`), `AlarmSpec`, `Alarm`, `AlarmWatcher` (what the flow calls every scan: the
core's latches from its status, the line's PackML abort, stations in fault, the supervisor's
conditions and its events), `PRIORITIES`, `operator_identity`, `check_operator`, `AlarmError`,
`AlarmRefused`.

One row is one occurrence of an alarm `key` (`core.station.3`, `plc.write`, `robot`...). Its
state follows ISA-18.2's alarm state transition diagram (no shelving, suppression or
out-of-service in this version):

```
normal --raise--> unack (active, unacknowledged) --ack--> acked (active, acknowledged) --clear--> normal
                  unack --clear--> rtn_unack (returned to normal, unacknowledged) --ack--> normal
                  rtn_unack --raise--> unack again (same row, `raises` + 1)
```

An occurrence is open until it is both acknowledged and cleared; `active()` lists the open ones.
A one-shot alarm (a battery the vision refused, a rebound above the floor after the last
re-discharge, a failed unload) is raised and returned to normal at once: it waits in rtn_unack
for its acknowledgement. Each has a priority (`high`, `medium`, `low`), a cause (the core's
flag names or the supervisor's reason), and where known the station, marker, value (with its
unit) and battery.

Acknowledging (`ack(id, by)`) is the operator's act: `check_operator(state_dir)` applies the
same ownership rule as the CLI's link to the core (the caller's effective user owns the state
dir and the database, and neither is writable by group or others); `operator_identity(via)`
says who (user, uid, pid, host, via) and is stored with the acknowledgement and in an
`alarm_acked` event of the store.

API:
    book = AlarmBook(state_dir, clock=time.time)      # creates the table when missing
    book.raise_alarm(AlarmSpec(key, "high", cause, text, station=s, marker=m, value=v, unit="degC",
                               battery_id=b, source="core"))            -> Alarm
    book.clear(key) ; book.one_shot(spec) ; book.sync(prefix, specs)  # specs: the keys active now
    book.ack(alarm_id, by=operator_identity("cli"))   -> Alarm          (AlarmError: no such alarm)
    book.active() ; book.alarms(battery_id=None) ; book.get(alarm_id)   -> Alarm (to_dict() for JSON)
    watcher = AlarmWatcher(book, store) ; watcher.scan(now, status, line_state_label, stations, conditions)
Tests: tests/edge/supervisor/test_alarms.py.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATABASE_FILE = "supervisor.sqlite"  # edge.supervisor.store.DATABASE_FILE
PRIORITIES = ("high", "medium", "low")  # ISA-18.2: a few priorities, each with its response time

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, priority TEXT NOT NULL, cause TEXT NOT NULL, text TEXT NOT NULL,
    station INTEGER, marker INTEGER, value REAL, unit TEXT, battery_id TEXT, source TEXT NOT NULL,
    raised_at REAL NOT NULL, raises INTEGER NOT NULL, acked_at REAL, acked_by TEXT, cleared_at REAL);
CREATE INDEX IF NOT EXISTS alarms_key ON alarms (key, id);
CREATE INDEX IF NOT EXISTS alarms_battery ON alarms (battery_id);
"""
_COLUMNS = ("id", "key", "priority", "cause", "text", "station", "marker", "value", "unit", "battery_id", "source",
            "raised_at", "raises", "acked_at", "acked_by", "cleared_at")
_OPEN = "NOT (acked_at IS NOT NULL AND cleared_at IS NOT NULL)"


class AlarmError(RuntimeError):
    """An alarm operation that cannot be done (no such alarm, no store); the message says which."""


class AlarmRefused(AlarmError):
    """The caller may not acknowledge (ownership); the message names the file, its owner and mode."""


@dataclass(frozen=True)
class AlarmSpec:
    key: str
    priority: str
    cause: str
    text: str
    station: int | None = None
    marker: int | None = None
    value: float | None = None
    unit: str | None = None
    battery_id: str | None = None
    source: str = "supervisor"

    def __post_init__(self):
        if self.priority not in PRIORITIES:
            raise ValueError(f"alarm {self.key}: priority {self.priority!r}; allowed: {', '.join(PRIORITIES)}")


@dataclass(frozen=True)
class Alarm:
    id: int
    key: str
    priority: str
    cause: str
    text: str
    station: int | None
    marker: int | None
    value: float | None
    unit: str | None
    battery_id: str | None
    source: str
    raised_at: float
    raises: int
    acked_at: float | None
    acked_by: dict | None
    cleared_at: float | None

    @property
    def state(self) -> str:
        """ISA-18.2: unack, acked, rtn_unack, or normal (closed)."""
        if self.cleared_at is None:
            return "unack" if self.acked_at is None else "acked"
        return "rtn_unack" if self.acked_at is None else "normal"

    @property
    def active(self) -> bool:
        return self.state != "normal"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"state": self.state}


def _alarm(row) -> Alarm:
    d = dict(zip(_COLUMNS, row))
    d["acked_by"] = json.loads(d["acked_by"]) if d["acked_by"] else None
    return Alarm(**d)


class AlarmBook:
    """The `alarms` table of the line's store (another process, e.g. `events --ack`, may open it too)."""

    def __init__(self, state_dir: str | Path, *, clock: Callable[[], float] = time.time, timeout_s: float = 5.0,
                 create: bool = True):
        self.path = Path(state_dir) / DATABASE_FILE
        if not create and not self.path.is_file():
            raise AlarmError(f"{self.path}: no supervisor store here (is this a line's state dir?)")
        self._clock = clock
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AlarmBook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _now(self, at: float | None) -> float:
        return float(self._clock() if at is None else at)

    def _open_row(self, key: str):
        return self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alarms WHERE key = ? AND {_OPEN} "
                                "ORDER BY id DESC LIMIT 1", (key,)).fetchone()

    def get(self, alarm_id: int) -> Alarm | None:
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alarms WHERE id = ?", (alarm_id,)).fetchone()
        return None if row is None else _alarm(row)

    def raise_alarm(self, spec: AlarmSpec, at: float | None = None) -> Alarm:
        """Raise `spec.key`: a new occurrence, or the open one again (rtn_unack -> unack, `raises` + 1);
        an occurrence still active stays as it is."""
        now = self._now(at)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._open_row(spec.key)
            if row is None:
                cur = self._db.execute(
                    "INSERT INTO alarms (key, priority, cause, text, station, marker, value, unit, battery_id, source, "
                    "raised_at, raises) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (spec.key, spec.priority, spec.cause, spec.text, spec.station, spec.marker, spec.value, spec.unit,
                     spec.battery_id, spec.source, now))
                alarm_id = cur.lastrowid
            else:
                alarm = _alarm(row)
                alarm_id = alarm.id
                if alarm.cleared_at is not None:  # returned to normal, not acknowledged: active again
                    self._db.execute("UPDATE alarms SET cleared_at = NULL, raises = raises + 1, cause = ?, text = ?, "
                                     "marker = ?, value = ?, battery_id = ? WHERE id = ?",
                                     (spec.cause, spec.text, spec.marker, spec.value, spec.battery_id, alarm_id))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(alarm_id)

    def clear(self, key: str, at: float | None = None) -> Alarm | None:
        """Return to normal: the open, uncleared occurrence of `key` (None: there is none)."""
        row = self._db.execute(f"SELECT id FROM alarms WHERE key = ? AND cleared_at IS NULL AND {_OPEN} "
                               "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE alarms SET cleared_at = ? WHERE id = ?", (self._now(at), row[0]))
        return self.get(row[0])

    def one_shot(self, spec: AlarmSpec, at: float | None = None) -> Alarm:
        """Raised and returned to normal at once: it waits for its acknowledgement."""
        alarm = self.raise_alarm(spec, at)
        return self.clear(alarm.key, at) or alarm

    def sync(self, prefix: str, specs: Iterable[AlarmSpec], at: float | None = None) -> None:
        """The alarms under `prefix` active now are `specs`: raise those, clear the others."""
        now = self._now(at)
        keys = set()
        for spec in specs:
            keys.add(spec.key)
            open_row = self._open_row(spec.key)
            if open_row is None or _alarm(open_row).cleared_at is not None:
                self.raise_alarm(spec, now)
        rows = self._db.execute(f"SELECT key FROM alarms WHERE key LIKE ? AND cleared_at IS NULL AND {_OPEN}",
                                (prefix.replace("%", "") + "%",)).fetchall()
        for (key,) in rows:
            if key not in keys:
                self.clear(key, now)

    def ack(self, alarm_id: int, by: Mapping[str, Any], at: float | None = None) -> Alarm:
        """Acknowledge; an alarm acknowledged already is left as it was. The store gets an
        `alarm_acked` event naming who."""
        alarm = self.get(alarm_id)
        if alarm is None:
            raise AlarmError(f"{self.path}: no alarm {alarm_id}")
        if alarm.acked_at is not None:
            return alarm
        now = self._now(at)
        who = json.dumps(dict(by), sort_keys=True, allow_nan=False)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("UPDATE alarms SET acked_at = ?, acked_by = ? WHERE id = ?", (now, who, alarm_id))
            self._db.execute("INSERT INTO events (at, kind, text, station, battery_id, data) VALUES (?, ?, ?, ?, ?, ?)",
                             (now, "alarm_acked", f"alarm {alarm_id} ({alarm.key}) acknowledged by "
                              f"{by.get('user', '?')} via {by.get('via', '?')}", alarm.station, alarm.battery_id,
                              json.dumps({"alarm_id": alarm_id, "key": alarm.key, "by": dict(by)}, sort_keys=True)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return self.get(alarm_id)

    def active(self) -> list[Alarm]:
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM alarms WHERE {_OPEN} ORDER BY id")
        return [_alarm(r) for r in rows]

    def alarms(self, battery_id: str | None = None) -> list[Alarm]:
        query = f"SELECT {', '.join(_COLUMNS)} FROM alarms"
        rows = (self._db.execute(query + " ORDER BY id") if battery_id is None
                else self._db.execute(query + " WHERE battery_id = ? ORDER BY id", (battery_id,)))
        return [_alarm(r) for r in rows]


# -- who may acknowledge ---------------------------------------------------------------------------
def operator_identity(via: str) -> dict[str, Any]:
    """Who acts: the effective user (name and uid), the process, the host, and the channel (`cli`...)."""
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid{uid}"
    return {"user": user, "uid": uid, "pid": os.getpid(), "host": socket.gethostname(), "via": via}


def check_operator(state_dir: str | Path) -> None:
    """The ownership rule of the CLI's link to the core, applied to the line's store: the caller's
    effective user owns the state dir and its database, and neither is writable by group or others.
    Raises `AlarmRefused` naming the file, its owner and mode; `AlarmError` when there is no store."""
    state_dir = Path(state_dir)
    db = state_dir / DATABASE_FILE
    for path in (state_dir, db):
        try:
            st = path.stat()
        except FileNotFoundError:
            raise AlarmError(f"{path}: missing; not a line's state dir") from None
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != os.geteuid() or mode & 0o022:
            raise AlarmRefused(f"refusing {path}: owner uid {st.st_uid}, mode {mode:04o}; the operator acting must be "
                               f"its owner (uid {os.geteuid()} is acting) and it must not be writable by group or others")


# -- what raises and clears them: the flow's scan --------------------------------------------------
def _flag_names(bits: int) -> str:
    from rtcore.spec import Flag

    names = [f.name for f in Flag if f.value and f.value & int(bits)]
    return "|".join(names) or f"0x{int(bits):x}"


# event kinds of the store that make an alarm: kind -> (key prefix, priority, one shot)
EVENT_ALARMS = {
    "battery_refused": ("vision", "low"),
    "rebound_failed": ("rebound", "medium"),
    "unload_failed": ("unload", "medium"),
    "arrival_rejected": ("arrival", "low"),
    "arrival_refused": ("arrival", "low"),
    "packml_refused": ("packml", "low"),
}


class AlarmWatcher:
    """Raises and clears the line's alarms once per scan, in the scan thread (the store's thread)."""

    def __init__(self, book: AlarmBook, store):
        self.book, self.store = book, store
        events = store.events()
        self._last_event_id = events[-1].id if events else 0

    def scan(self, now: float, status, line_state: str, stations, conditions: Mapping[str, AlarmSpec | None]) -> None:
        """`status`: the core's RtStatus (None: no core; its alarms are left as they are);
        `line_state`: the PackML state's label; `stations`: the store's StationRecords;
        `conditions`: the supervisor's own state-based alarms by key (None: not active now)."""
        book = self.book
        cells = {r.station: r.battery_id for r in stations}
        if status is not None:
            specs = []
            if status.safe_state:
                hot = [h for h in status.station_hot_degc if h == h]
                specs.append(AlarmSpec("core.line", "high", _flag_names(status.safe_cause),
                                       f"the core latched the line safe ({_flag_names(status.safe_cause)})",
                                       marker=status.fault_marker if status.fault_marker >= 0 else None,
                                       value=max(hot) if hot else None, unit="degC", source="core"))
            for s, cause in enumerate(status.station_cause):
                if cause:
                    marker = status.station_fault_marker[s] if len(status.station_fault_marker) > s else -1
                    value = status.station_hot_degc[s] if len(status.station_hot_degc) > s else None
                    value = value if value is not None and value == value else None
                    specs.append(AlarmSpec(f"core.station.{s}", "high", _flag_names(cause),
                                           f"station {s}: the core isolated it ({_flag_names(cause)})", station=s,
                                           marker=marker if marker >= 0 else None, value=value, unit="degC",
                                           battery_id=cells.get(s), source="core"))
            book.sync("core.", specs, now)
        line = [AlarmSpec("line.aborted", "high", "PackML " + line_state, f"the line is {line_state}; the operator "
                          "clears it (Clear, then Reset and Start)")] if line_state in ("Aborting", "Aborted") else []
        book.sync("line.", line, now)
        faults = [AlarmSpec(f"station.{r.station}.fault", "medium", "fault",
                            f"station {r.station}: {r.data.get('reason', 'fault')}", station=r.station,
                            battery_id=r.battery_id)
                  for r in stations if getattr(r.state, "value", r.state) == "fault"]
        book.sync("station.", faults, now)
        for key, spec in conditions.items():
            if spec is not None:
                book.sync(key, [spec], now)
            else:
                book.sync(key, [], now)
        for event in self.store.events(self._last_event_id):
            self._last_event_id = event.id
            self._event(event, now)

    def _event(self, e, now: float) -> None:
        if e.kind == "robot_move":
            if e.data.get("ok"):
                self.book.clear("robot", now)
            else:
                self.book.raise_alarm(AlarmSpec("robot", "medium", "robot fault", e.text,
                                                battery_id=e.battery_id, source="robot"), now)
            return
        if e.kind in EVENT_ALARMS:
            prefix, priority = EVENT_ALARMS[e.kind]
            key = f"{prefix}.{e.id}"
            self.book.one_shot(AlarmSpec(key, priority, e.kind, e.text, station=e.station, battery_id=e.battery_id,
                                         value=e.data.get("value"), unit=e.data.get("unit")), now)
