"""The station as the unit of isolation, as the loop writes it to the PLC, over both kernels.

A station's own fault takes only that station's outputs safe (permit off, current limit 0, full
relief on its zones, full coolant) while the others carry on; latches are saved and logged as
events, survive a restart, and are cleared by an arm or a station reset. Also: the envelope's
current limit and the coolant per station, an older map with one permit for the line, and a map
whose counts do not nest.
"""

from __future__ import annotations

import json
import math
import uuid

import pytest

import rtcore
from edge import REPO_ROOT
from edge.bus import MemoryPlc, open_bus
from edge.rtloop.link import RtSide, SupervisorSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_kernel
from edge.rtloop.service import EventLog, Latches, LatchStore
from edge.tagmap import Owner, load_tag_map
from rtcore import twin
from rtcore.spec import Flag, Setpoints

pytestmark = pytest.mark.unit

MAP_PATH = REPO_ROOT / "plc_tags" / "hil_logix.yaml"  # REAL temperatures: NaN can reach the loop
HIL_MAP = load_tag_map(MAP_PATH)
N, Z, S = (HIL_MAP.tag(n).count for n in ("marker_temp_degc", "zone_pressure_kpa", "discharge_permit"))
MARKERS_PER_STATION, ZONES_PER_STATION = N // S, Z // S
PCT_MAX = HIL_MAP.tag("current_limit_pct").limits.max
BASE_LPM = 4.0
KERNELS = {"twin": twin.Kernel}
if rtcore.COMPILED:
    KERNELS["compiled"] = rtcore.impl.Kernel


@pytest.fixture(params=sorted(KERNELS))
def kernel_class(request):
    return KERNELS[request.param]


@pytest.fixture
def plc():
    plc = MemoryPlc(HIL_MAP)
    plc.set("marker_temp_degc", (25.0,) * N)
    plc.set("zone_pressure_kpa", (120.0,) * Z)
    plc.set("coolant_base_lpm", (BASE_LPM,) * S)
    return plc


def make_loop(plc, kernel_class, tag_map=HIL_MAP, arm=True, **kwargs):
    bus = open_bus(tag_map, Owner.RTCORE, plc=plc)
    loop = RtLoop(bus, build_kernel(tag_map, LoopTags(), 0.1, kernel_class=kernel_class), **kwargs)
    if arm:
        loop.arm("test")
    return loop


def tick(plc, loop, n=1):
    for _ in range(n):
        if plc.tag_map.tag("plc_heartbeat") is not None:
            plc.set("plc_heartbeat", plc.get("plc_heartbeat") + 1)
        loop.step()


def nan_on(marker: int, n: int = N) -> list[float]:
    temps = [25.0] * n
    temps[marker] = math.nan
    return temps


def zones_of(station: int) -> range:
    return range(station * ZONES_PER_STATION, (station + 1) * ZONES_PER_STATION)


def isolate_by_nan(plc, loop, marker: int) -> None:
    plc.set("marker_temp_degc", nan_on(marker))
    tick(plc, loop, loop.kernel.config.nonfinite_debounce_ticks)
    plc.set("marker_temp_degc", (25.0,) * N)  # the sensor is back: the latch stays


def test_a_sensor_fault_isolates_its_station_and_the_others_carry_on(plc, kernel_class, tmp_path):
    events = EventLog(tmp_path)
    loop = make_loop(plc, kernel_class, latches=LatchStore(tmp_path, "line"), events=events)
    tick(plc, loop, 5)
    marker = 9
    station = marker // MARKERS_PER_STATION
    isolate_by_nan(plc, loop, marker)
    tick(plc, loop, 3)
    assert not loop.kernel.safe_state  # the line runs
    assert plc.get("safe_state") is False
    assert plc.get("discharge_permit") == tuple(s != station for s in range(S))
    assert plc.get("station_safe_state") == tuple(s == station for s in range(S))
    limit = plc.get("current_limit_pct")
    assert limit[station] == 0.0 and all(limit[s] == pytest.approx(PCT_MAX) for s in range(S) if s != station)
    for name in ("relief_first_kpa", "relief_second_kpa"):
        relief = plc.get(name)
        assert all(relief[z] == 400.0 for z in zones_of(station)), name
        assert all(relief[z] == 0.0 for z in range(Z) if z not in zones_of(station)), name
    coolant = plc.get("coolant_flow_lpm")
    assert coolant[station] == 20.0 and all(coolant[s] == pytest.approx(BASE_LPM) for s in range(S) if s != station)
    status = loop.status()
    assert status.station_permit[station] is False and status.station_cause[station] & Flag.SENSOR_NONFINITE
    assert status.station_fault_marker[station] == marker
    # kept: the latch file and one event
    stored = LatchStore(tmp_path, "line").load()
    assert stored.line_cause == 0 and stored.stations[station][0] & Flag.SENSOR_NONFINITE
    assert stored.stations[station][1] == marker
    lines = [json.loads(x) for x in events.path.read_text().splitlines()]
    latches = [e for e in lines if e["kind"] == "latch"]
    assert len(latches) == 1 and latches[0]["station"] == station and latches[0]["marker"] == marker
    assert "SENSOR_NONFINITE" in latches[0]["cause"]


