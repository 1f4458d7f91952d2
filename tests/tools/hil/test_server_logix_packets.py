"""The Logix bench answers pycomm3's fragmented and multiple-service requests within the
connection size (tools/hil/server_logix.py), at 128 stations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import Owner
from tests.edge.bus.resize import bench_map
from tools.hil.server_logix import LogixPlcServer

pytestmark = pytest.mark.contract

READ_FRAGMENTED, WRITE_FRAGMENTED, READ, WRITE, MULTIPLE = 0x52, 0x53, 0x4C, 0x4D, 0x0A


def exchange(connection_size: int):
    with LogixPlcServer(bench_map("logix", 128), connection_size=connection_size) as server:
        temps = tuple(20.0 + 0.01 * i for i in range(512))
        server.set("marker_temp_degc", temps)
        # what is sent and answered, not how fast: the bench map's 50 ms fails a loaded machine's run
        with open_bus(replace(server.tag_map, timeout_s=5.0), Owner.RTCORE) as bus:
            server.packets.services.clear()
            reads = bus.read([t.name for t in server.tag_map.tags])
            written = bus.write({"relief_first_kpa": tuple(float(i % 300) for i in range(256)),
                                 "rtcore_heartbeat": 5, "safe_state": False, "discharge_permit": (True,) * 128})
            assert all(r.quality is Quality.GOOD for r in reads)
            assert reads[[r.name for r in reads].index("marker_temp_degc")].value == pytest.approx(temps, abs=1e-4)
            assert all(w.quality is Quality.GOOD for w in written)
            assert server.get("relief_first_kpa") == pytest.approx(tuple(float(i % 300) for i in range(256)))
        return server.packets


def test_a_500_byte_connection_gets_fragments_and_packets_that_fit():
    packets = exchange(500)
    # 512 REALs (2 KB) cannot come in one 500-byte reply: fragments, both ways
    assert packets.services[READ_FRAGMENTED] >= 5 and packets.services[WRITE_FRAGMENTED] >= 3
    assert packets.services[MULTIPLE] >= 1  # the small tags packed together
    assert packets.largest_reply_bytes <= 500 and packets.largest_request_bytes <= 500
    assert packets.too_large == 0


def test_a_4000_byte_connection_reads_large_tags_whole_in_packets():
    packets = exchange(4000)
    assert packets.services[MULTIPLE] >= 1
    assert packets.largest_reply_bytes <= 4000 and packets.too_large == 0
    assert packets.largest_reply_bytes > 2048  # the 2 KB marker array came in one reply
