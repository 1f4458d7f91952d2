"""The Modbus bench enforces the protocol's request limits as a real device does, so the
controller's request plans are proven within them (tools/hil/server_modbus.py)."""

from __future__ import annotations

import socket
import struct

from dataclasses import replace

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import Owner
from tests.edge.bus.resize import bench_map
from tools.hil.server_modbus import REQUEST_LIMITS, ModbusPlcServer

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def server():
    with ModbusPlcServer(bench_map("modbus", 128)) as served:
        yield served


def ask(server, function_code: int, address: int, count: int, payload: bytes = b"") -> bytes:
    """One raw request past the fault proxy; the answer's PDU (function code onwards)."""
    pdu = struct.pack(">BHH", function_code, address, count) + payload
    unit = server.tag_map.endpoint.unit_id
    with socket.create_connection(("127.0.0.1", server.direct_tag_map.endpoint.port), timeout=2.0) as sock:
        sock.sendall(struct.pack(">HHHB", 1, 0, len(pdu) + 1, unit) + pdu)
        header = sock.recv(7, socket.MSG_WAITALL)
        length = struct.unpack(">HHHB", header)[2]
        return sock.recv(length - 1, socket.MSG_WAITALL)


def write_payload(function_code: int, count: int) -> bytes:
    size = 2 * count if function_code == 16 else (count + 7) // 8
    return struct.pack(">B", size & 0xFF) + bytes(size)


@pytest.mark.parametrize("function_code", [1, 2, 3, 4])
def test_reads_over_the_limit_are_refused_with_illegal_data_value(server, function_code):
    limit = REQUEST_LIMITS[function_code]
    assert limit == (2000 if function_code <= 2 else 125)
    for count in (limit + 1, 2 * limit, 0):
        assert ask(server, function_code, 0, count) == bytes([function_code | 0x80, 3]), count
    within = ask(server, function_code, 0, min(limit, 16))
    assert within[0] == function_code  # a plain answer, not an exception


def test_a_read_of_exactly_125_registers_is_served(server):
    answer = ask(server, 4, 0, 125)
    assert answer[:2] == bytes([4, 250]) and len(answer) == 2 + 250


@pytest.mark.parametrize("function_code,limit", [(16, 123), (15, 1968)])
def test_writes_over_the_limit_are_refused(server, function_code, limit):
    assert REQUEST_LIMITS[function_code] == limit
    table_end = 16 if function_code == 15 else limit  # within the served table
    assert ask(server, function_code, 0, table_end, write_payload(function_code, table_end))[0] == function_code
    over = ask(server, function_code, 0, limit + 1, write_payload(function_code, limit + 1))
    assert over == bytes([function_code | 0x80, 3])


def test_the_bus_reads_and_writes_128_stations_within_the_limits(server):
    server.requests.clear()
    server.refused.clear()
    tag_map = replace(server.tag_map, timeout_s=5.0)  # the requests, not their speed (a loaded machine)
    with open_bus(tag_map, Owner.RTCORE) as bus:
        reads = bus.read([t.name for t in tag_map.tags])
        assert all(r.quality is Quality.GOOD for r in reads), [r.name for r in reads if r.quality is not Quality.GOOD]
        outputs = {"relief_first_kpa": (10.0,) * 256, "relief_second_kpa": (20.0,) * 256,
                   "coolant_flow_lpm": (3.0,) * 128, "discharge_permit": (True,) * 128}
        assert all(w.quality is Quality.GOOD for w in bus.write(outputs))
    assert not server.refused
    # 512 REAL markers alone are 1024 registers: at least 9 read requests of at most 125
    assert server.requests[4] >= 9 and server.requests[16] >= 5 and server.requests[15] >= 1


def test_the_server_thread_can_answer_at_sched_fifo():
    import os

    with ModbusPlcServer(bench_map("modbus", 8)) as served:
        granted = served.serve_realtime(10)
        thread = served._loop._thread.native_id
        assert granted == (os.sched_getscheduler(thread) == os.SCHED_FIFO)
        assert os.sched_getscheduler(0) != os.SCHED_FIFO  # the caller's thread is left as it was
        if granted:
            assert os.sched_getparam(thread).sched_priority == 10
        with open_bus(served.tag_map, Owner.RTCORE) as bus:
            assert bus.read(["plc_heartbeat"])[0].quality is Quality.GOOD
