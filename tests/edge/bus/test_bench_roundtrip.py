"""Benchmark: one tick's I/O, reading 64 REALs and writing 8, over each backend on loopback.

Run with `make bench` (timing on). In `make test` each body runs once, as a check that it works.
Modbus and Logix talk to the bench server directly, not through its fault proxy.
"""

from __future__ import annotations

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import Owner

pytestmark = pytest.mark.bench

RELIEF = tuple(float(i) for i in range(8))


def test_read_64_reals_write_8(benchmark, plc):
    plc.set("temps_degc", tuple(25.0 + i * 0.1 for i in range(64)))
    if plc.kind == "memory":
        bus = plc.open_bus()
    else:
        bus = open_bus(plc.direct_tag_map, Owner.RTCORE)
    benchmark.group = "tag bus: read 64 REAL + write 8 REAL"
    benchmark.name = plc.kind

    def tick_io():
        temps = bus.read(["temps_degc"])[0]
        written = bus.write({"relief_pct": RELIEF})[0]
        return temps, written

    try:
        temps, written = benchmark(tick_io)
    finally:
        bus.close()
    assert temps.quality is Quality.GOOD and len(temps.value) == 64
    assert written.quality is Quality.GOOD
    assert plc.get("relief_pct") == pytest.approx(RELIEF)
