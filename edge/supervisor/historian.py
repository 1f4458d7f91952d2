"""The line's historian: `<state dir>/history.sqlite` (WAL), written by the supervisor process.

Owns `Historian` (the writer), `HistoryReader` (any process), `TickSample`, `HistorySettings`
(the line file's `history:` section), `HISTORY_FILE` and `HistoryError`.

What it keeps (every time is the line's clock, the store's: `t_s`, seconds):
- `samples`: per station and `bucket_s` (1 s), the mean and maximum of station voltage, station
  current, hottest marker, zone pressures (also the minimum over the zones), relief and coolant
  (the core's), the permit's mean (share of the bucket permitted) and the core's current limit;
  `n` scans in the bucket; the battery on the station. A station is written when it holds a
  battery or shows current or relief.
- `full_rate`: every scan's values (zone pressures as a JSON list) from `window_s` before to
  `window_s` after every event of the store (the event's station, or every station for a line
  event).
- `setpoints`: the setpoints in force per station (current, clamp pressure, base coolant, and
  the tier limits sent to the core as JSON), a row when one changes (deadbands in `SETPOINT_DEADBAND`).
- `state_changes` and `events`: copies of the store's station history and events
  (supervisor.sqlite stays the one written before acting; these copies are what retention trims).

Writing never blocks the scan: `observe(sample)` puts a copy on a bounded queue (full: the
sample is dropped and counted); a writer thread (`thread=True`, as `discharge-edge run` has it;
without one, `pump()` after each observe does the writing in the caller's thread every
`flush_s`: in-process tests) aggregates, tails the store (its own
read-only connection) and commits once every `flush_s` in one transaction (`synchronous=NORMAL`:
the historian is a record, not a state acted on). A locked database or a full disk is not an
exception: the rows stay pending (at most `max_pending_rows`, then the oldest are dropped and
counted) and `problem()` names it until a write succeeds again; the flow turns it into an event
and an alarm. Retention, checked every `retention_check_s`: rows older than `max_age_days` (by
the newest sample's time) go, then the oldest samples until the used pages fit `max_mb`
(`auto_vacuum=INCREMENTAL` gives the pages back).

API:
    h = Historian(state_dir, station_count, zones, settings=HistorySettings())   # starts its thread
    h.observe(TickSample(t_s, battery_ids, voltage_v=..., current_a=..., hot_degc=..., pressure_kpa=(S, Z),
                         relief_kpa=..., coolant_lpm=..., permit=..., limit_frac=..., current_setpoint_a=...,
                         pressure_setpoint_kpa=..., coolant_base_lpm=..., limits=None))
    h.pump()                   # thread=False only: write now if flush_s has passed
    h.flush(timeout_s=10)      # wait until everything observed so far is on disk (tests, close)
    h.problem()                # None, or the text of the write problem now
    h.stats()                  # {"observed", "dropped_samples", "dropped_rows", "rows_written", "commits", ...}
    h.close()
    r = HistoryReader(state_dir)                               # HistoryError when there is no history
    r.samples(station=None, t_from=None, t_to=None, battery_id=None) -> list[dict]   (also .full_rate)
    r.setpoints(...), r.state_changes(...), r.events(...)      -> list[dict]
    r.size_bytes(), r.span_s()
Tests: tests/edge/supervisor/test_historian.py; benchmark tests/edge/supervisor/test_bench_historian.py.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

HISTORY_FILE = "history.sqlite"
SCHEMA_VERSION = 1
APPLICATION = "discharge-edge historian"
STORE_FILE = "supervisor.sqlite"  # edge.supervisor.store.DATABASE_FILE (not imported: light readers)
ACTIVE_A = 0.05  # a station without a battery is written when its current passes this (A)
SETPOINT_DEADBAND = {"current_a": 0.01, "pressure_kpa": 0.5, "coolant_base_lpm": 0.01}

#: the aggregated quantities: (column stem, TickSample field); pressure is per zone
QUANTITIES = (("voltage_v", "voltage_v"), ("current_a", "current_a"), ("hot_degc", "hot_degc"),
              ("pressure_kpa", "pressure_kpa"), ("relief_kpa", "relief_kpa"), ("coolant_lpm", "coolant_lpm"))
SAMPLE_COLUMNS = ("t_s", "station", "battery_id", "n") + tuple(
    f"{stem}_{agg}" for stem, _ in QUANTITIES for agg in ("mean", "max")) + ("pressure_kpa_min", "permit_mean",
                                                                              "limit_frac_mean")
FULL_RATE_COLUMNS = ("t_s", "station", "battery_id", "voltage_v", "current_a", "hot_degc", "pressure_kpa",
                     "relief_kpa", "coolant_lpm", "permit", "limit_frac")
SETPOINT_COLUMNS = ("t_s", "station", "battery_id", "current_a", "pressure_kpa", "coolant_base_lpm", "limits")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples ({", ".join(c + (" REAL" if c not in ("station", "battery_id", "n") else
                                                     " TEXT" if c == "battery_id" else " INTEGER")
                                               for c in SAMPLE_COLUMNS)});
CREATE INDEX IF NOT EXISTS samples_t ON samples (t_s);
CREATE INDEX IF NOT EXISTS samples_station_t ON samples (station, t_s);
CREATE INDEX IF NOT EXISTS samples_battery ON samples (battery_id, t_s);
CREATE TABLE IF NOT EXISTS full_rate (t_s REAL, station INTEGER, battery_id TEXT, voltage_v REAL, current_a REAL,
    hot_degc REAL, pressure_kpa TEXT, relief_kpa REAL, coolant_lpm REAL, permit REAL, limit_frac REAL);
CREATE INDEX IF NOT EXISTS full_rate_t ON full_rate (t_s);
CREATE INDEX IF NOT EXISTS full_rate_battery ON full_rate (battery_id, t_s);
CREATE TABLE IF NOT EXISTS setpoints (t_s REAL, station INTEGER, battery_id TEXT, current_a REAL, pressure_kpa REAL,
    coolant_base_lpm REAL, limits TEXT);
CREATE INDEX IF NOT EXISTS setpoints_t ON setpoints (t_s);
CREATE TABLE IF NOT EXISTS state_changes (id INTEGER PRIMARY KEY, t_s REAL, station INTEGER, before TEXT, state TEXT,
    battery_id TEXT, operator_clear INTEGER);
CREATE INDEX IF NOT EXISTS state_changes_t ON state_changes (t_s);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, t_s REAL, kind TEXT, text TEXT, station INTEGER,
    battery_id TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS events_t ON events (t_s);
"""


