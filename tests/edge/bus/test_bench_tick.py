"""Benchmark: one tick's work in the loop's Python around the kernel, at 8, 64 and 128 stations.

`RtLoop.step()` (read the inputs, tick the kernel, compose and write the outputs), then the
loop's per-tick bookkeeping (`TickStats.record`, the status it publishes on the link), on the
in-memory PLC: no network, so what is measured is the bus's checks and conversions and the
loop's own Python. Run with `make bench` (timing on); in `make test` each body runs once.
"""

from __future__ import annotations

import uuid

import pytest

import rtcore
from edge.bus import MemoryPlc, open_bus
from edge.rtloop.link import RtSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_kernel
from edge.tagmap import Owner

from .resize import bench_map

pytestmark = pytest.mark.bench


def loop_at(stations: int, link=None) -> tuple[RtLoop, MemoryPlc]:
    tag_map = bench_map("logix", stations)
    plc = MemoryPlc(tag_map)
    plc.set("marker_temp_degc", tuple(25.0 + 0.01 * i for i in range(4 * stations)))
    plc.set("zone_pressure_kpa", (120.0,) * (2 * stations))
    bus = open_bus(tag_map, Owner.RTCORE, plc=plc)
    loop = RtLoop(bus, build_kernel(tag_map, LoopTags(), 0.1), settings=LoopSettings(realtime_priority=0), link=link)
    loop.arm("benchmark")
    return loop, plc


@pytest.mark.parametrize("stations", [8, 64, 128])
def test_tick_overhead(benchmark, stations):
    link = RtSide(f"discharge-edge-bench-{uuid.uuid4().hex[:8]}")
    loop, plc = loop_at(stations, link)
    benchmark.group = "rtloop: one tick on the memory PLC (step + record + status on the link)"
    benchmark.name = f"{stations} stations ({'compiled' if rtcore.COMPILED else 'twin'} kernel)"

    n = 4 * stations
    temps = [tuple(25.0 + 0.01 * i + 0.05 * k for i in range(n)) for k in range(4)]  # a live sensor moves

    def tick():
        plc.write_raw({"plc_heartbeat": loop.tick_count, "marker_temp_degc": temps[loop.tick_count % 4]})
        loop.step()
        loop.stats.record(1_000, 2_000_000, False)
        link.write_status(loop.status())

    try:
        benchmark.pedantic(tick, rounds=300, warmup_rounds=10) if benchmark.enabled else benchmark(tick)
    finally:
        link.close()
        loop.bus.close()
    assert not loop.kernel.safe_state and loop.stats.ticks >= 1
    assert plc.get("discharge_permit") == (True,) * stations  # the tick did its work
    assert plc.get("rtcore_heartbeat") == loop.tick_count - 1


@pytest.mark.parametrize("window", [8192])
def test_status_statistics(benchmark, window):
    from edge.rtloop.stats import TickStats

    stats = TickStats(window)
    for i in range(window):
        stats.record(50_000 + (i * 7919) % 100_000, 3_000_000, False)
    benchmark.group = "rtloop: the timing summary over a full window"
    summary = benchmark(stats.summary)
    assert 50_000 <= summary["lateness_p50_ns"] <= summary["lateness_p99_ns"] <= 150_000