def test_over_temperature_isolates_the_hot_station_only(plc, kernel_class):
    loop = make_loop(plc, kernel_class)
    tick(plc, loop, 5)
    hot = 5
    temps = [25.0] * N
    temps[hot * MARKERS_PER_STATION + 1] = loop.kernel.setpoints.temp_limit_degc + 1.0
    plc.set("marker_temp_degc", temps)
    tick(plc, loop, loop.kernel.config.over_temp_debounce_ticks + 1)
    assert loop.kernel.station_cause[hot] & Flag.OVER_TEMP and not loop.kernel.safe_state
    assert plc.get("discharge_permit") == tuple(s != hot for s in range(S))
    assert plc.get("current_limit_pct")[hot] == 0.0


def test_the_current_limit_is_the_envelope_times_the_tags_full_scale(plc, kernel_class):
    loop = make_loop(plc, kernel_class)
    tick(plc, loop, 5)
    warm = 6
    sp = loop.kernel.setpoints
    temps = [25.0] * N
    mid = sp.warning_degc - sp.envelope_margin_degc / 2  # in the ramp below the warning
    for i in range(warm * MARKERS_PER_STATION, (warm + 1) * MARKERS_PER_STATION):
        temps[i] = mid
    plc.set("marker_temp_degc", temps)
    tick(plc, loop, 3)
    frac = float(loop.kernel.current_limit_frac[warm])
    limit = plc.get("current_limit_pct")
    assert sp.current_floor_frac < frac < 1.0
    assert limit[warm] == pytest.approx(frac * PCT_MAX, rel=1e-6)
    assert all(limit[s] == pytest.approx(PCT_MAX) for s in range(S) if s != warm)
    assert plc.get("discharge_permit") == (True,) * S  # derated, not isolated


def test_coolant_is_the_supervisors_base_plus_the_stations_relief_coolant(plc, kernel_class):
    loop = make_loop(plc, kernel_class)
    tick(plc, loop, 30)
    temps = [25.0] * N
    station = 1
    for _ in range(25):
        temps[station * MARKERS_PER_STATION + 2] += 0.1  # 1 degC/s on one marker of station 1
        plc.set("marker_temp_degc", temps)
        tick(plc, loop, 1)
    extra = [float(v) for v in loop.kernel.station_coolant_lpm]
    coolant = plc.get("coolant_flow_lpm")
    assert extra[station] > 0 and not loop.kernel.station_safe[station]
    assert coolant[station] == pytest.approx(min(BASE_LPM + extra[station], 20.0))
    assert all(coolant[s] == pytest.approx(BASE_LPM + extra[s]) for s in range(S) if s != station)
    relief = plc.get("relief_first_kpa")
    assert max(relief[z] for z in zones_of(station)) > 0
    assert all(relief[z] == 0 for z in range(Z) if z not in zones_of(station))


def test_latches_survive_a_restart_and_an_arm_clears_them(plc, kernel_class, tmp_path):
    store, events = LatchStore(tmp_path, "line"), EventLog(tmp_path)
    first = make_loop(plc, kernel_class, latches=store, events=events)
    tick(plc, first, 3)
    isolate_by_nan(plc, first, 13)
    station = 13 // MARKERS_PER_STATION
    assert first.kernel.station_safe[station]
    # a restart: a new kernel and loop on the same state directory, not armed
    second = make_loop(plc, kernel_class, arm=False, latches=store, events=events)
    assert second.kernel.station_safe[station] and second.kernel.station_cause[station] & Flag.SENSOR_NONFINITE
    assert second.kernel.station_fault_marker[station] == 13
    second.arm("operator")
    tick(plc, second, 1)
    assert not second.kernel.station_safe[station]
    assert plc.get("discharge_permit") == (True,) * S
    assert store.load() == Latches()
    kinds = [json.loads(x)["kind"] for x in events.path.read_text().splitlines()]
    assert kinds == ["arm", "latch", "arm", "clear"]


def test_a_stored_line_latch_is_restored(plc, kernel_class, tmp_path):
    store = LatchStore(tmp_path, "line")
    store.save(Latches(line_cause=int(Flag.LINK_LOST)))
    loop = make_loop(plc, kernel_class, arm=False, latches=store)
    assert loop.kernel.safe_state and loop.kernel.safe_cause & Flag.LINK_LOST
    tick(plc, loop, 1)
    assert plc.get("safe_state") is True and plc.get("discharge_permit") == (False,) * S


