"""The shared mechanics of the tag bus: backoff, scaling, the checks before a write."""

from __future__ import annotations

import math

import pytest

from edge.bus import Backoff, BusError, MemoryPlc, Quality, open_bus
from edge.bus.base import eu_to_raw, raw_to_eu
from edge.tagmap import Owner, load_tag_map

from .conftest import HERE

pytestmark = pytest.mark.unit

TAG_MAP = load_tag_map(HERE / "contract_modbus.yaml")


def test_backoff_doubles_to_its_cap_and_resets_on_success():
    backoff = Backoff(initial_s=0.1, cap_s=1.0)
    delays = []
    for _ in range(6):
        backoff.failed(now_s=100.0)
        delays.append(backoff.delay_s)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert not backoff.ready(100.5) and backoff.ready(101.0)
    backoff.succeeded()
    assert backoff.ready(0.0)
    backoff.failed(now_s=5.0)
    assert backoff.delay_s == 0.1


def test_reconnect_attempts_follow_the_backoff():
    plc = MemoryPlc(TAG_MAP)
    plc.online = False
    bus = open_bus(TAG_MAP, Owner.RTCORE, plc=plc, backoff=Backoff(initial_s=60.0, cap_s=60.0))
    with pytest.raises(BusError, match="memory PLC is offline"):
        bus.read(["counter"])
    plc.online = True
    with pytest.raises(BusError, match="next attempt in"):  # not retried before its time
        bus.read(["counter"])
    bus._backoff.next_attempt_s = 0.0
    assert bus.read(["counter"])[0].quality is Quality.GOOD


def test_scaling_both_ways_and_rounding_to_the_type():
    valve = TAG_MAP.tag("valve_pct")  # INT, 0.01 % a count
    assert eu_to_raw(valve, 37.254) == 3725
    assert raw_to_eu(valve, 3725) == (pytest.approx(37.25), Quality.GOOD)
    level = TAG_MAP.tag("level_pct")  # INT, 0.1 % a count, limits 0..100
    assert raw_to_eu(level, 1005)[1] is Quality.UNCERTAIN_LIMITS
    temps = TAG_MAP.tag("temps_degc")
    assert raw_to_eu(temps, (math.nan,) * 64)[1] is Quality.UNCERTAIN_LIMITS


@pytest.mark.parametrize("value,words", [(True, "not a finite number"), ((1.0, 2.0), "expected one value for a scalar tag"),
                                         (1e9, "outside limits")])
def test_eu_to_raw_refuses_what_the_tag_cannot_take(value, words):
    with pytest.raises(ValueError, match=words):
        eu_to_raw(TAG_MAP.tag("valve_pct"), value)


# -- arrays checked and scaled at once, the same as element by element -------------------------

def array_tag(data_type: str, count: int = 6, gain: float = 1.0, offset: float = 0.0, limits=(-50.0, 150.0)):
    from edge.tagmap import Access, ByteOrder, DataType, Limits, ModbusAddress, ModbusTable, Scaling, Tag

    return Tag(f"{data_type.lower()}_array", ModbusAddress(ModbusTable.HOLDING_REGISTER, 0), DataType(data_type),
               count, Access.WRITE, Owner.RTCORE, "degC", Scaling(gain, offset),
               None if limits is None else Limits(*limits), ByteOrder.ABCD, None, "fast")


ARRAYS = [
    (array_tag("REAL"), (1.5, -2.25, 0, 149.0, -50.0, 3)),
    (array_tag("REAL", gain=0.1, offset=-40.0), (-40.0, 0.05, 12.345, 100.0, 149.99, -39.95)),
    (array_tag("INT", gain=0.1), (1.25, 1.35, -0.05, 0.15, 149.0, -49.96)),  # halves round to even, as round()
    (array_tag("DINT", limits=None), (2_000_000_000, -7, 0, 1, 2, 3)),
    (array_tag("BOOL", limits=None), (True, False, 1, 0, True, True)),
]


