"""The real-time loop's faults and safe state, over the compiled kernel and the twin.

Each fault is driven through the in-memory PLC and must show the map's safe outputs in the tick
that confirms it, with the heartbeat still counting; only a reset leaves the safe state.
"""

from __future__ import annotations

import math

import pytest

import rtcore
from edge import REPO_ROOT
from edge.bus import MemoryPlc, open_bus
from edge.rtloop.link import RtSide, SupervisorSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_fixture, build_kernel, run_rtcore
from edge.tagmap import Owner, load_tag_map
from rtcore import twin
from rtcore.spec import Flag, Setpoints

HIL_MAP = load_tag_map(REPO_ROOT / "plc_tags" / "hil_logix.yaml")  # REAL temperatures: NaN can reach the loop
SAFE = {t.name: t.safe_value for t in HIL_MAP.outputs(Owner.RTCORE)}
KERNELS = {"twin": twin.Kernel}
if rtcore.COMPILED:
    KERNELS["compiled"] = rtcore.impl.Kernel


@pytest.fixture(params=sorted(KERNELS))
def bench(request):
    plc = MemoryPlc(HIL_MAP)
    plc.set("marker_temp_degc", (25.0,) * 32)
    plc.set("zone_pressure_kpa", (120.0,) * 8)
    bus = open_bus(HIL_MAP, Owner.RTCORE, plc=plc)

    def make(settings=LoopSettings(), link=None, **config):
        kernel = build_kernel(HIL_MAP, LoopTags(), 0.1, kernel_class=KERNELS[request.param], **config)
        return RtLoop(bus, kernel, settings=settings, link=link)

    yield plc, make
    bus.close()


def beat_plc(plc):
    plc.set("plc_heartbeat", plc.get("plc_heartbeat") + 1)


def assert_safe_outputs(plc, heartbeat):
    for name, value in SAFE.items():
        if name in ("rtcore_heartbeat", "safe_state"):
            continue
        got = plc.get(name)
        assert got == (pytest.approx(value) if not isinstance(value, bool) else value), name
    assert plc.get("safe_state") is True
    assert plc.get("rtcore_heartbeat") == heartbeat  # the heartbeat keeps counting


def run_ticks(plc, loop, n):
    for _ in range(n):
        beat_plc(plc)
        loop.step()


def test_normal_ticks_permit_discharge_and_count(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 5)
    assert plc.get("discharge_permit") is True and plc.get("safe_state") is False
    assert plc.get("relief_first_kpa") == pytest.approx((0.0,) * 8)
    assert plc.get("rtcore_heartbeat") == 4


def test_link_lost_goes_safe_in_the_same_tick_and_stays_until_reset(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 3)
    plc.online = False
    plc.restart()
    loop.step()  # read fails: the outputs cannot be written either
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.LINK_LOST
    plc.online = True
    loop.bus._backoff.next_attempt_s = 0.0  # do not wait for the backoff in a unit test
    run_ticks(plc, loop, 1)
    assert_safe_outputs(plc, heartbeat=4)
    run_ticks(plc, loop, 3)
    assert loop.kernel.safe_state  # latched: the link came back, the safe state stays
    loop.kernel.reset()
    run_ticks(plc, loop, 1)
    assert not loop.kernel.safe_state and plc.get("discharge_permit") is True


def test_nan_sensor_goes_safe_when_its_debounce_confirms_it(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 3)
    temps = [25.0] * 32
    temps[9] = math.nan
    plc.set("marker_temp_degc", temps)
    debounce = loop.kernel.config.nonfinite_debounce_ticks
    run_ticks(plc, loop, debounce - 1)
    assert not loop.kernel.safe_state
    run_ticks(plc, loop, 1)
    assert loop.kernel.safe_state and loop.kernel.fault_marker == 9
    assert loop.kernel.safe_cause & Flag.SENSOR_NONFINITE
    assert_safe_outputs(plc, heartbeat=3 + debounce - 1)


def test_bad_quality_temperature_read_counts_as_nan(bench):
    plc, make = bench
    loop = make()
    plc.device_errors.add("marker_temp_degc")
    run_ticks(plc, loop, loop.kernel.config.nonfinite_debounce_ticks)
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.SENSOR_NONFINITE


def test_stuck_sensor_goes_safe(bench):
    plc, make = bench
    loop = make(stuck_debounce_ticks=20)
    for tick in range(40):  # every marker moves a little, as real readings do, but marker 4
        plc.set("marker_temp_degc", tuple(25.0 + (0.1 if (tick + i) % 2 else 0.0) if i != 4 else 26.0 for i in range(32)))
        run_ticks(plc, loop, 1)
        if loop.kernel.safe_state:
            break
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.SENSOR_STUCK
    assert loop.kernel.fault_marker == 4
    assert_safe_outputs(plc, heartbeat=loop.tick_count - 1)


