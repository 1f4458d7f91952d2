"""The real-time loop's line-wide faults, its lifecycle and its bus misses, over the compiled kernel
and the twin.

Each fault is driven through the in-memory PLC and must show the map's safe outputs in the tick
that confirms it, with the heartbeat still counting; only an arm (reset) leaves the safe state.
Per-station isolation: test_loop_station.py.
"""

from __future__ import annotations

import threading
import uuid

import pytest

import rtcore
from edge import REPO_ROOT
from edge.bus import Backoff, BusTimeout, MemoryPlc, open_bus
from edge.rtloop.link import RtSide, SupervisorSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_fixture, build_kernel, run_rtcore
from edge.tagmap import Owner, load_tag_map
from rtcore import twin
from rtcore.spec import Flag, Setpoints

pytestmark = pytest.mark.unit

HIL_MAP = load_tag_map(REPO_ROOT / "plc_tags" / "hil_logix.yaml")  # REAL temperatures: NaN can reach the loop
SAFE = {t.name: t.safe_value for t in HIL_MAP.outputs(Owner.RTCORE)}
N_MARKERS = HIL_MAP.tag("marker_temp_degc").count
N_ZONES = HIL_MAP.tag("zone_pressure_kpa").count
N_STATIONS = HIL_MAP.tag("discharge_permit").count
KERNELS = {"twin": twin.Kernel}
if rtcore.COMPILED:
    KERNELS["compiled"] = rtcore.impl.Kernel


class FlakyBus:
    """The memory bus, but the next `fail_reads` reads / `fail_writes` writes raise BusTimeout."""

    def __init__(self, bus):
        self._bus = bus
        self.fail_reads = 0
        self.fail_writes = 0

    def read(self, *args, **kwargs):
        if self.fail_reads:
            self.fail_reads -= 1
            raise BusTimeout("simulated: no answer within 0.040 s")
        return self._bus.read(*args, **kwargs)

    def write(self, *args, **kwargs):
        if self.fail_writes:
            self.fail_writes -= 1
            raise BusTimeout("simulated: no answer within 0.040 s")
        return self._bus.write(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._bus, name)


@pytest.fixture(params=sorted(KERNELS))
def bench(request):
    plc = MemoryPlc(HIL_MAP)
    plc.set("marker_temp_degc", (25.0,) * N_MARKERS)
    plc.set("zone_pressure_kpa", (120.0,) * N_ZONES)
    bus = FlakyBus(open_bus(HIL_MAP, Owner.RTCORE, plc=plc, backoff=Backoff(initial_s=0.0, cap_s=0.0)))

    def make(settings=LoopSettings(), link=None, arm=True, **config):
        kernel = build_kernel(HIL_MAP, LoopTags(), 0.1, kernel_class=KERNELS[request.param], **config)
        loop = RtLoop(bus, kernel, settings=settings, link=link)
        if arm:
            loop.arm("test")
        return loop

    yield plc, make
    bus.close()


def beat_plc(plc):
    plc.set("plc_heartbeat", plc.get("plc_heartbeat") + 1)


def same(got, want) -> bool:
    """Booleans exactly, numbers to float precision, element by element."""
    if isinstance(want, tuple):
        return isinstance(got, tuple) and len(got) == len(want) and all(map(same, got, want))
    return got is want if isinstance(want, bool) else got == pytest.approx(want)


def assert_safe_outputs(plc, heartbeat):
    for name, value in SAFE.items():
        if name != "rtcore_heartbeat":
            assert same(plc.get(name), value), (name, plc.get(name), value)
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
    assert plc.get("discharge_permit") == (True,) * N_STATIONS and plc.get("safe_state") is False
    assert plc.get("station_safe_state") == (False,) * N_STATIONS
    assert plc.get("relief_first_kpa") == pytest.approx((0.0,) * N_ZONES)
    assert plc.get("current_limit_pct") == pytest.approx((HIL_MAP.tag("current_limit_pct").limits.max,) * N_STATIONS)
    assert plc.get("rtcore_heartbeat") == 4


def test_not_armed_at_start_writes_safe_values_until_a_reset_arrives(bench):
    plc, make = bench
    name = f"discharge-edge-test-{uuid.uuid4().hex[:8]}"
    rt_side = RtSide(name)
    supervisor = SupervisorSide(name)
    try:
        loop = make(link=rt_side, arm=False)
        run_ticks(plc, loop, 5)
        assert not loop.armed and not loop.kernel.safe_state  # nothing latched: just not armed
        assert_safe_outputs(plc, heartbeat=4)
        assert loop.status().armed is False
        supervisor.request_reset()
        run_ticks(plc, loop, 1)
        assert loop.armed and loop.status().armed is True
        assert plc.get("discharge_permit") == (True,) * N_STATIONS and plc.get("safe_state") is False
    finally:
        supervisor.close()
        rt_side.close()