@pytest.mark.parametrize("tag,value", ARRAYS, ids=[t.data_type.value + str(t.scaling.gain) for t, _ in ARRAYS])
def test_arrays_convert_as_the_element_path_does(tag, value):
    import numpy as np

    from edge.bus.base import _eu_to_raw_elements

    raw = eu_to_raw(tag, value)
    assert raw == _eu_to_raw_elements(tag, value)
    assert [type(v) for v in raw] == [type(v) for v in _eu_to_raw_elements(tag, value)]
    assert eu_to_raw(tag, np.asarray(value)) == raw  # a NumPy array is taken as well
    back, quality = raw_to_eu(tag, raw)  # and back, within the type's resolution
    assert back == pytest.approx(tuple(float(v) for v in value), abs=tag.scaling.gain / 2 + 1e-9)
    assert quality is Quality.GOOD


@pytest.mark.parametrize("value,words", [
    ((1.0, 2.0, True, 4.0, 5.0, 6.0), "True is not a finite number"),
    ((1.0, 2.0, math.nan, 4.0, 5.0, 6.0), "nan is not a finite number"),
    ((1.0, 2.0, 3.0, 151.0, 5.0, 6.0), "151.0 is outside limits -50.0..150.0 degC"),
    ((1.0, 2.0, 3.0, "4", 5.0, 6.0), "'4' is not a finite number"),
    ((1.0, 2.0), "expected 6 elements"),
])
def test_a_refused_array_names_the_element_at_fault(value, words):
    with pytest.raises(ValueError, match=words):
        eu_to_raw(array_tag("REAL"), value)


def test_an_int_array_out_of_its_type_and_a_bool_array_out_of_0_1_are_refused():
    with pytest.raises(ValueError, match="scales to 40000, outside INT"):
        eu_to_raw(array_tag("INT", gain=0.001, limits=None), (1.0, 40.0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="2 is not a BOOL"):
        eu_to_raw(array_tag("BOOL", limits=None), (1, 0, 2, 0, 1, 1))


def test_an_array_read_outside_its_limits_or_nan_is_uncertain():
    tag = array_tag("REAL")
    assert raw_to_eu(tag, (1.0, 2.0, 3.0, 4.0, 5.0, 160.0))[1] is Quality.UNCERTAIN_LIMITS
    assert raw_to_eu(tag, (1.0, 2.0, 3.0, 4.0, 5.0, math.nan))[1] is Quality.UNCERTAIN_LIMITS
    whole = array_tag("DINT", limits=None)
    assert raw_to_eu(whole, (1, 2, 3, 4, 5, 6)) == ((1, 2, 3, 4, 5, 6), Quality.GOOD)
    assert all(type(v) is int for v in raw_to_eu(whole, (1, 2, 3, 4, 5, 6))[0])


def test_a_write_converts_each_value_to_raw_once(monkeypatch):
    import edge.bus.base as base

    calls = []
    real = base.eu_to_raw
    monkeypatch.setattr(base, "eu_to_raw", lambda tag, value: calls.append(tag.name) or real(tag, value))
    plc = MemoryPlc(TAG_MAP)
    bus = open_bus(TAG_MAP, Owner.RTCORE, plc=plc)
    outputs = {t.name: t.safe_value for t in TAG_MAP.outputs(Owner.RTCORE)}
    assert all(r.quality is Quality.GOOD for r in bus.write(outputs))
    assert sorted(calls) == sorted(outputs)


def test_a_write_plan_is_filled_in_place_and_refusals_still_name_their_tag():
    plc = MemoryPlc(TAG_MAP)
    bus = open_bus(TAG_MAP, Owner.RTCORE, plc=plc)
    outputs = {t.name: t.safe_value for t in TAG_MAP.outputs(Owner.RTCORE)}
    plan = bus.plan_write(list(outputs))
    plan.values[:] = list(outputs.values())
    assert [r.quality for r in bus.write(plan)] == [Quality.GOOD] * len(outputs)
    name = next(t.name for t in TAG_MAP.outputs(Owner.RTCORE) if t.limits is not None and not t.is_array)
    plan.values[plan.index[name]] = 1e12
    results = {r.name: r for r in bus.write(plan)}
    assert results[name].quality is Quality.REFUSED_LIMITS and "outside limits" in results[name].detail
    assert all(r.quality is Quality.GOOD for n, r in results.items() if n != name)
    reads = bus.read(bus.plan_read([name, "no_such_tag"]))
    assert reads[0].value == outputs[name] and reads[1].quality is Quality.BAD_UNKNOWN_TAG
