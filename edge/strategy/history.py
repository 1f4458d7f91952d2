"""Local SQLite history of strategies and their outcomes (S12): a closed world.

Owns `History`: one table `records` (schema below), `append`, `query` by tier features (nearest
records by SOC/SOH/resistance distance) and `best_for`; `check_record` (with `check_features` and
`check_metrics`), the one gate every record passes, on the way in (`append`) and on the way out
(every read); `HISTORY_FILE`, the file's name in a state dir. Sources: 'sil' (a planning rollout),
'bench' (a bench run), 'rl' (what the RL policy learned, models/rl_policy).
Tests: tests/edge/strategy/test_history.py, tests/edge/strategy/test_plan_workers.py (append_many).

Closed world: a record holds physically sane tier figures (`FEATURE_RANGES`: SOC 0-100 %, SOH
0.05-1.2 of rated, resistance 0-1000 mΩ, 1 to a million modules), a strategy inside the maximum
safety limits (`edge.strategy.model.check_strategy`: a C-rate of 40 is refused), sane outcomes
(`METRIC_RANGES`) and finite numbers only; anything else is refused with `HistoryRecordError`
naming the field. A history file that cannot be read (not SQLite, corrupt pages, a foreign table,
a record that fails the gate) is set aside at open, renamed `<name>.corrupt-<UTC time>` with its
journal files, and named in a warning (`History.set_aside`, `History.set_aside_reason`); the
history starts empty and planning goes on. A path that is no file (a folder), a state dir that
cannot be written, or a history locked by another process past `LOCK_WAIT_S` raises
`HistoryError` (a healthy file in use is never set aside).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.strategy.model import Strategy, StrategyError, TierLimits, check_strategy

log = logging.getLogger(__name__)

HISTORY_FILE = "strategy_history.sqlite"
"""The history's file name inside a state dir (`plan --state-dir`, the supervisor's state dir)."""
SOURCES = ("sil", "bench", "rl")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_unix_s REAL NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('sil', 'bench', 'rl')),
    tier INTEGER NOT NULL,
    soc_mean_pct REAL NOT NULL,
    soh_mean REAL NOT NULL,
    r_mean_mohm REAL NOT NULL,
    n_modules INTEGER NOT NULL,
    strategy_json TEXT NOT NULL,
    batch_time_s REAL NOT NULL,
    residual_pct REAL NOT NULL,
    peak_temp_degc REAL NOT NULL,
    time_above_warning_s REAL NOT NULL,
    relief_events INTEGER NOT NULL,
    cost REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_features ON records (soc_mean_pct, soh_mean);
"""
COLUMNS = ("id", "source", "tier", "soc_mean_pct", "soh_mean", "r_mean_mohm", "n_modules", "strategy_json",
           "batch_time_s", "residual_pct", "peak_temp_degc", "time_above_warning_s", "relief_events", "cost")

FEATURE_RANGES = {
    "soc_mean_pct": (0.0, 100.0),  # a state of charge
    "soh_mean": (0.05, 1.2),  # capacity over rated: a new cell reaches ~1.1, 0.05 is a dead can
    "r_mean_mohm": (0.0, 1000.0),  # the arrival pulse resistance (cells_train.csv: 22-76 mΩ)
    "n_modules": (1, 1_000_000),
}
"""Physically sane tier figures, [lo, hi] inclusive."""
METRIC_RANGES = {
    "batch_time_s": (0.0, 7 * 86400.0),
    "residual_pct": (0.0, 100.0 + 1e-6),  # charge left, % of the charge at start
    "peak_temp_degc": (-50.0, 500.0),
    "time_above_warning_s": (0.0, 7 * 86400.0),
    "relief_events": (0, 10_000_000),
}
"""Sane outcomes of a discharge, [lo, hi] inclusive."""
MAX_TIER = 1000
LOCK_WAIT_S = 5.0
"""How long an open or a write waits for another process's lock on the history (sqlite's busy timeout)."""
NOT_CORRUPT = ("locked", "busy", "unable to open", "readonly", "disk I/O", "disk is full")
"""sqlite3.OperationalError messages of a file that is in use or cannot be reached, not corrupt:
`HistoryError`, never set aside."""


class HistoryError(OSError):
    """The history cannot be opened or created at all (its path is no file, its folder not writable)."""


class HistoryRecordError(ValueError):
    """A record outside the closed world (the message names the record and the field)."""


