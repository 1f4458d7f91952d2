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


@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_read_512_reals_write_128_at_128_stations(benchmark, protocol):
    """A 128-station tick's I/O (resize.py): 512 marker REALs read, 128 REAL outputs written,
    past the fault proxy. Measured once (issue 19, 200 rounds on loopback, 2 shared cores):
    Modbus median 2.2 ms, p99 4.1 ms (9 read + 3 write requests); EtherNet/IP median 1.5 ms,
    p99 1.9 ms (one 2 KB read, one write, in a 4000-byte connection)."""
    from .test_request_plan import _server

    with _server(protocol) as server:
        server.set("marker_temp_degc", tuple(20.0 + 0.01 * i for i in range(512)))
        bus = open_bus(server.direct_tag_map, Owner.RTCORE)
        outputs = tuple(float(i % 20) for i in range(128))
        benchmark.group = "tag bus at 128 stations: read 512 REAL + write 128 REAL"
        benchmark.name = protocol

        def tick_io():
            temps = bus.read(["marker_temp_degc"])[0]
            written = bus.write({"coolant_flow_lpm": outputs})[0]
            return temps, written

        try:
            temps, written = benchmark.pedantic(tick_io, rounds=200, warmup_rounds=5) \
                if benchmark.enabled else benchmark(tick_io)
        finally:
            bus.close()
        assert temps.quality is Quality.GOOD and len(temps.value) == 512
        assert written.quality is Quality.GOOD
        assert server.get("coolant_flow_lpm") == pytest.approx(outputs)
