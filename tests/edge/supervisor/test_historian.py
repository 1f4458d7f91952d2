"""The historian (edge/supervisor/historian.py): 1 s means and maxima per station, full rate around
the store's events, setpoints on change, copies of the store's events and station changes,
retention by age and size, and a full disk that is a problem, not an exception."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from edge.supervisor.historian import (HISTORY_FILE, Historian, HistoryError, HistoryReader, HistorySettings,
                                       make_sample)
from edge.supervisor.stations import StationState
from edge.supervisor.store import Store

pytestmark = pytest.mark.integration

N, ZONES = 4, 2


def sample(t, cells=("a", None, None, None), current=2.0, volts=20.0, hot=30.0, setpoint=2.0):
    n = len(cells)
    return make_sample(t, cells, ZONES, voltage_v=np.full(n, volts), current_a=np.full(n, current) * [c is not None for c in cells],
                       hot_degc=np.full(n, hot), pressure_kpa=np.tile([100.0, 110.0], (n, 1)),
                       relief_kpa=np.zeros(n), coolant_lpm=np.full(n, 4.0), permit=np.ones(n),
                       limit_frac=np.ones(n), current_setpoint_a=np.full(n, setpoint),
                       pressure_setpoint_kpa=np.full(n, 120.0), coolant_base_lpm=np.full(n, 4.0))


def test_one_second_means_and_maxima_per_station_with_battery(tmp_path):
    h = Historian(tmp_path, N, ZONES, settings=HistorySettings(window_s=2.0))
    for k, t in enumerate(np.arange(100.0, 103.0, 0.25)):  # 4 scans a second, 3 s
        h.observe(sample(t, current=1.0 + k, hot=30.0 + k))
    assert h.flush()
    h.close()
    with HistoryReader(tmp_path) as r:
        rows = r.samples()
        assert [(x["t_s"], x["station"], x["battery_id"], x["n"]) for x in rows] == [
            (100.0, 0, "a", 4), (101.0, 0, "a", 4), (102.0, 0, "a", 4)]  # empty stations are not written
        assert rows[0]["current_a_mean"] == pytest.approx(2.5) and rows[0]["current_a_max"] == 4.0
        assert rows[2]["hot_degc_max"] == 41.0
        assert rows[0]["pressure_kpa_mean"] == 105.0 and rows[0]["pressure_kpa_max"] == 110.0
        assert rows[0]["pressure_kpa_min"] == 100.0 and rows[0]["permit_mean"] == 1.0
        assert r.samples(station=1) == [] and len(r.samples(t_from=101.0, t_to=101.5)) == 1
        sp = r.setpoints()
        assert len(sp) == N and sp[0]["current_a"] == 2.0  # unchanged setpoints: one row per station
        assert r.full_rate() == []  # no event: no full rate


def test_full_rate_window_around_a_store_event_and_the_copies(tmp_path):
    store = Store(tmp_path, N, clock=lambda: 0.0)
    h = Historian(tmp_path, N, ZONES, settings=HistorySettings(window_s=1.0))
    for t in np.arange(100.0, 102.0, 0.25):
        h.observe(sample(t))
    store.set_station(0, StationState.LOADING, "a", {}, at=102.0)
    store.add_event("station_isolated", "hot", station=0, battery_id="a", at=102.0)
    h.flush()
    for t in np.arange(102.0, 104.0, 0.25):
        h.observe(sample(t, setpoint=5.0))
    h.flush()
    h.close()
    with HistoryReader(tmp_path) as r:
        raw = r.full_rate()
        times = [x["t_s"] for x in raw]
        assert times == [t for t in np.arange(101.0, 103.01, 0.25)]  # 1 s before and after, station 0 only
        assert {x["station"] for x in raw} == {0} and raw[0]["pressure_kpa"] == [100.0, 110.0]
        assert [(e["kind"], e["station"]) for e in r.events()] == [("station_isolated", 0)]
        assert [(c["before"], c["state"], c["battery_id"]) for c in r.state_changes()] == [("empty", "loading", "a")]
        assert [x["current_a"] for x in r.setpoints(station=0)] == [2.0, 5.0]
    store.close()


def test_retention_by_age_and_by_size(tmp_path):
    h = Historian(tmp_path, N, ZONES, settings=HistorySettings(max_age_days=1.0 / 24, max_mb=1e9), thread=False)
    for t in np.arange(0.0, 7200.0, 10.0):
        h._take(sample(t))
    h._drain(final=True)  # the first commit applies retention
    assert h.stats()["retention_deleted_rows"] > 0
    with HistoryReader(tmp_path) as r:
        assert min(x["t_s"] for x in r.samples()) >= 7190.0 - 3600.0
    h.settings = HistorySettings(max_mb=0.25)
    for t in np.arange(7200.0, 30000.0, 1.0):
        h._take(sample(t, cells=("a", "b", "c", "d")))
    h._drain(final=True)
    assert h.retain() > 0
    assert h.used_bytes() <= 0.25e6
    with HistoryReader(tmp_path) as r:
        rows = r.samples()
        assert rows and rows[-1]["t_s"] == 29999.0  # the newest are kept
    h.close()


def test_a_full_disk_is_a_problem_then_recovers(tmp_path):
    h = Historian(tmp_path, N, ZONES, thread=False)
    h._take(sample(1.0))
    h._drain(final=True)
    pages = h._db.execute("PRAGMA page_count").fetchone()[0]
    h._db.execute(f"PRAGMA max_page_count={pages}")
    for t in np.arange(2.0, 400.0, 1.0):
        h._take(sample(t, cells=("a", "b", "c", "d")))
    h._drain(final=True)
    assert "full" in (h.problem() or "") and h.stats()["pending_rows"] > 0 and h.stats()["write_errors"] >= 1
    h._db.execute("PRAGMA max_page_count=1073741823")
    h._drain(final=True)
    assert h.problem() is None and h.stats()["pending_rows"] == 0
    h.close()
    with HistoryReader(tmp_path) as r:
        assert len(r.samples()) == 1 + 398 * 4


def test_observe_never_blocks_a_full_queue_drops_and_counts(tmp_path):
    h = Historian(tmp_path, N, ZONES, settings=HistorySettings(queue_samples=2), thread=False)
    assert [h.observe(sample(t)) for t in (1.0, 2.0, 3.0)] == [True, True, False]
    assert h.stats()["dropped_samples"] == 1
    h.close()


def test_reader_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(HistoryError, match=HISTORY_FILE):
        HistoryReader(tmp_path)
    db = sqlite3.connect(tmp_path / HISTORY_FILE)
    db.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('application', 'other')")
    db.commit()
    with pytest.raises(HistoryError, match="other"):
        HistoryReader(tmp_path)