def test_arming_clears_a_latch(bench):
    plc, make = bench
    loop = make(settings=LoopSettings(overrun_streak_limit=1))
    run_ticks(plc, loop, 1)
    loop.note_overrun(True)
    run_ticks(plc, loop, 2)
    assert loop.kernel.safe_state
    assert_safe_outputs(plc, heartbeat=2)
    loop.arm("test")
    run_ticks(plc, loop, 1)
    assert not loop.kernel.safe_state and plc.get("discharge_permit") == (True,) * N_STATIONS


def test_misses_under_the_blind_time_skip_the_tick_keep_the_outputs_and_are_counted(bench):
    plc, make = bench
    loop = make()
    assert loop.settings.blind_ticks() == 3  # 0.25 s at 100 ms: the third miss in a row latches
    run_ticks(plc, loop, 3)
    kernel_ticks = loop.kernel.tick_count
    for round_ in range(3):  # two misses, then an answer: never three in a row
        loop.bus.fail_reads = 2
        run_ticks(plc, loop, 2)
        assert loop.miss_streak == 2
        assert plc.get("rtcore_heartbeat") == loop.tick_count - 1  # outputs rewritten, fresh heartbeat
        assert plc.get("discharge_permit") == (True,) * N_STATIONS
        run_ticks(plc, loop, 1)
        assert loop.miss_streak == 0
    assert not loop.kernel.safe_state
    assert loop.bus_misses == 6 and loop.status().bus_misses == 6
    assert loop.stats.summary()["bus_miss_streak_max"] == 2
    assert loop.kernel.tick_count == kernel_ticks + 3  # the missed ticks never reached the kernel
    assert not loop.kernel.flags & (Flag.SENSOR_SUSPECT | Flag.SENSOR_NONFINITE)  # no NaN was fed


def test_a_write_miss_counts_like_a_read_miss(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 2)
    loop.bus.fail_writes = 1
    run_ticks(plc, loop, 1)
    assert loop.bus_misses == 1 and not loop.kernel.safe_state
    run_ticks(plc, loop, 1)
    assert loop.miss_streak == 0 and plc.get("rtcore_heartbeat") == 3


def test_an_outage_longer_than_the_blind_time_latches_link_lost_until_armed(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 3)
    plc.online = False
    plc.restart()
    run_ticks(plc, loop, 2)
    assert not loop.kernel.safe_state  # 0.2 s: still blind, not lost
    run_ticks(plc, loop, 1)
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.LINK_LOST
    assert loop.link_lost_latches == 1 and loop.bus_misses == 3
    plc.online = True
    run_ticks(plc, loop, 1)
    assert_safe_outputs(plc, heartbeat=6)
    run_ticks(plc, loop, 3)
    assert loop.kernel.safe_state  # latched: the link came back, the safe state stays
    loop.arm("test")
    run_ticks(plc, loop, 1)
    assert not loop.kernel.safe_state and plc.get("discharge_permit") == (True,) * N_STATIONS


def test_link_blind_time_zero_latches_at_the_first_miss(bench):
    plc, make = bench
    loop = make(settings=LoopSettings(link_blind_s=0.0))
    run_ticks(plc, loop, 1)
    loop.bus.fail_reads = 1
    run_ticks(plc, loop, 1)
    assert loop.kernel.safe_cause & Flag.LINK_LOST


def test_request_timeouts_come_from_the_period(bench):
    plc, make = bench
    assert LoopSettings(period_s=0.1).request_timeout_s(HIL_MAP) == pytest.approx(min(0.04, HIL_MAP.timeout_s))
    assert LoopSettings(period_s=10.0).request_timeout_s(HIL_MAP) == HIL_MAP.timeout_s  # never above the map's
    loop = make(settings=LoopSettings(period_s=0.05))  # 20 ms a call
    run_ticks(plc, loop, 1)
    plc.delay_s = 0.03  # inside the map's timeout, outside the loop's share of a 50 ms period
    run_ticks(plc, loop, 1)
    plc.delay_s = 0.0
    assert loop.bus_misses == 1


def test_frozen_plc_heartbeat_is_a_line_fault_at_once(bench):
    plc, make = bench
    loop = make(settings=LoopSettings(plc_heartbeat_stale_ticks=5))
    run_ticks(plc, loop, 3)
    for _ in range(5):
        loop.step()  # the PLC's counter does not move
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.LINK_LOST
    assert loop.bus_misses == 0  # not a miss: the PLC answered, its program is stopped


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


def test_write_safe_values_writes_every_output_safe_with_one_more_heartbeat(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 4)
    assert plc.get("discharge_permit") == (True,) * N_STATIONS
    assert loop.write_safe_values() is True
    assert_safe_outputs(plc, heartbeat=4)
    assert plc.get("discharge_permit") == (False,) * N_STATIONS
    assert plc.get("current_limit_pct") == pytest.approx((0.0,) * N_STATIONS)