def test_a_station_reset_clears_that_station_only(plc, kernel_class):
    name = f"discharge-edge-test-{uuid.uuid4().hex[:8]}"
    rt_side = RtSide(name)
    supervisor = SupervisorSide(name)
    try:
        loop = make_loop(plc, kernel_class, link=rt_side)
        tick(plc, loop, 3)
        isolate_by_nan(plc, loop, 1)  # station 0
        isolate_by_nan(plc, loop, 4 * MARKERS_PER_STATION)  # station 4
        assert loop.kernel.station_safe[0] and loop.kernel.station_safe[4]
        supervisor.request_reset(station=4)
        tick(plc, loop, 1)
        assert loop.kernel.station_safe[0] and not loop.kernel.station_safe[4]
        assert plc.get("discharge_permit") == tuple(s != 0 for s in range(S))
        assert loop.station_resets_done == 1
    finally:
        supervisor.close()
        rt_side.close()


OLD_MAP = """
connection:
  name: old-line
  protocol: logix
  endpoint: {host: 127.0.0.1, port: 44818}
  timeout_s: 0.05
scan_groups:
  fast: 100
tags:
  - {name: marker_temp_degc, address: Temps, type: "REAL[8]", access: read, owner: rtcore, unit: degC,
     limits: {min: -40.0, max: 150.0}, scan_group: fast}
  - {name: zone_pressure_kpa, address: Press, type: "REAL[2]", access: read, owner: rtcore, unit: kPa,
     limits: {min: 0.0, max: 600.0}, scan_group: fast}
  - {name: relief_first_kpa, address: Relief1, type: "REAL[2]", access: write, owner: rtcore, unit: kPa,
     limits: {min: 0.0, max: 400.0}, safe_value: 400.0, scan_group: fast}
  - {name: relief_second_kpa, address: Relief2, type: "REAL[2]", access: write, owner: rtcore, unit: kPa,
     limits: {min: 0.0, max: 400.0}, safe_value: 400.0, scan_group: fast}
  - {name: coolant_flow_lpm, address: Coolant, type: "REAL[2]", access: write, owner: rtcore, unit: L/min,
     limits: {min: 0.0, max: 12.0}, safe_value: 12.0, scan_group: fast}
  - {name: rtcore_heartbeat, address: Beat, type: DINT, access: write, owner: rtcore, unit: "",
     limits: {min: 0, max: 2147483647}, safe_value: 0, scan_group: fast}
  - {name: discharge_permit, address: Permit, type: BOOL, access: write, owner: rtcore, unit: "",
     safe_value: false, scan_group: fast}
"""


def test_an_older_map_with_one_permit_for_the_line_still_runs(kernel_class, tmp_path):
    path = tmp_path / "old_line.yaml"
    path.write_text(OLD_MAP)
    tag_map = load_tag_map(path)
    plc = MemoryPlc(tag_map)
    plc.set("marker_temp_degc", (25.0,) * 8)
    plc.set("zone_pressure_kpa", (120.0,) * 2)
    loop = make_loop(plc, kernel_class, tag_map=tag_map, settings=LoopSettings(plc_heartbeat_stale_ticks=0))
    assert loop.n_stations == 2  # no per-station tag: one zone a station
    tick(plc, loop, 3)
    assert plc.get("discharge_permit") is True
    plc.set("marker_temp_degc", nan_on(6, 8))  # station 1
    tick(plc, loop, loop.kernel.config.nonfinite_debounce_ticks + 1)
    assert loop.kernel.station_safe[1] and not loop.kernel.safe_state
    assert plc.get("discharge_permit") is False  # one permit for every station: off while one is isolated
    assert plc.get("relief_first_kpa") == (0.0, 400.0)
    assert plc.get("coolant_flow_lpm") == (0.0, 12.0)


def test_a_map_whose_counts_do_not_nest_is_refused_naming_the_file(tmp_path):
    text = MAP_PATH.read_text()
    permit = text.index("name: discharge_permit")
    text = text[:permit] + text[permit:].replace("BOOL[8]", "BOOL[3]", 1)
    path = tmp_path / "three_stations.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"three_stations\.yaml: the per-station tags disagree.*discharge_permit 3"):
        build_kernel(load_tag_map(path), LoopTags(), 0.1)
    for name in ("current_limit_pct", "station_safe_state"):  # all three per-station tags at 3 stations
        at = text.index(f"name: {name}")
        text = text[:at] + text[at:].replace("[8]", "[3]", 1)
    path.write_text(text)
    with pytest.raises(ValueError, match=r"three_stations\.yaml.*16 zones do not split evenly over 3 stations"):
        build_kernel(load_tag_map(path), LoopTags(), 0.1)


