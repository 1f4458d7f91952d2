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
