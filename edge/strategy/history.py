"""Local SQLite history of strategies and their outcomes (S12).

Owns `History`: one table `records` (schema below), `append`, `query` by tier features (nearest
records by SOC/SOH/resistance distance) and `best_for`. Sources: 'sil' (a planning rollout),
'bench' (a bench run), 'rl' (what the RL policy learned, models/rl_policy). Tests:
tests/edge/strategy/test_history.py.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.strategy.model import Strategy

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


class History:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path))
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def append(self, source: str, tier: int, features: TierFeatures, strategy: Strategy, metrics: dict,
               cost: float) -> int:
        cur = self.db.execute(
            "INSERT INTO records (created_unix_s, source, tier, soc_mean_pct, soh_mean, r_mean_mohm, n_modules,"
            " strategy_json, batch_time_s, residual_pct, peak_temp_degc, time_above_warning_s, relief_events, cost)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (time.time(), source, int(tier), features.soc_mean_pct, features.soh_mean, features.r_mean_mohm,
             int(features.n_modules), json.dumps(strategy.to_dict()), float(metrics["batch_time_s"]),
             float(metrics["residual_pct"]), float(metrics["peak_temp_degc"]),
             float(metrics["time_above_warning_s"]), int(metrics["relief_events"]), float(cost)))
        self.db.commit()
        return int(cur.lastrowid)

    def _rows(self, where: str = "", args: tuple = ()) -> list[Record]:
        rows = self.db.execute(
            "SELECT id, source, tier, soc_mean_pct, soh_mean, r_mean_mohm, n_modules, strategy_json, batch_time_s,"
            f" residual_pct, peak_temp_degc, time_above_warning_s, relief_events, cost FROM records {where}", args)
        out = []
        for r in rows:
            metrics = dict(zip(("batch_time_s", "residual_pct", "peak_temp_degc", "time_above_warning_s",
                                "relief_events"), r[8:13]))
            out.append(Record(r[0], r[1], r[2], TierFeatures(r[3], r[4], r[5], r[6]),
                              Strategy.from_dict(json.loads(r[7]), f"{self.path}: record {r[0]}"), metrics, r[13]))
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