def _place_warm_module(plc, loop, station: int, module_id: int | None) -> None:
    """The station's markers step from 25 to 35 °C (a warm module placed); the PLC says which."""
    temps = [25.0] * N
    for i in range(station * MARKERS_PER_STATION, (station + 1) * MARKERS_PER_STATION):
        temps[i] = 35.0 + 0.01 * i  # not all equal: nothing looks stuck
    plc.set("marker_temp_degc", temps)
    if module_id is not None:
        ids = list(plc.get("station_loaded_id"))
        ids[station] = module_id
        plc.set("station_loaded_id", ids)


@pytest.mark.parametrize("told", [True, False], ids=["loaded_id_changes", "loaded_id_unchanged"])
def test_a_new_module_restarts_its_stations_thermal_history(plc, kernel_class, told):
    plc.set("station_loaded_id", (-1,) * S)
    bus = open_bus(HIL_MAP, Owner.RTCORE, plc=plc)  # a tier whose held relief releases below 33 °C
    setpoints = Setpoints(relief_release_degc=33.0)
    loop = RtLoop(bus, build_kernel(HIL_MAP, LoopTags(), 0.1, setpoints, kernel_class=kernel_class))
    loop.arm("test")
    tick(plc, loop, 30)
    _place_warm_module(plc, loop, 3, 17 if told else None)
    tick(plc, loop, 60)
    relief = plc.get("relief_second_kpa")
    if told:  # the step is a new module, not heat: no relief, no isolation
        assert not loop.kernel.station_safe.any()
        assert all(relief[z] == 0.0 for z in range(Z))
    else:  # the same step with no word from the PLC reads as heat on station 3 only
        assert loop.kernel.station_safe[3] or all(relief[z] > 0.0 for z in zones_of(3))
    assert all(relief[z] == 0.0 for z in range(Z) if z not in zones_of(3))


@pytest.mark.parametrize("first", ["id", "temperatures"])
@pytest.mark.parametrize("ticks_apart", [1, 3])
def test_a_new_module_whose_id_and_temperatures_arrive_ticks_apart_opens_no_relief(plc, kernel_class, first,
                                                                                    ticks_apart):
    """The loaded id and the temperatures are separate requests: a tick may see one without the
    other (CI, stop 24: relief opened on a cold station and held it; its clamp never closed)."""
    plc.set("station_loaded_id", (-1,) * S)
    bus = open_bus(HIL_MAP, Owner.RTCORE, plc=plc)
    setpoints = Setpoints(relief_release_degc=33.0)  # held relief would release only below 33 °C
    settings = LoopSettings(module_settle_s=0.5)  # 5 ticks at 0.1 s
    loop = RtLoop(bus, build_kernel(HIL_MAP, LoopTags(), 0.1, setpoints, kernel_class=kernel_class),
                  settings=settings)
    loop.arm("test")
    tick(plc, loop, 30)
    if first == "id":
        ids = list(plc.get("station_loaded_id"))
        ids[3] = 17
        plc.set("station_loaded_id", ids)
        tick(plc, loop, ticks_apart)
        _place_warm_module(plc, loop, 3, None)
    else:
        _place_warm_module(plc, loop, 3, None)
        tick(plc, loop, ticks_apart)
        ids = list(plc.get("station_loaded_id"))
        ids[3] = 17
        plc.set("station_loaded_id", ids)
    tick(plc, loop, 60)
    assert not loop.kernel.station_safe.any()
    assert all(v == 0.0 for v in plc.get("relief_second_kpa")) and all(v == 0.0 for v in plc.get("relief_first_kpa"))


def test_settle_ticks_cover_the_change_tick_and_the_next_and_the_settle_time():
    assert LoopSettings().settle_ticks() == 10  # 1 s of plant time at 0.1 s
    assert LoopSettings(time_scale=25.0).settle_ticks() == 2  # 1 s of plant time is under a tick
    assert LoopSettings(module_settle_s=0.0).settle_ticks() == 2
    with pytest.raises(ValueError, match="module_settle_s"):
        LoopSettings(module_settle_s=-1.0)


def test_a_loaded_id_tag_of_the_wrong_size_is_refused(plc, kernel_class):
    bus = open_bus(HIL_MAP, Owner.RTCORE, plc=plc)
    tags = LoopTags(loaded_module="marker_temp_degc")  # N elements, not one per station
    with pytest.raises(ValueError, match=rf"'marker_temp_degc' has {N} elements; the real-time loop reads one per station \({S}\)"):
        RtLoop(bus, build_kernel(HIL_MAP, LoopTags(), 0.1, kernel_class=kernel_class), tags=tags)