class HistoryError(RuntimeError):
    """The history cannot be read (no file, another application's file); the message names the file."""


@dataclass(frozen=True)
class HistorySettings:
    """The line file's `history:` section (edge/supervisor/README.md, "The line file")."""

    max_mb: float = 2048.0  # the database's used pages at most this (oldest samples go first)
    max_age_days: float = 90.0  # rows older than this (line clock) go
    bucket_s: float = 1.0  # downsampling bucket
    window_s: float = 30.0  # full rate this long before and after every event
    flush_s: float = 1.0  # one commit this often
    retention_check_s: float = 60.0
    queue_samples: int = 4096  # observed samples waiting for the writer at most (then dropped, counted)
    max_pending_rows: int = 500_000  # rows kept while the disk is full or the db locked


@dataclass(frozen=True)
class TickSample:
    """One scan's view of the line: per-station arrays of S (pressure: S x zones)."""

    t_s: float
    battery_ids: tuple[str | None, ...]
    voltage_v: np.ndarray
    current_a: np.ndarray
    hot_degc: np.ndarray
    pressure_kpa: np.ndarray
    relief_kpa: np.ndarray
    coolant_lpm: np.ndarray
    permit: np.ndarray
    limit_frac: np.ndarray
    current_setpoint_a: np.ndarray
    pressure_setpoint_kpa: np.ndarray
    coolant_base_lpm: np.ndarray
    limits: tuple[dict, ...] | None = None  # the tier limits per station, when sent this scan


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)


