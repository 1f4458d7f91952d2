"""Benchmarks of the historian (issue 14): the write cost per scan at 64 stations (the scan's own
cost, `observe`, and the writer's aggregation and commit per scan), and the database's size per
battery and per hour of line time. Run by `make bench-pytest` (pytest-benchmark); the sizes are
put in the benchmark's extra_info (bytes_per_battery, bytes_per_line_hour).
The line simulated: 64 stations, a scan a second, each station holding a battery of 40 minutes
then 2 minutes empty, an event every 30 s somewhere on the line (window 30 s)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.supervisor.historian import Historian, HistoryReader, HistorySettings, make_sample
from edge.supervisor.store import Store

pytestmark = pytest.mark.bench

N, ZONES = 64, 2
BATTERY_S, EMPTY_S = 2400, 120


def line_sample(t: float, rng) -> object:
    phase = (t + np.arange(N) * 37.0) % (BATTERY_S + EMPTY_S)
    held = phase < BATTERY_S
    cells = tuple(f"{int((t + s * 37.0) // (BATTERY_S + EMPTY_S))}-{s}" if held[s] else None for s in range(N))
    current = np.where(held, 5.0 + rng.normal(0, 0.05, N), 0.0)
    return make_sample(t, cells, ZONES, voltage_v=21.0 - phase / BATTERY_S * 5, current_a=current,
                       hot_degc=30.0 + rng.normal(0, 0.2, N), pressure_kpa=np.tile([120.0, 121.0], (N, 1)),
                       relief_kpa=np.zeros(N), coolant_lpm=np.full(N, 3.0), permit=np.ones(N),
                       limit_frac=np.ones(N), current_setpoint_a=np.where(held, 5.0, 0.0),
                       pressure_setpoint_kpa=np.where(held, 120.0, 0.0), coolant_base_lpm=np.full(N, 3.0))


def test_observe_cost_in_the_scan_at_64_stations(benchmark, tmp_path):
    h = Historian(tmp_path, N, ZONES, settings=HistorySettings(queue_samples=1_000_000), thread=False)
    s = line_sample(0.0, np.random.default_rng(0))
    benchmark(h.observe, s)
    h._queue.queue.clear()
    h.close()


def test_writer_cost_per_scan_at_64_stations(benchmark, tmp_path):
    """The writer's work for one scan: aggregate it, and every `flush_s` (here each scan: 1 s
    scans) close the bucket and commit 64 rows."""
    h = Historian(tmp_path, N, ZONES, thread=False)
    rng = np.random.default_rng(1)
    samples = [line_sample(float(t), rng) for t in range(2000)]
    it = iter(samples)

    def one_scan():
        h._take(next(it))
        h._drain(final=False)

    benchmark.pedantic(one_scan, rounds=1500, iterations=1, warmup_rounds=20)
    h.close()


@pytest.mark.slow  # 14 s: a line-hour of samples written; in make test-slow
def test_database_size_per_battery_and_per_line_hour(benchmark, tmp_path):
    """Two hours of a 64-station line at one scan a second, with events; size of history.sqlite."""
    store = Store(tmp_path, N, clock=lambda: 0.0)
    h = Historian(tmp_path, N, ZONES, thread=False)
    rng = np.random.default_rng(2)
    hours = 2.0
    cells = set()

    def run():
        for t in range(int(hours * 3600)):
            s = line_sample(float(t), rng)
            cells.update(c for c in s.battery_ids if c)
            if t % 30 == 0:
                store.add_event("redischarge", "x", station=t % N, at=float(t))
            h._take(s)
            if t % 10 == 0:
                h._drain(final=False)
        h._drain(final=True)

    benchmark.pedantic(run, rounds=1, iterations=1)
    h._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with HistoryReader(tmp_path) as r:
        size = r.size_bytes()
        battery_hours = len(r.samples()) / 3600.0
    h.close()
    store.close()
    per_hour = size / hours
    per_battery = size / len(cells)
    benchmark.extra_info.update(bytes_total=size, bytes_per_line_hour=round(per_hour),
                                bytes_per_battery=round(per_battery), batteries=len(cells),
                                station_hours_kept=round(battery_hours, 2))
    print(f"\nhistory.sqlite: {size / 1e6:.1f} MB for {hours:g} h of 64 stations: {per_hour / 1e6:.1f} MB per line hour, "
          f"{per_battery / 1e3:.0f} kB per battery ({len(cells)} batteries, 40 min each)")
    assert 0 < per_battery < 5e6 and battery_hours > 100
