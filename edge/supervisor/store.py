"""The supervisor's memory: one SQLite database (WAL) under the state dir, `supervisor.sqlite`.

Owns `Store`: the line's PackML state and its history, each station's current state (station,
state, battery id, since, data) and its history, the battery records (one per cell id, never
two; `recorded_ids` gives the ids without decoding a record), and events (`events(kind=)` decodes
only those of a kind). Every change is committed and fsynced (`PRAGMA synchronous=FULL` in WAL
mode) before the call returns, so the caller acts only on what is on disk: a supervisor killed
with SIGKILL and started again finds every change it acted on. Writes take the database's
write lock first (`BEGIN IMMEDIATE`), so a check and its write are one step even with another
process using the same file. Station changes are checked by `stations.check_change`, line
changes against the stored state. Tests: tests/edge/supervisor/test_store.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.supervisor.packml import Command, State, Transition
from edge.supervisor.stations import StationState, check_change

DATABASE_FILE = "supervisor.sqlite"
SCHEMA_VERSION = 1
APPLICATION = "discharge-edge supervisor"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS line_state (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, before INTEGER, state INTEGER NOT NULL, command INTEGER);
CREATE TABLE IF NOT EXISTS stations (
    station INTEGER PRIMARY KEY, state TEXT NOT NULL, battery_id TEXT, since REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS station_history (
    id INTEGER PRIMARY KEY, station INTEGER NOT NULL, at REAL NOT NULL, before TEXT NOT NULL, state TEXT NOT NULL,
    battery_id TEXT, data TEXT NOT NULL, operator_clear INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batteries (
    id INTEGER PRIMARY KEY, cell_id TEXT NOT NULL UNIQUE, recorded_at REAL NOT NULL, record TEXT NOT NULL,
    model_versions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL, station INTEGER,
    battery_id TEXT, data TEXT NOT NULL);
"""


class StoreError(RuntimeError):
    """The store cannot be used or a change is inconsistent with it; the message names the file."""


class SchemaMismatch(StoreError):
    """The database was written by another schema version (or is not a supervisor database)."""


class DuplicateRecord(StoreError):
    """A battery already has its record; `stored` is the one on disk (nothing was written)."""

    def __init__(self, path: Path, stored: BatteryRecord):
        self.stored = stored
        super().__init__(f"{path}: battery {stored.cell_id!r} already has its record "
                         f"(written at {stored.recorded_at:.3f}); a battery is recorded exactly once")


@dataclass(frozen=True)
class StationRecord:
    station: int
    state: StationState
    battery_id: str | None
    since: float  # time.time() of the change into `state`
    data: dict[str, Any]


@dataclass(frozen=True)
class StationChange:
    station: int
    at: float
    before: StationState
    state: StationState
    battery_id: str | None
    data: dict[str, Any]
    operator_clear: bool


@dataclass(frozen=True)
class LineStateEntry:
    at: float
    before: State | None  # None: the first entry
    state: State
    command: Command | None  # None: state complete (SC) or the first entry


@dataclass(frozen=True)
class BatteryRecord:
    cell_id: str
    recorded_at: float
    record: dict[str, Any]
    model_versions: dict[str, Any]


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    kind: str
    text: str
    station: int | None
    battery_id: str | None
    data: dict[str, Any]


def _dumps(value: Mapping[str, Any] | None) -> str:
    """Standard JSON (no NaN or infinity: the records travel with the battery)."""
    return json.dumps(dict(value or {}), sort_keys=True, allow_nan=False, separators=(",", ":"))