@dataclass
class _Bucket:
    start_s: float
    n: np.ndarray  # (S, Q) finite counts
    total: np.ndarray
    high: np.ndarray
    low_pressure: np.ndarray  # (S,)
    permit: np.ndarray
    permit_n: np.ndarray
    limit: np.ndarray
    limit_n: np.ndarray
    scans: np.ndarray
    battery: list = field(default_factory=list)


class Historian:
    """The writer: one per supervisor process and state dir (see the module docstring)."""

    def __init__(self, state_dir: str | Path, station_count: int, zones: int, *,
                 settings: HistorySettings = HistorySettings(), timeout_s: float = 0.5, thread: bool = True):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / HISTORY_FILE
        self.store_path = self.state_dir / STORE_FILE
        self.n, self.zones, self.settings = station_count, zones, settings
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._db = _connect(self.path, timeout_s)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise HistoryError(f"{self.path}: journal mode {mode!r}; the historian needs WAL (a local file system)")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if not meta:
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
                ("station_count", str(station_count)), ("zones", str(zones)), ("last_event_id", "0"),
                ("last_change_id", "0")])
        elif meta.get("application") != APPLICATION or meta.get("schema_version") != str(SCHEMA_VERSION):
            raise HistoryError(f"{self.path}: schema {meta.get('schema_version')!r} of {meta.get('application')!r}; "
                               f"this historian writes version {SCHEMA_VERSION}")
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        self._last_event_id = int(meta.get("last_event_id", 0))
        self._last_change_id = int(meta.get("last_change_id", 0))
        self._store: sqlite3.Connection | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=settings.queue_samples)
        self._pending: dict[str, list[tuple]] = {"samples": [], "full_rate": [], "setpoints": [],
                                                 "state_changes": [], "events": []}
        self._bucket: _Bucket | None = None
        self._recent: deque[TickSample] = deque()
        self._full_until = np.full(station_count, -math.inf)
        self._last_setpoints: list[tuple | None] = [None] * station_count
        self._last_limits: list[str | None] = [None] * station_count
        self._newest_t = -math.inf
        self._next_retention = 0.0
        self._next_pump = 0.0
        self._problem: str | None = None
        self._lock = threading.Lock()
        self._stats = {"observed": 0, "dropped_samples": 0, "dropped_rows": 0, "rows_written": 0, "commits": 0,
                       "write_errors": 0, "retention_deleted_rows": 0}
        self._stop = threading.Event()
        self._thread = None
        if thread:
            self._thread = threading.Thread(target=self._run, name="historian", daemon=True)
            self._thread.start()

    # -- the scan thread's side ----------------------------------------------------------------------
    def observe(self, sample: TickSample) -> bool:
        """Queue one scan's sample (never blocks); False when the queue was full (dropped, counted)."""
        try:
            self._queue.put_nowait(sample)
        except queue.Full:
            with self._lock:
                self._stats["dropped_samples"] += 1
            return False
        with self._lock:
            self._stats["observed"] += 1
        return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every sample observed before the call is aggregated and committed (the open
        bucket too); True when done in time."""
        done = threading.Event()
        if self._thread is None:
            self._drain(final=True)
            return True
        try:
            self._queue.put(("flush", done), timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def pump(self) -> None:
        """Without a writer thread (`thread=False`): write what waits when `flush_s` has passed
        since the last write (the caller's thread does the work). With one: nothing."""
        if self._thread is None and time.monotonic() >= self._next_pump:
            self._next_pump = time.monotonic() + self.settings.flush_s
            self._drain(final=False)

    def problem(self) -> str | None:
        with self._lock:
            return self._problem

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats, pending_rows=sum(len(v) for v in self._pending.values()))

    def close(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.flush(timeout_s)
            self._stop.set()
            self._queue.put(("stop", None))
            self._thread.join(timeout_s)
        else:
            self._drain(final=True)
        for db in (self._db, self._store):
            if db is not None:
                db.close()

    # -- the writer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        next_flush = time.monotonic() + self.settings.flush_s
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = None
            if isinstance(item, TickSample):
                self._take(item)
                continue  # drain the queue before writing
            if isinstance(item, tuple):
                kind, done = item
                if kind == "stop":
                    break
                self._drain(final=True)
                done.set()
                next_flush = time.monotonic() + self.settings.flush_s
                continue
            if time.monotonic() >= next_flush:
                self._drain(final=False)
                next_flush = time.monotonic() + self.settings.flush_s

    def _drain(self, final: bool) -> None:
        """Take what waits, copy the store's new events and changes, close a finished bucket
        (`final`: the open one too), commit."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, TickSample):
                self._take(item)
            elif isinstance(item, tuple) and item[1] is not None:
                item[1].set()  # a flush queued behind: this drain covers it
        try:
            self._tail_store()
        except sqlite3.Error as exc:
            log.debug("historian: store not read: %s", exc)
        if final and self._bucket is not None:
            self._close_bucket()
        self._commit()

    def _take(self, s: TickSample) -> None:
        t = float(s.t_s)
        self._newest_t = max(self._newest_t, t)
        start = math.floor(t / self.settings.bucket_s) * self.settings.bucket_s
        if self._bucket is not None and start != self._bucket.start_s:
            self._close_bucket()
        if self._bucket is None:
            q = len(QUANTITIES)
            z = np.zeros((self.n, q))
            self._bucket = _Bucket(start, z.copy(), z.copy(), np.full((self.n, q), -np.inf),
                                   np.full(self.n, np.inf), np.zeros(self.n), np.zeros(self.n), np.zeros(self.n),
                                   np.zeros(self.n), np.zeros(self.n, int), [None] * self.n)
        b = self._bucket
        pressure = np.asarray(s.pressure_kpa, float).reshape(self.n, -1)
        with np.errstate(invalid="ignore"):
            p_mean = np.nanmean(np.where(np.isfinite(pressure), pressure, np.nan), axis=1) if pressure.size else \
                np.full(self.n, np.nan)
        p_max = np.max(np.where(np.isfinite(pressure), pressure, -np.inf), axis=1) if pressure.size else \
            np.full(self.n, -np.inf)
        p_min = np.min(np.where(np.isfinite(pressure), pressure, np.inf), axis=1) if pressure.size else \
            np.full(self.n, np.inf)
        values = np.column_stack([np.asarray(s.voltage_v, float), np.asarray(s.current_a, float),
                                  np.asarray(s.hot_degc, float), p_mean, np.asarray(s.relief_kpa, float),
                                  np.asarray(s.coolant_lpm, float)])
        highs = values.copy()
        highs[:, 3] = p_max
        ok = np.isfinite(values)
        b.n += ok
        b.total += np.where(ok, values, 0.0)
        b.high = np.maximum(b.high, np.where(np.isfinite(highs), highs, -np.inf))
        b.low_pressure = np.minimum(b.low_pressure, p_min)
        for arr, total, count in ((s.permit, "permit", "permit_n"), (s.limit_frac, "limit", "limit_n")):
            a = np.asarray(arr, float)
            fin = np.isfinite(a)
            setattr(b, total, getattr(b, total) + np.where(fin, a, 0.0))
            setattr(b, count, getattr(b, count) + fin)
        b.scans += 1
        for st, cell in enumerate(s.battery_ids):
            if cell is not None:
                b.battery[st] = cell
        self._setpoints(s)
        self._full_rate(s)

    def _close_bucket(self) -> None:
        b, self._bucket = self._bucket, None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(b.n > 0, b.total / np.maximum(b.n, 1), np.nan)
            permit = np.where(b.permit_n > 0, b.permit / np.maximum(b.permit_n, 1), np.nan)
            limit = np.where(b.limit_n > 0, b.limit / np.maximum(b.limit_n, 1), np.nan)
        high = np.where(np.isfinite(b.high), b.high, np.nan)
        low_p = np.where(np.isfinite(b.low_pressure), b.low_pressure, np.nan)
        current_max = np.nan_to_num(np.abs(high[:, 1]), nan=0.0)
        relief_max = np.nan_to_num(high[:, 4], nan=0.0)
        rows = self._pending["samples"]
        for st in range(self.n):
            if b.battery[st] is None and current_max[st] <= ACTIVE_A and relief_max[st] <= 0.0:
                continue
            row = [b.start_s, st, b.battery[st], int(b.scans[st])]
            for q in range(len(QUANTITIES)):
                row += [_num(mean[st, q]), _num(high[st, q])]
            rows.append(tuple(row + [_num(low_p[st]), _num(permit[st]), _num(limit[st])]))

    def _setpoints(self, s: TickSample) -> None:
        rows = self._pending["setpoints"]
        for st in range(self.n):
            now = (float(s.current_setpoint_a[st]), float(s.pressure_setpoint_kpa[st]), float(s.coolant_base_lpm[st]))
            last = self._last_setpoints[st]
            limits = None
            if s.limits is not None:
                text = json.dumps(s.limits[st], sort_keys=True, allow_nan=False)
                if text != self._last_limits[st]:
                    limits = self._last_limits[st] = text
            changed = last is None or any(abs(a - b) > band for a, b, band in
                                          zip(now, last, SETPOINT_DEADBAND.values()) if math.isfinite(a - b)) \
                or any(math.isfinite(a) != math.isfinite(b) for a, b in zip(now, last))
            if changed or limits is not None:
                self._last_setpoints[st] = now
                rows.append((float(s.t_s), st, s.battery_ids[st], *(_num(x) for x in now), limits))

    def _full_rate(self, s: TickSample) -> None:
        window = self.settings.window_s
        self._recent.append(s)
        while self._recent and self._recent[0].t_s < s.t_s - window:
            self._recent.popleft()
        if (self._full_until >= s.t_s).any():
            self._raw_rows(s, self._full_until >= s.t_s)

    def _raw_rows(self, s: TickSample, stations: np.ndarray) -> None:
        pressure = np.asarray(s.pressure_kpa, float).reshape(self.n, -1)
        rows = self._pending["full_rate"]
        for st in np.flatnonzero(stations):
            rows.append((float(s.t_s), int(st), s.battery_ids[st], _num(s.voltage_v[st]), _num(s.current_a[st]),
                         _num(s.hot_degc[st]), json.dumps([_num(p) for p in pressure[st]]), _num(s.relief_kpa[st]),
                         _num(s.coolant_lpm[st]), _num(s.permit[st]), _num(s.limit_frac[st])))

    def _event_window(self, t_event: float, station: int | None) -> None:
        """Full rate from `window_s` before an event (the samples kept) to `window_s` after it."""
        window = self.settings.window_s
        mask = np.zeros(self.n, bool)
        if station is not None and 0 <= station < self.n:
            mask[station] = True
        else:
            mask[:] = True
        already = self._full_until.copy()
        self._full_until[mask] = np.maximum(self._full_until[mask], t_event + window)
        for s in self._recent:  # the window before the event: samples not written at full rate yet
            if s.t_s >= t_event - window:
                fresh = mask & ~(already >= s.t_s)
                if fresh.any():
                    self._raw_rows(s, fresh)

    def _tail_store(self) -> None:
        if self._store is None:
            if not self.store_path.exists():
                return
            self._store = _connect(self.store_path, 0.2)
            self._store.execute("PRAGMA query_only=ON")
        events = self._store.execute("SELECT id, at, kind, text, station, battery_id, data FROM events WHERE id > ? "
                                     "ORDER BY id LIMIT 5000", (self._last_event_id,)).fetchall()
        changes = self._store.execute("SELECT id, station, at, before, state, battery_id, operator_clear FROM "
                                      "station_history WHERE id > ? ORDER BY id LIMIT 5000",
                                      (self._last_change_id,)).fetchall()
        for row in events:
            self._pending["events"].append(row)
            self._event_window(float(row[1]), row[4])
        for i, st, at, before, state, cell, clear in changes:
            self._pending["state_changes"].append((i, at, st, before, state, cell, clear))
        if events:
            self._last_event_id = events[-1][0]
        if changes:
            self._last_change_id = changes[-1][0]

    _INSERT = {"samples": f"INSERT INTO samples VALUES ({', '.join('?' * len(SAMPLE_COLUMNS))})",
               "full_rate": f"INSERT INTO full_rate VALUES ({', '.join('?' * len(FULL_RATE_COLUMNS))})",
               "setpoints": f"INSERT INTO setpoints VALUES ({', '.join('?' * len(SETPOINT_COLUMNS))})",
               "state_changes": "INSERT OR IGNORE INTO state_changes VALUES (?, ?, ?, ?, ?, ?, ?)",
               "events": "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)"}

    def _commit(self) -> None:
        rows = sum(len(v) for v in self._pending.values())
        if not rows and time.monotonic() < self._next_retention:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table, pending in self._pending.items():
                    if pending:
                        self._db.executemany(self._INSERT[table], pending)
                self._db.executemany("UPDATE meta SET value = ? WHERE key = ?",
                                     [(str(self._last_event_id), "last_event_id"),
                                      (str(self._last_change_id), "last_change_id")])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # locked, full disk, I/O: the rows wait; the flow makes it an event
            self._failed(exc)
            return
        for pending in self._pending.values():
            pending.clear()
        with self._lock:
            self._stats["rows_written"] += rows
            self._stats["commits"] += 1
            self._problem = None
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + self.settings.retention_check_s
            try:
                self.retain()
            except sqlite3.Error as exc:
                self._failed(exc)

    def _failed(self, exc: sqlite3.Error) -> None:
        dropped = 0
        for pending in self._pending.values():
            over = len(pending) - self.settings.max_pending_rows
            if over > 0:
                del pending[:over]
                dropped += over
        with self._lock:
            self._stats["write_errors"] += 1
            self._stats["dropped_rows"] += dropped
            self._problem = f"{self.path}: cannot write: {exc}"
        log.warning("historian: %s (rows kept for the next try)", exc)

    def retain(self, now_s: float | None = None) -> int:
        """Apply retention now (age, then size); returns the rows deleted."""
        newest = self._newest_t if now_s is None else now_s
        deleted = 0
        if math.isfinite(newest):
            cutoff = newest - self.settings.max_age_days * 86400.0
            for table in ("samples", "full_rate", "setpoints", "state_changes", "events"):
                deleted += self._db.execute(f"DELETE FROM {table} WHERE t_s < ?", (cutoff,)).rowcount
        limit = self.settings.max_mb * 1e6
        for _ in range(50):
            if self.used_bytes() <= limit:
                break
            oldest = self._db.execute("SELECT min(t_s), max(t_s) FROM samples").fetchone()
            if oldest[0] is None:
                break
            cut = oldest[0] + max((oldest[1] - oldest[0]) * 0.1, self.settings.bucket_s)
            for table in ("samples", "full_rate"):
                deleted += self._db.execute(f"DELETE FROM {table} WHERE t_s < ?", (cut,)).rowcount
        self._db.execute("PRAGMA incremental_vacuum")
        with self._lock:
            self._stats["retention_deleted_rows"] += deleted
        return deleted

    def used_bytes(self) -> int:
        pages, free, size = (self._db.execute(f"PRAGMA {p}").fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
        return (pages - free) * size


# -- reading (any process) -----------------------------------------------------------------------------
class HistoryReader:
    """Read `<state dir>/history.sqlite` (no writes; another process may be writing)."""

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / HISTORY_FILE
        if not self.path.is_file():
            raise HistoryError(f"{self.path}: no history here (the supervisor writes it while `run` runs)")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a history database: {exc}") from exc
        if meta.get("application") != APPLICATION:
            raise HistoryError(f"{self.path}: written by {meta.get('application')!r}, not the historian")
        self.station_count = int(meta.get("station_count", 0))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _select(self, table: str, columns: tuple[str, ...], station, t_from, t_to, battery_id,
                kind_filter: str = "") -> list[dict[str, Any]]:
        where, args = [], []
        for cond, value in (("station = ?", station), ("t_s >= ?", t_from), ("t_s <= ?", t_to),
                            ("battery_id = ?", battery_id)):
            if value is not None:
                where.append(cond)
                args.append(value)
        sql = f"SELECT {', '.join(columns)} FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self._db.execute(sql + " ORDER BY t_s, " + ("station" if "station" in columns else "rowid"), args)
        return [dict(zip(columns, r)) for r in rows]

    def samples(self, station=None, t_from=None, t_to=None, battery_id=None) -> list[dict[str, Any]]:
        return self._select("samples", SAMPLE_COLUMNS, station, t_from, t_to, battery_id)

    def full_rate(self, station=None, t_from=None, t_to=None, battery_id=None) -> list[dict[str, Any]]:
        rows = self._select("full_rate", FULL_RATE_COLUMNS, station, t_from, t_to, battery_id)
        for r in rows:
            r["pressure_kpa"] = json.loads(r["pressure_kpa"]) if r["pressure_kpa"] else []
        return rows

    def setpoints(self, station=None, t_from=None, t_to=None, battery_id=None) -> list[dict[str, Any]]:
        rows = self._select("setpoints", SETPOINT_COLUMNS, station, t_from, t_to, battery_id)
        for r in rows:
            r["limits"] = json.loads(r["limits"]) if r["limits"] else None
        return rows

    def state_changes(self, station=None, t_from=None, t_to=None, battery_id=None) -> list[dict[str, Any]]:
        return self._select("state_changes", ("id", "t_s", "station", "before", "state", "battery_id",
                                              "operator_clear"), station, t_from, t_to, battery_id)

    def events(self, station=None, t_from=None, t_to=None, battery_id=None) -> list[dict[str, Any]]:
        rows = self._select("events", ("id", "t_s", "kind", "text", "station", "battery_id", "data"), station,
                            t_from, t_to, battery_id)
        for r in rows:
            r["data"] = json.loads(r["data"]) if r["data"] else {}
        return rows

    def size_bytes(self) -> int:
        """The file and its WAL on disk."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    def span_s(self) -> float:
        lo, hi = self._db.execute("SELECT min(t_s), max(t_s) FROM samples").fetchone()
        return 0.0 if lo is None else float(hi - lo)


def make_sample(t_s: float, battery_ids, zones: int, **arrays) -> TickSample:
    """A TickSample with every missing per-station array NaN (tests, benchmarks, a scan without a core)."""
    n = len(battery_ids)
    nan = np.full(n, np.nan)
    fields = {k: np.asarray(arrays.get(k, nan), float) for k in (
        "voltage_v", "current_a", "hot_degc", "relief_kpa", "coolant_lpm", "permit", "limit_frac",
        "current_setpoint_a", "pressure_setpoint_kpa", "coolant_base_lpm")}
    pressure = np.asarray(arrays.get("pressure_kpa", np.full((n, zones), np.nan)), float).reshape(n, zones)
    return TickSample(float(t_s), tuple(battery_ids), pressure_kpa=pressure, limits=arrays.get("limits"), **fields)

