"""Request planning within the protocols' limits, and round trips at 128 stations on both.

Golden plans for Modbus (merges across holes up to MERGE_GAP, splits at 125 read / 123 write
registers and 2000 / 1968 bits, never through a REAL); then the HIL bench map resized to 128
stations x 4 markers (resize.py) served over Modbus TCP and EtherNet/IP: what is written and
set comes back equal. The Logix bench is also run with a 500-byte connection (no Large Forward
Open), where every large tag goes in fragments and small ones in multiple-service packets.
"""

from __future__ import annotations


from dataclasses import replace

import pytest

from edge.bus import Quality, open_bus
from edge.bus.modbus import MERGE_GAP, _plan, plan_reads, plan_writes
from edge.tagmap import Access, ByteOrder, DataType, ModbusAddress, ModbusTable, Owner, Scaling, Tag

from .resize import bench_map

STATIONS = 128


def tag(name, table, address, data_type="REAL", count=1, byte_order=ByteOrder.ABCD):
    return Tag(name, ModbusAddress(ModbusTable(table), address), DataType(data_type), count, Access.WRITE,
               Owner.RTCORE, "", Scaling(), None, byte_order, None, "fast")


def spans(requests):
    return [(r.table.value, r.start, r.count, tuple(t.name for t in r.tags)) for r in requests]


@pytest.mark.unit
def test_neighbours_merge_across_a_hole_up_to_the_gap_bound():
    a = tag("a", "holding_register", 0, count=4)  # 0..7
    b = tag("b", "holding_register", 8 + MERGE_GAP, "INT")  # hole of exactly MERGE_GAP: merged
    c = tag("c", "holding_register", 8 + MERGE_GAP + 1 + MERGE_GAP + 1, "DINT")  # one more: a new request
    assert spans(plan_reads([c, a, b])) == [
        ("holding_register", 0, 17, ("a", "b")),
        ("holding_register", 26, 2, ("c",)),
    ]
    # writes never cover a hole; adjacent tags share a request
    d = tag("d", "holding_register", 8, "INT")
    assert spans(plan_writes([a, b, d])) == [
        ("holding_register", 0, 9, ("a", "d")),
        ("holding_register", 16, 1, ("b",)),
    ]


@pytest.mark.unit
def test_tables_are_planned_apart():
    plan = plan_reads([tag("h", "holding_register", 0), tag("i", "input_register", 0),
                       tag("c", "coil", 0, "BOOL"), tag("d", "discrete_input", 2, "BOOL")])
    assert spans(plan) == [("coil", 0, 1, ("c",)), ("discrete_input", 2, 1, ("d",)),
                           ("holding_register", 0, 2, ("h",)), ("input_register", 0, 2, ("i",))]


@pytest.mark.unit
def test_large_tags_split_at_the_limits_on_value_boundaries():
    temps = tag("temps", "input_register", 0, count=512)  # 1024 registers
    assert [(r.start, r.count) for r in plan_reads([temps])] == [(i * 124, 124) for i in range(8)] + [(992, 32)]
    ints = tag("ints", "input_register", 0, "INT", count=512)
    assert [(r.start, r.count) for r in plan_reads([ints])] == [(0, 125), (125, 125), (250, 125), (375, 125), (500, 12)]
    relief = tag("relief", "holding_register", 0, count=128)  # 256 registers: 61 REALs a write
    assert [(r.start, r.count) for r in plan_writes([relief])] == [(0, 122), (122, 122), (244, 12)]
    words = tag("words", "holding_register", 0, "INT", count=256)
    assert [(r.start, r.count) for r in plan_writes([words])] == [(0, 123), (123, 123), (246, 10)]
    coils = tag("coils", "coil", 0, "BOOL", count=4500)
    assert [(r.start, r.count) for r in plan_reads([coils])] == [(0, 2000), (2000, 2000), (4000, 500)]
    assert [(r.start, r.count) for r in plan_writes([coils])] == [(0, 1968), (1968, 1968), (3936, 564)]
    inputs = tag("inputs", "discrete_input", 0, "BOOL", count=2000)
    assert [(r.start, r.count) for r in plan_reads([inputs])] == [(0, 2000)]


@pytest.mark.unit
def test_a_real_after_an_odd_start_never_straddles_two_requests():
    head = tag("head", "input_register", 0, "INT", count=3)  # 0..2: REALs then start at odd 3
    reals = tag("reals", "input_register", 3, count=100)  # 3..202
    plan = _plan([head, reals], 125, 2000, MERGE_GAP)
    assert [(r.start, r.count) for r in plan.requests] == [(0, 125), (125, 78)]
    # 61 REALs (122 registers) fit after the 3 INTs; the 62nd would straddle 125
    assert plan.pieces["reals"] == ((0, 3, 122), (1, 0, 78))
    assert plan.pieces["head"] == ((0, 0, 3),)
    assert (plan.requests[1].start - reals.address.address) % 2 == 0  # the cut is between two REALs


@pytest.mark.unit
def test_the_plan_is_built_once_per_tag_list():
    tag_map = bench_map("modbus", STATIONS)
    from edge.bus.modbus import ModbusBus

    bus = ModbusBus(tag_map, Owner.RTCORE)
    tags = list(tag_map.tags)
    assert bus._plan_for(bus._plans, tags, write=False) is bus._plan_for(bus._plans, tags, write=False)
    bus.close()