class Store:
    """The supervisor's database for one line of `station_count` stations under `state_dir`."""

    def __init__(self, state_dir: str | Path, station_count: int, *, clock: Callable[[], float] = time.time,
                 timeout_s: float = 10.0):
        if station_count < 1:
            raise ValueError(f"station_count is {station_count}; allowed: >= 1")
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DATABASE_FILE
        self.station_count = station_count
        self._clock = clock
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: not a usable supervisor database: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        db = self._db
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: journal mode {mode!r}; the store needs WAL (a local file system)")
        db.execute("PRAGMA synchronous=FULL")
        with self._write():
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "meta" not in tables:
                raise SchemaMismatch(f"{self.path}: not a supervisor database (tables {sorted(tables)})")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if not meta:
                db.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
                    ("station_count", str(self.station_count))])
                now = self._clock()
                db.executemany("INSERT INTO stations VALUES (?, ?, NULL, ?, '{}')",
                               [(s, StationState.EMPTY.value, now) for s in range(self.station_count)])
                return
            if meta.get("application") != APPLICATION or meta.get("schema_version") != str(SCHEMA_VERSION):
                raise SchemaMismatch(f"{self.path}: schema version {meta.get('schema_version')!r} of "
                                     f"{meta.get('application')!r}; this supervisor reads version {SCHEMA_VERSION} "
                                     "(migrate the database or use another state dir)")
            if meta.get("station_count") != str(self.station_count):
                raise StoreError(f"{self.path}: the database is of a line of {meta.get('station_count')} stations, "
                                 f"the line file has {self.station_count}; use another state dir for another line")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start; committed (fsynced) on exit."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pragmas(self) -> dict[str, Any]:
        """The connection's durability settings: journal_mode 'wal', synchronous 2 (FULL)."""
        return {"journal_mode": self._db.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": self._db.execute("PRAGMA synchronous").fetchone()[0]}

    # -- the line's PackML state ------------------------------------------------------------------
    def line_state(self) -> State:
        """The line's last written state; Stopped when none was ever written."""
        row = self._db.execute("SELECT state FROM line_state ORDER BY id DESC LIMIT 1").fetchone()
        return State(row[0]) if row else State.STOPPED

    def set_line_state(self, transition: Transition, at: float | None = None) -> None:
        """Write a PackML transition; refused when it does not start from the stored state (use
        as `PackMlMachine(store.line_state(), on_change=store.set_line_state)`)."""
        with self._write() as db:
            row = db.execute("SELECT state FROM line_state ORDER BY id DESC LIMIT 1").fetchone()
            stored = State(row[0]) if row else State.STOPPED
            if transition.before is not stored:
                raise StoreError(f"{self.path}: transition {transition} does not start from the stored line "
                                 f"state {stored.label}")
            db.execute("INSERT INTO line_state (at, before, state, command) VALUES (?, ?, ?, ?)",
                       (self._at(at), int(transition.before), int(transition.after),
                        None if transition.command is None else int(transition.command)))

    def line_history(self) -> list[LineStateEntry]:
        rows = self._db.execute("SELECT at, before, state, command FROM line_state ORDER BY id")
        return [LineStateEntry(at, None if b is None else State(b), State(s), None if c is None else Command(c))
                for at, b, s, c in rows]

    # -- stations ---------------------------------------------------------------------------------
    def station(self, station: int) -> StationRecord:
        self._check_index(station)
        return self._station(self._db, station)

    def stations(self) -> tuple[StationRecord, ...]:
        rows = self._db.execute("SELECT station, state, battery_id, since, data FROM stations ORDER BY station")
        return tuple(StationRecord(s, StationState(st), b, since, json.loads(d)) for s, st, b, since, d in rows)

    def set_station(self, station: int, state: StationState, battery_id: str | None = None,
                    data: Mapping[str, Any] | None = None, *, operator_clear: bool = False,
                    at: float | None = None) -> StationRecord:
        """Move `station` to `state` (checked by `stations.check_change`, else `TransitionRefused`
        and nothing written); `data` replaces the station's data. Returns the new record."""
        self._check_index(station)
        state = StationState(state)
        text = _dumps(data)
        with self._write() as db:
            now = self._at(at)
            current = self._station(db, station)
            check_change(station, current.state, state, before_battery=current.battery_id,
                         after_battery=battery_id, operator_clear=operator_clear)
            db.execute("UPDATE stations SET state = ?, battery_id = ?, since = ?, data = ? WHERE station = ?",
                       (state.value, battery_id, now, text, station))
            db.execute("INSERT INTO station_history (station, at, before, state, battery_id, data, operator_clear) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (station, now, current.state.value, state.value, battery_id, text, int(operator_clear)))
        return StationRecord(station, state, battery_id, now, json.loads(text))

    def update_station_data(self, station: int, data: Mapping[str, Any]) -> StationRecord:
        """Replace the data of the station's current state (progress within it); no transition."""
        self._check_index(station)
        text = _dumps(data)
        with self._write() as db:
            db.execute("UPDATE stations SET data = ? WHERE station = ?", (text, station))
            return self._station(db, station)

    def station_history(self, station: int | None = None) -> list[StationChange]:
        query = "SELECT station, at, before, state, battery_id, data, operator_clear FROM station_history"
        rows = (self._db.execute(query + " ORDER BY id") if station is None
                else self._db.execute(query + " WHERE station = ? ORDER BY id", (station,)))
        return [StationChange(s, at, StationState(b), StationState(st), bat, json.loads(d), bool(clear))
                for s, at, b, st, bat, d, clear in rows]

    # -- battery records --------------------------------------------------------------------------
    def record_battery(self, cell_id: str, record: Mapping[str, Any],
                       model_versions: Mapping[str, Any] | None = None, at: float | None = None) -> BatteryRecord:
        """Write the battery's record, exactly once: a second call for the same `cell_id` raises
        `DuplicateRecord` carrying the stored record, and writes nothing."""
        if not isinstance(cell_id, str) or not cell_id:
            raise ValueError(f"cell_id is {cell_id!r}; allowed: a non-empty string")
        record_text, versions_text = _dumps(record), _dumps(model_versions)
        with self._write() as db:
            stored = self._battery(db, cell_id)
            if stored is not None:
                raise DuplicateRecord(self.path, stored)
            now = self._at(at)
            db.execute("INSERT INTO batteries (cell_id, recorded_at, record, model_versions) VALUES (?, ?, ?, ?)",
                       (cell_id, now, record_text, versions_text))
        return BatteryRecord(cell_id, now, json.loads(record_text), json.loads(versions_text))

    def battery(self, cell_id: str) -> BatteryRecord | None:
        return self._battery(self._db, cell_id)

    def batteries(self) -> list[BatteryRecord]:
        rows = self._db.execute("SELECT cell_id, recorded_at, record, model_versions FROM batteries ORDER BY id")
        return [BatteryRecord(c, at, json.loads(r), json.loads(m)) for c, at, r, m in rows]

    def recorded_ids(self) -> set[str]:
        """The cell ids that have their record (no record is read or decoded)."""
        return {row[0] for row in self._db.execute("SELECT cell_id FROM batteries")}

    def recorded_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM batteries").fetchone()[0])

    # -- events -----------------------------------------------------------------------------------
    def add_event(self, kind: str, text: str, *, station: int | None = None, battery_id: str | None = None,
                  data: Mapping[str, Any] | None = None, at: float | None = None) -> int:
        """Append an event; returns its id (ids grow)."""
        payload = _dumps(data)
        with self._write() as db:
            cursor = db.execute("INSERT INTO events (at, kind, text, station, battery_id, data) VALUES (?, ?, ?, ?, ?, ?)",
                                (self._at(at), kind, text, station, battery_id, payload))
            return int(cursor.lastrowid)

    def events(self, after_id: int = 0, kind: str | None = None) -> list[Event]:
        """Events after `after_id` in order; only those of `kind` when given (the others are not
        decoded)."""
        query = "SELECT id, at, kind, text, station, battery_id, data FROM events WHERE id > ?"
        rows = (self._db.execute(query + " ORDER BY id", (after_id,)) if kind is None
                else self._db.execute(query + " AND kind = ? ORDER BY id", (after_id, kind)))
        return [Event(i, at, k, t, s, b, json.loads(d)) for i, at, k, t, s, b, d in rows]

    # -- helpers ----------------------------------------------------------------------------------
    def _at(self, at: float | None) -> float:
        return float(self._clock() if at is None else at)

    def _check_index(self, station: int) -> None:
        if isinstance(station, bool) or not isinstance(station, int) or not 0 <= station < self.station_count:
            raise IndexError(f"station {station!r} does not exist; allowed: 0..{self.station_count - 1}")

    @staticmethod
    def _station(db: sqlite3.Connection, station: int) -> StationRecord:
        s, st, b, since, d = db.execute("SELECT station, state, battery_id, since, data FROM stations "
                                        "WHERE station = ?", (station,)).fetchone()
        return StationRecord(s, StationState(st), b, since, json.loads(d))

    @staticmethod
    def _battery(db: sqlite3.Connection, cell_id: str) -> BatteryRecord | None:
        row = db.execute("SELECT cell_id, recorded_at, record, model_versions FROM batteries WHERE cell_id = ?",
                         (cell_id,)).fetchone()
        return None if row is None else BatteryRecord(row[0], row[1], json.loads(row[2]), json.loads(row[3]))