@dataclass(frozen=True)
class TierFeatures:
    soc_mean_pct: float
    soh_mean: float
    r_mean_mohm: float
    n_modules: int

    def as_vector(self) -> tuple[float, float, float]:
        return (self.soc_mean_pct / 100.0, self.soh_mean, self.r_mean_mohm / 100.0)


@dataclass(frozen=True)
class Record:
    id: int
    source: str
    tier: int
    features: TierFeatures
    strategy: Strategy
    metrics: dict
    cost: float


def _number(value, where: str, lo: float, hi: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryRecordError(f"{where}: must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise HistoryRecordError(f"{where}: must be in [{lo:g}, {hi:g}], got {value!r}")
    if integer and value != int(value):
        raise HistoryRecordError(f"{where}: must be a whole number, got {value!r}")
    return value


def check_features(features: TierFeatures, where: str = "tier") -> TierFeatures:
    """`features` when every figure is physically sane (`FEATURE_RANGES`); else HistoryRecordError."""
    for name, (lo, hi) in FEATURE_RANGES.items():
        _number(getattr(features, name), f"{where}.{name}", lo, hi, integer=name == "n_modules")
    return features


def check_metrics(metrics: dict, where: str = "metrics") -> dict:
    """The record's outcome figures (`METRIC_RANGES` keys) when sane; else HistoryRecordError."""
    if not isinstance(metrics, dict):
        raise HistoryRecordError(f"{where}: must be a mapping, got {type(metrics).__name__}")
    out = {}
    for name, (lo, hi) in METRIC_RANGES.items():
        if name not in metrics:
            raise HistoryRecordError(f"{where}.{name}: missing")
        out[name] = _number(metrics[name], f"{where}.{name}", lo, hi, integer=name == "relief_events")
    return out


def check_record(source, tier, features: TierFeatures, strategy: Strategy, metrics: dict, cost,
                 where: str = "record", limits: TierLimits = TierLimits()) -> None:
    """The one gate of the history (module docstring), for `append` and for every read."""
    if source not in SOURCES:
        raise HistoryRecordError(f"{where}.source: must be one of {list(SOURCES)}, got {source!r}")
    _number(tier, f"{where}.tier", 0, MAX_TIER, integer=True)
    check_features(features, where)
    try:
        check_strategy(strategy, limits, where=f"{where}.strategy")
    except StrategyError as exc:
        raise HistoryRecordError(str(exc)) from None
    check_metrics(metrics, f"{where}.metrics")
    _number(cost, f"{where}.cost", -1e9, 1e9)


class History:
    """The history at `path` (created with its folder when missing; set aside when unreadable)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._checked: dict[int, Record] = {}  # records that passed the gate, by id (each is checked once)
        self.set_aside: Path | None = None
        self.set_aside_reason: str | None = None
        if self.path.exists() and not self.path.is_file():
            raise HistoryError(f"{self.path}: the strategy history must be a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"{self.path.parent}: cannot create the state dir: {exc.strerror}") from exc
        try:
            self.db = self._open()
        except sqlite3.OperationalError as exc:
            if any(word in str(exc) for word in NOT_CORRUPT):  # a healthy file in use, or the disk: not set aside
                raise HistoryError(f"{self.path}: cannot open the strategy history: {exc}") from exc
            self._set_aside(f"{type(exc).__name__}: {exc}")
            self.db = self._reopen()
        except (sqlite3.Error, HistoryRecordError, ValueError) as exc:
            self._set_aside(f"{type(exc).__name__}: {exc}")
            self.db = self._reopen()

    def _reopen(self) -> sqlite3.Connection:
        try:
            return self._open()
        except sqlite3.Error as again:
            raise HistoryError(f"{self.path}: cannot create a new history: {again}") from again

    def _open(self) -> sqlite3.Connection:
        self._checked.clear()
        db = sqlite3.connect(str(self.path), timeout=LOCK_WAIT_S)
        try:
            db.executescript(SCHEMA)
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {problem}")
            for row in db.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY id"):
                self._checked[row[0]] = self._record(row)  # every stored record passes the gate, or the file is set aside
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        try:
            self.path.rename(target)
            for suffix in ("-journal", "-wal", "-shm"):  # a stale journal must not replay into the new file
                journal = self.path.with_name(self.path.name + suffix)
                if journal.exists():
                    journal.rename(target.with_name(target.name + suffix))
        except OSError as exc:
            raise HistoryError(f"{self.path}: unreadable ({reason}) and cannot be set aside: {exc.strerror}") from exc
        self.set_aside, self.set_aside_reason = target, reason
        log.warning("strategy history %s unreadable (%s): set aside as %s; planning goes on with an empty history",
                    self.path, reason, target)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, source: str, tier: int, features: TierFeatures, strategy: Strategy, metrics: dict,
               cost: float) -> int:
        """Add a record through the gate (`check_record`); HistoryRecordError names what was refused."""
        return self.append_many(source, tier, features, [(strategy, metrics, cost)])[0]

    def append_many(self, source: str, tier: int, features: TierFeatures,
                    records: list[tuple[Strategy, dict, float]]) -> list[int]:
        """Add records (strategy, metrics, cost) of one tier in one transaction: every one through the
        gate first (HistoryRecordError names the first refused, and none is written), one commit
        (a commit is a disk flush: 60 of them took 3.8 s of a 40-battery plan)."""
        checked = []
        for strategy, metrics, cost in records:
            check_record(source, tier, features, strategy, metrics, cost, where=f"{self.path}: new record (tier {tier})")
            checked.append((strategy, check_metrics(metrics), cost))
        ids = []
        with self.db:
            for strategy, metrics, cost in checked:
                ids.append(self._insert(source, tier, features, strategy, metrics, cost))
        return ids

    def _insert(self, source: str, tier: int, features: TierFeatures, strategy: Strategy, m: dict,
                cost: float) -> int:
        cur = self.db.execute(
            "INSERT INTO records (created_unix_s, source, tier, soc_mean_pct, soh_mean, r_mean_mohm, n_modules,"
            " strategy_json, batch_time_s, residual_pct, peak_temp_degc, time_above_warning_s, relief_events, cost)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (time.time(), source, int(tier), float(features.soc_mean_pct), float(features.soh_mean),
             float(features.r_mean_mohm), int(features.n_modules), json.dumps(strategy.to_dict()),
             float(m["batch_time_s"]), float(m["residual_pct"]), float(m["peak_temp_degc"]),
             float(m["time_above_warning_s"]), int(m["relief_events"]), float(cost)))
        return int(cur.lastrowid)

    def _record(self, r) -> Record:
        """A stored row as a Record, through the gate; HistoryRecordError (or ValueError) if it fails."""
        where = f"{self.path}: record {r[0]}"
        try:
            strategy = Strategy.from_dict(json.loads(r[7]), f"{where}.strategy")
        except (TypeError, ValueError, AttributeError) as exc:  # JSON, StrategyError, a non-object
            raise HistoryRecordError(f"{where}.strategy_json: {exc}") from None
        metrics = dict(zip(METRIC_RANGES, r[8:13]))
        record = Record(r[0], r[1], r[2], TierFeatures(r[3], r[4], r[5], r[6]), strategy, metrics, r[13])
        check_record(record.source, record.tier, record.features, strategy, metrics, record.cost, where)
        return record

    def _rows(self, where: str = "", args: tuple = ()) -> list[Record]:
        out = []
        for row in self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM records {where}", args):
            record = self._checked.get(row[0])
            if record is None:
                try:
                    record = self._checked[row[0]] = self._record(row)
                except (HistoryRecordError, ValueError) as exc:  # written since the open, past the gate
                    log.warning("strategy history: %s; record skipped", exc)
                    continue
            out.append(record)
        return out

    def all(self) -> list[Record]:
        return self._rows("ORDER BY id")

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def query(self, features: TierFeatures, k: int = 10, sources: tuple[str, ...] = ("sil", "rl")) -> list[Record]:
        """The k records of `sources` whose tier features are nearest (Euclidean on SOC/100, SOH, R/100 mΩ).
        By default only rollout records: a 'bench' record's cost scores the whole batch, another scale."""
        x = features.as_vector()
        records = [r for r in self.all() if r.source in sources]
        records.sort(key=lambda r: sum((a - b) ** 2 for a, b in zip(r.features.as_vector(), x)))
        return records[:k]

    def best_for(self, features: TierFeatures, k: int = 10, sources: tuple[str, ...] = ("sil", "rl")) -> Record | None:
        """The lowest-cost record among the k nearest of `sources`; None when there is none."""
        near = self.query(features, k, sources)
        return min(near, key=lambda r: r.cost) if near else None