@pytest.mark.unit
@pytest.mark.parametrize("protocol", ["modbus", "modbus-int"])
def test_bench_map_at_128_stations_plans_within_limits(protocol):
    tag_map = bench_map(protocol, STATIONS)
    reads = plan_reads(list(tag_map.tags))
    writes = plan_writes([t for t in tag_map.tags if t.access is Access.WRITE])
    assert all(r.count <= (2000 if r.table.is_bits else 125) for r in reads)
    assert all(r.count <= (1968 if r.table.is_bits else 123) for r in writes)
    marker = tag_map.tag("marker_temp_degc")
    assert marker.count == 4 * STATIONS and tag_map.tag("discharge_permit").count == STATIONS


# -- round trips on the served bench ---------------------------------------------------------

def _server(protocol: str, **kwargs):
    tag_map = bench_map(protocol, STATIONS)
    if protocol == "logix":
        from tools.hil.server_logix import LogixPlcServer

        return LogixPlcServer(tag_map, **kwargs)
    from tools.hil.server_modbus import ModbusPlcServer

    return ModbusPlcServer(tag_map)


ROUND_TRIPS = [("modbus", {}), ("modbus-int", {}), ("logix", {}), ("logix", {"connection_size": 500})]


@pytest.mark.contract
@pytest.mark.parametrize("protocol,options", ROUND_TRIPS, ids=["modbus", "modbus-int", "logix", "logix-500"])
def test_round_trip_at_128_stations(protocol, options):
    with _server(protocol, **options) as server:
        # what arrives, not how fast: the bench map's 50 ms would fail a loaded machine's run
        tag_map = replace(server.tag_map, timeout_s=5.0)
        n = 4 * STATIONS
        temps = tuple(round(20.0 + 0.1 * (i % 1000), 1) for i in range(n))
        server.set("marker_temp_degc", temps)
        server.set("zone_pressure_kpa", tuple(float(i % 600) for i in range(2 * STATIONS)))
        server.set("plc_heartbeat", 77)
        rtcore = open_bus(tag_map, Owner.RTCORE)
        supervisor = open_bus(tag_map, Owner.SUPERVISOR)
        try:
            names = [t.name for t in tag_map.tags]
            results = {r.name: r for r in rtcore.read(names)}
            assert all(r.quality is Quality.GOOD for r in results.values()), \
                {n: (r.quality, r.detail) for n, r in results.items() if r.quality is not Quality.GOOD}
            assert results["marker_temp_degc"].value == pytest.approx(temps, abs=1e-4)
            assert len(results["zone_pressure_kpa"].value) == 2 * STATIONS
            assert results["plc_heartbeat"].value == 77

            outputs = {
                "relief_first_kpa": tuple(float(i % 400) for i in range(2 * STATIONS)),
                "relief_second_kpa": tuple(float((i * 7) % 400) + 0.5 for i in range(2 * STATIONS)),
                "coolant_flow_lpm": tuple((i % 20) * 1.0 for i in range(STATIONS)),
                "current_limit_pct": tuple(float(i % 100) for i in range(STATIONS)),
                "rtcore_heartbeat": 123456,
                "discharge_permit": tuple(i % 3 == 0 for i in range(STATIONS)),
                "station_safe_state": tuple(i % 5 == 0 for i in range(STATIONS)),
                "safe_state": True,
            }
            written = rtcore.write(outputs)
            assert [w.quality for w in written] == [Quality.GOOD] * len(outputs), written
            setpoints = {"discharge_current_setpoint_a": tuple(float(i % 15) for i in range(STATIONS))}
            assert supervisor.write(setpoints)[0].quality is Quality.GOOD
            back = {r.name: r.value for r in rtcore.read(list(outputs) + list(setpoints))}
            for name, value in {**outputs, **setpoints}.items():
                assert back[name] == pytest.approx(value), name
                assert server.get(name) == pytest.approx(value), name
        finally:
            rtcore.close()
            supervisor.close()


@pytest.mark.contract
@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_prepared_plans_are_built_once_and_serve_every_call(monkeypatch, protocol):
    import edge.bus.logix as logix
    import edge.bus.modbus as modbus

    with _server(protocol) as server:
        tag_map = server.tag_map
        bus = open_bus(tag_map, Owner.RTCORE)
        try:
            reads = bus.plan_read([t.name for t in tag_map.tags])
            outputs = tag_map.outputs(Owner.RTCORE)
            writes = bus.plan_write([t.name for t in outputs])
            writes.values[:] = [t.safe_value for t in outputs]
            planned = []
            real_plan, real_path = modbus._plan, logix._request_path
            monkeypatch.setattr(modbus, "_plan", lambda *a: planned.append(a) or real_plan(*a))
            monkeypatch.setattr(logix, "_request_path", lambda t: planned.append(t) or real_path(t))
            for beat in range(3):
                writes.values[writes.index["rtcore_heartbeat"]] = beat
                assert all(r.quality is Quality.GOOD for r in bus.write(writes))
                values = bus.read(reads)
                assert all(v.quality is Quality.GOOD for v in values)
                assert values[reads.names.index("rtcore_heartbeat")].value == beat
            assert planned == []
        finally:
            bus.close()