def test_supervisor_link_carries_setpoints_reset_and_status(bench):
    plc, make = bench
    name = f"discharge-edge-test-{uuid.uuid4().hex[:8]}"
    rt_side = RtSide(name)
    supervisor = SupervisorSide(name)
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
        assert status.n_stations == N_STATIONS and status.station_permit == (True,) * N_STATIONS
        supervisor.request_reset()
        run_ticks(plc, loop, 1)
        assert not loop.kernel.safe_state and loop.resets_done == 2  # the test's arm, then this one
    finally:
        supervisor.close()
        rt_side.close()


def test_run_paces_ticks_on_the_clock_and_leaves_safe_values_when_it_stops(bench):
    plc, make = bench
    name = f"discharge-edge-test-{uuid.uuid4().hex[:8]}"
    rt_side = RtSide(name)
    supervisor = SupervisorSide(name)
    supervisor.request_reset()  # armed at its first tick
    stop = threading.Event()
    seen = []

    def watch():  # stop the loop from outside, as SIGTERM does, once it has permitted discharge
        while not stop.is_set():
            seen.append(plc.get("discharge_permit"))
            if seen[-1] == (True,) * N_STATIONS:
                stop.set()
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        summary = run_rtcore(open_bus(HIL_MAP, Owner.RTCORE, plc=plc), link=rt_side, duration_s=5.0, stop=stop,
                             settings=LoopSettings(plc_heartbeat_stale_ticks=0, realtime_priority=0))
    finally:
        stop.set()
        watcher.join()
        supervisor.close()
    assert (True,) * N_STATIONS in seen and 1 <= summary["ticks"] < 50 and summary["lateness_p99_ns"] >= 0
    assert summary["safe_values_written"] and not summary["safe_state"]
    assert plc.get("discharge_permit") == (False,) * N_STATIONS and plc.get("safe_state") is True
    assert plc.get("rtcore_heartbeat") == summary["ticks"]  # one more beat after the last tick


def test_fixture_layout_from_the_map():
    fixture = build_fixture(32, 16, 8)
    assert fixture.marker_zone.tolist() == [i // 2 for i in range(32)]
    assert fixture.zone_station.tolist() == [z // 2 for z in range(16)]
    x = fixture.marker_xy_mm[:, 0]
    assert x[4] - x[3] > x[3] - x[2]  # stations lie apart; a station's markers along its module
    assert build_fixture(32, 8).zone_station.tolist() == list(range(8))  # one zone a station: as before
    with pytest.raises(ValueError, match="do not split evenly over 16 zones"):
        build_fixture(30, 16, 8)
    with pytest.raises(ValueError, match="16 zones do not split evenly over 3 stations"):
        build_fixture(48, 16, 3)


def test_a_tick_uses_the_plans_built_at_start_and_fills_its_buffers_in_place(bench):
    from edge.bus.base import ReadPlan, WritePlan

    plc, make = bench
    loop = make()
    seen = []
    real_read, real_write = loop.bus._bus.read, loop.bus._bus.write
    loop.bus._bus.read = lambda names, **kw: seen.append(names) or real_read(names, **kw)
    loop.bus._bus.write = lambda values, **kw: seen.append(values) or real_write(values, **kw)
    run_ticks(plc, loop, 3)
    first = loop.compose_outputs()
    run_ticks(plc, loop, 2)
    second = loop.compose_outputs()
    assert [type(x) for x in seen] == [ReadPlan, WritePlan] * 5
    assert len({id(x) for x in seen[0::2]}) == 1 and len({id(x) for x in seen[1::2]}) == 1  # one plan each
    for name in ("relief_first_kpa", "coolant_flow_lpm", "current_limit_pct", "discharge_permit"):
        assert second[name] is first[name], name  # the same buffer, refilled
    assert plc.get("discharge_permit") == (True,) * N_STATIONS
    assert plc.get("current_limit_pct") == pytest.approx(tuple(second["current_limit_pct"]))


def test_status_as_arrays_carries_what_the_tuples_say(bench):
    plc, make = bench
    loop = make()
    run_ticks(plc, loop, 3)
    loop.kernel.isolate_station(2, int(Flag.SENSOR_STUCK), 9)
    run_ticks(plc, loop, 1)
    tuples, arrays = loop.status(), loop.status(arrays=True)
    for name in ("station_cause", "station_fault_marker", "station_hot_degc", "station_current_limit_frac",
                 "station_coolant_lpm", "station_relief_max_kpa", "station_permit"):
        assert tuple(getattr(arrays, name).tolist()) == pytest.approx(getattr(tuples, name)), name
    assert tuples.station_permit == tuple(s != 2 for s in range(N_STATIONS))
    assert tuples.station_cause[2] == int(Flag.SENSOR_STUCK) and tuples.lateness_p99_ns == 0