def test_dtdt_alarm_goes_safe_after_three_seconds(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 20)
    temps = [25.0] * 32
    ticks = 0
    while not loop.kernel.safe_state and ticks < 80:
        temps[17] += 0.15  # 1.5 degC/s at 100 ms
        plc.set("marker_temp_degc", temps)
        run_ticks(plc, loop, 1)
        ticks += 1
    assert loop.kernel.safe_cause & Flag.DTDT_ALARM
    assert 30 <= ticks <= 45  # more than 3 s at >= 1 degC/s, measured over a 1 s window
    assert_safe_outputs(plc, heartbeat=loop.tick_count - 1)


def test_relief_and_coolant_answer_a_hot_spot_before_any_alarm(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 30)
    temps = [25.0] * 32
    for _ in range(25):
        temps[6] += 0.1  # 1 degC/s on station 1 (markers 4..7)
        plc.set("marker_temp_degc", temps)
        run_ticks(plc, loop, 1)
    relief = plc.get("relief_first_kpa")
    coolant = plc.get("coolant_flow_lpm")
    assert not loop.kernel.safe_state
    assert relief[1] > 0 and coolant[1] > 0
    assert all(relief[z] == 0 and coolant[z] == 0 for z in range(8) if z != 1)


def test_overrun_streak_goes_safe(bench):
    plc, make = bench
    loop = make(settings=LoopSettings(overrun_streak_limit=3))
    run_ticks(plc, loop, 2)
    loop.note_overrun(True)
    loop.note_overrun(True)
    assert not loop.kernel.safe_state
    loop.note_overrun(True)
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.OVERRUN_STREAK
    run_ticks(plc, loop, 1)
    assert_safe_outputs(plc, heartbeat=2)


class ExplodingTick:
    """The real kernel, but its tick raises (as a bug or a bad input would)."""

    def __init__(self, kernel):
        self._kernel = kernel

    def tick(self, *_):
        raise FloatingPointError("simulated")

    def __getattr__(self, name):
        return getattr(self._kernel, name)


def test_an_exception_in_the_tick_goes_safe_and_the_loop_goes_on(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 2)
    loop.kernel = ExplodingTick(loop.kernel)
    run_ticks(plc, loop, 1)
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.EXCEPTION
    assert_safe_outputs(plc, heartbeat=2)
    run_ticks(plc, loop, 2)
    assert plc.get("rtcore_heartbeat") == 4  # the loop goes on


def test_frozen_plc_heartbeat_is_a_lost_link(bench):
    plc, make = bench
    loop = make(settings=LoopSettings(plc_heartbeat_stale_ticks=5))
    run_ticks(plc, loop, 3)
    for _ in range(5):
        loop.step()  # the PLC's counter does not move
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.LINK_LOST


def test_supervisor_link_carries_setpoints_reset_and_status(bench):
    plc, make = bench
    rt_side = RtSide("discharge-edge-test-link")
    supervisor = SupervisorSide("discharge-edge-test-link")
    try:
        loop = make(link=rt_side)
        supervisor.send_setpoints(Setpoints(delta_t_threshold_degc=4.0))
        run_ticks(plc, loop, 1)
        assert loop.kernel.setpoints.delta_t_threshold_degc == 4.0
        supervisor.send_setpoints(Setpoints(delta_t_threshold_degc=-1.0))  # invalid: refused
        run_ticks(plc, loop, 1)
        assert loop.kernel.setpoints.delta_t_threshold_degc == 4.0 and loop.setpoints_rejected == 1
        loop.note_overrun(True), loop.note_overrun(True), loop.note_overrun(True)
        rt_side.write_status(loop.status())
        status = supervisor.read_status()
        assert status.safe_state and status.safe_cause & Flag.OVERRUN_STREAK and status.tick_count == 2
        supervisor.request_reset()
        run_ticks(plc, loop, 1)
        assert not loop.kernel.safe_state and loop.resets_done == 1
    finally:
        supervisor.close()
        rt_side.close()


def test_run_paces_ticks_on_the_clock(bench):
    plc, make = bench
    summary = run_rtcore(open_bus(HIL_MAP, Owner.RTCORE, plc=plc), duration_s=0.5,
                         settings=LoopSettings(plc_heartbeat_stale_ticks=0, realtime_priority=0))
    assert summary["ticks"] == 5 and summary["lateness_p99_ns"] >= 0 and not summary["safe_state"]


def test_fixture_layout_from_the_map():
    fixture = build_fixture(32, 8)
    assert fixture.marker_zone.tolist() == [i // 4 for i in range(32)]
    with pytest.raises(ValueError, match="do not split evenly"):
        build_fixture(30, 8)
