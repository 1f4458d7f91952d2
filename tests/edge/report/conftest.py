"""A small batch in a state dir, written through the supervisor's own store and historian APIs:
3 stations, 5 batteries (one isolated, one with a `<script>` in its source), robot moves, events,
an alarm and 1 s series on two stations."""

from __future__ import annotations

import pytest

from edge.supervisor.stations import StationState as St
from edge.supervisor.store import Store

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z
CELLS = ("A1", "A2", "B7", "C3", "D9")


def _record(cell: str, station: int, tier: int, start: float, end: float, outcome: str = "done", **extra) -> dict:
    return {"cell_id": cell, "station": station, "tier": tier, "route": "recycling", "slot": station + 1,
            "channel": "A" if station < 2 else "B", "soc_pct": 55.5, "soc_lo_pct": 54.0, "soc_hi_pct": 57.0,
            "soh_est": 0.8, "soh_sd": 0.02, "outcome": outcome, "cause": ["OVER_TEMP"] if outcome == "isolated" else [],
            "start_s": start, "end_s": end, "placement": {"done_s": start - 5.0, "slot": station + 1, "station": station},
            "passes": 2, "redischarges": 1, "charge_removed_ah": 1.234, "residual_pct_est": 3.0,
            "peak_temp_degc": 44.5, "time_above_warning_s": 0.0, "source": "arrivals.csv:2", **extra}


def write_batch(state_dir, with_series: bool = True) -> None:
    versions = {"soc_gan": {"format": "discharge-edge/soc-gan/2", "sha256": "a" * 64}}
    with Store(state_dir, 3) as store:
        store.add_event("supervisor_start", "fresh start", at=T0)
        t = T0 + 10.0
        plan = [("A1", 0, 1, 600.0, "done"), ("A2", 1, 2, 900.0, "isolated"), ("B7", 2, 3, 700.0, "done"),
                ("C3", 0, 1, 500.0, "done"), ("D9", 2, 4, 400.0, "done")]
        free_at = {0: t, 1: t, 2: t}
        for cell, station, tier, length, outcome in plan:
            begin = free_at[station]
            store.add_event("robot_move", f"robot: battery {cell} -> station {station}: done", at=begin + 5.0,
                            data={"battery_id": cell, "ordered_s": begin, "done_s": begin + 5.0, "ok": True,
                                  "pick": 1001, "place": station, "attempts": [{}]})
            store.set_station(station, St.LOADING, cell, at=begin)
            store.set_station(station, St.CLAMPING, cell, at=begin + 5.0)
            store.set_station(station, St.DISCHARGING, cell, at=begin + 10.0)
            if outcome == "isolated":
                store.set_station(station, St.ISOLATED, cell, at=begin + length)
                store.add_event("station_isolated", f"station {station} isolated: OVER_TEMP", station=station,
                                battery_id=cell, at=begin + length)
                extra = {"source": "<script>alert(1)</script>"}
            else:
                store.set_station(station, St.RESTING, cell, at=begin + length - 60.0)
                store.set_station(station, St.DONE, cell, at=begin + length)
                store.set_station(station, St.EMPTY, None, at=begin + length + 5.0)
                extra = {}
            store.record_battery(cell, _record(cell, station, tier, begin + 10.0, begin + length, outcome, **extra),
                                 versions, at=begin + length + 1.0)
            free_at[station] = begin + length + 10.0
    try:
        from edge.supervisor.alarms import AlarmBook, AlarmSpec
    except ImportError:
        pass
    else:
        with AlarmBook(state_dir, clock=lambda: T0 + 920.0) as book:
            book.raise_alarm(AlarmSpec("core.station.1", "high", "OVER_TEMP", "station 1 isolated", station=1,
                                       value=61.0, unit="degC", battery_id="A2", source="core"))
    if with_series:
        import numpy as np

        from edge.supervisor.historian import Historian, HistorySettings, make_sample

        historian = Historian(state_dir, 3, 2, settings=HistorySettings(), thread=False)
        try:
            for k in range(120):
                historian.observe(make_sample(T0 + 20.0 + k * 0.5, ("A1", "A2", None), 2,
                                              current_a=np.array([10.0, 12.0, 0.0]),
                                              hot_degc=np.array([30.0 + 0.05 * k, 35.0 + 0.1 * k, 25.0]),
                                              relief_kpa=np.zeros(3), coolant_lpm=np.array([2.0, 4.0, 0.0]),
                                              pressure_kpa=np.full((3, 2), 150.0)))
                historian.pump()
            historian.flush()
        finally:
            historian.close()


@pytest.fixture
def batch_dir(tmp_path):
    state = tmp_path / "state"
    write_batch(state)
    return state
