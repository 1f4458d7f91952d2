"""The tag-bus contract, run against every backend: memory, Modbus TCP and EtherNet/IP on 127.0.0.1.

Failure cases included: the server gone mid-session, restarted, slow; writes outside limits,
by the wrong owner, to a read tag, to an unknown tag. Harnesses: conftest.py beside this file.
"""

from __future__ import annotations

import math
import time

import pytest

from edge.bus import BusError, BusTimeout, ConnectionLost, Quality
from edge.tagmap import Owner

pytestmark = pytest.mark.contract

TEMPS = tuple(20.0 + 0.25 * i for i in range(64))


def read_until_good(bus, names, within_s=5.0):
    """Read until the bus answers (reconnecting with its backoff); the answers, and how many failures."""
    failures = 0
    deadline = time.monotonic() + within_s
    while True:
        try:
            return bus.read(names), failures
        except BusError:
            failures += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_read_returns_one_result_per_name_in_order(plc):
    plc.set("temps_degc", TEMPS)
    plc.set("counter", 123456)
    plc.set("level_pct", 42.5)
    plc.set("door_closed", True)
    bus = plc.open_bus()
    before = time.time_ns()
    results = bus.read(["counter", "temps_degc", "door_closed", "level_pct"])
    assert [r.name for r in results] == ["counter", "temps_degc", "door_closed", "level_pct"]
    assert all(r.quality is Quality.GOOD for r in results), results
    assert all(r.timestamp_ns >= before for r in results)
    counter, temps, door, level = (r.value for r in results)
    assert counter == 123456 and isinstance(counter, int)
    assert temps == pytest.approx(TEMPS)
    assert door is True
    assert level == pytest.approx(42.5)


def test_a_single_name_still_reads_as_a_list(plc):
    plc.set("counter", 7)
    results = plc.open_bus().read("counter")
    assert isinstance(results, list) and results[0].value == 7


def test_write_reaches_the_plc_and_reads_back(plc):
    bus = plc.open_bus()
    relief = tuple(float(i * 10) for i in range(8))
    results = bus.write({"relief_pct": relief, "heartbeat": 99, "valve_pct": 37.25, "permit": True})
    assert [r.quality for r in results] == [Quality.GOOD] * 4, results
    assert plc.get("relief_pct") == pytest.approx(relief)
    assert plc.get("heartbeat") == 99
    assert plc.get("valve_pct") == pytest.approx(37.25)  # 3725 counts at 0.01 % a count
    assert plc.get("permit") is True
    back = {r.name: r.value for r in bus.read(["relief_pct", "valve_pct", "permit"])}
    assert back["relief_pct"] == pytest.approx(relief) and back["permit"] is True


def test_unknown_tag_reads_bad_and_is_never_written(plc):
    plc.set("counter", 5)
    bus = plc.open_bus()
    results = bus.read(["counter", "no_such_tag"])
    assert results[0].quality is Quality.GOOD
    assert results[1].quality is Quality.BAD_UNKNOWN_TAG and results[1].value is None
    written = bus.write({"no_such_tag": 1.0})
    assert written[0].quality is Quality.BAD_UNKNOWN_TAG
    assert "nothing outside the map" in written[0].detail


@pytest.mark.parametrize("value", [100.5, -0.1, math.nan, math.inf, "ten", (1.0,) * 7])
def test_write_outside_limits_is_refused_and_nothing_changes(plc, value):
    bus = plc.open_bus()
    bus.write({"relief_pct": (5.0,) * 8})
    bad = value if isinstance(value, (str, tuple)) else (5.0,) * 7 + (value,)
    results = bus.write({"relief_pct": bad, "heartbeat": 3})
    assert results[0].quality is Quality.REFUSED_LIMITS
    assert results[1].quality is Quality.GOOD  # the valid write in the same call still goes out
    assert plc.get("relief_pct") == pytest.approx((5.0,) * 8)


def test_write_by_another_owner_or_to_a_read_tag_is_refused(plc):
    rtcore = plc.open_bus(Owner.RTCORE)
    supervisor = plc.open_bus(Owner.SUPERVISOR)
    assert rtcore.write({"current_setpoint_a": 2.0})[0].quality is Quality.REFUSED_OWNER
    assert supervisor.write({"relief_pct": (1.0,) * 8})[0].quality is Quality.REFUSED_OWNER
    assert rtcore.write({"counter": 1})[0].quality is Quality.REFUSED_ACCESS
    assert supervisor.write({"current_setpoint_a": 2.0})[0].quality is Quality.GOOD
    assert plc.get("current_setpoint_a") == pytest.approx(2.0)
    assert plc.get("relief_pct") == pytest.approx((0.0,) * 8)


def test_a_read_outside_limits_is_uncertain_not_dropped(plc):
    plc.set("temps_degc", (25.0,) * 63 + (180.0,))
    result = plc.open_bus().read(["temps_degc"])[0]
    assert result.quality is Quality.UNCERTAIN_LIMITS
    assert result.value[-1] == pytest.approx(180.0)


def test_safe_values_cover_every_output_of_the_owner(plc):
    bus = plc.open_bus(Owner.RTCORE)
    safe = bus.safe_values()
    assert safe == {"relief_pct": (100.0,) * 8, "heartbeat": 0, "valve_pct": 100.0, "permit": False}
    assert all(r.quality is Quality.GOOD for r in bus.write(safe))
    assert plc.get("permit") is False and plc.get("valve_pct") == pytest.approx(100.0)


def test_link_cut_mid_session_raises_then_recovers(plc):
    plc.set("counter", 1)
    bus = plc.open_bus()
    assert bus.read(["counter"])[0].value == 1
    plc.cut()
    with pytest.raises(BusError):
        bus.read(["counter"])
    assert not bus.connected
    with pytest.raises(ConnectionLost):  # still down: refused at once, the backoff holds
        bus.read(["counter"])
    plc.restore()
    plc.set("counter", 2)
    results, _ = read_until_good(bus, ["counter"])
    assert results[0].value == 2 and bus.connected


def test_server_restart_keeps_values_and_the_bus_reconnects(plc):
    plc.set("counter", 31)
    bus = plc.open_bus()
    assert bus.read(["counter"])[0].value == 31
    plc.stop_plc()
    with pytest.raises(BusError):
        bus.read(["counter"])
    plc.start_plc()
    results, failures = read_until_good(bus, ["counter"])
    assert results[0].value == 31


def test_slow_server_times_out_and_no_late_answer_is_taken(plc):
    plc.set("counter", 10)
    bus = plc.open_bus()
    assert bus.read(["counter"])[0].value == 10
    plc.delay_s = 3.0  # ten times the map's timeout
    started = time.monotonic()
    with pytest.raises(BusTimeout):
        bus.read(["counter"])
    # it gave up before the answer existed: no bound of its own, only the server's delay (10x)
    assert time.monotonic() - started < plc.delay_s
    plc.delay_s = 0.0
    plc.set("counter", 11)
    results, _ = read_until_good(bus, ["counter"], within_s=8.0)
    assert results[0].value == 11  # the late answer (10) was dropped with its connection


def test_a_closed_bus_refuses_calls(plc):
    bus = plc.open_bus()
    bus.close()
    with pytest.raises(ConnectionLost):
        bus.read(["counter"])
