"""The core reads roles, not fixed names: a map of other tag names with a `roles:` section and its
own `fixture:` runs the loop on a MemoryPlc over both kernels; a map lacking a core role is
refused by `rtcore run` naming the role and the file; the fixture comes from the map."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

import rtcore
from edge import REPO_ROOT
from edge.bus import MemoryPlc, open_bus
from edge.cli import main
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop, station_count
from edge.rtloop.process import build_fixture, build_kernel, map_fixture
from edge.tagmap import Owner, load_tag_map
from edge.tagmap.roles import role_problems
from rtcore import twin

pytestmark = pytest.mark.unit

BENCH = (REPO_ROOT / "plc_tags" / "hil_logix.yaml").read_text()
RENAMED = {  # role -> this line's tag name
    "marker_temp_degc": "cell_temp_degc", "zone_pressure_kpa": "clamp_kpa", "rtcore_heartbeat": "ipc_beat",
    "plc_heartbeat": "plc_beat", "relief_first_kpa": "relief_a_kpa", "relief_second_kpa": "vent_kpa",
    "coolant_flow_lpm": "chiller_lpm", "discharge_permit": "run_enable", "current_limit_pct": "derate_pct",
    "station_safe_state": "station_trip", "safe_state": "line_trip", "coolant_base_lpm": "base_flow_lpm",
    "station_loaded_id": "module_id",
}
# 4 markers a station in a square, zones alternating (not i // 2), areas unequal; 300 mm apart
FIXTURE = """fixture:
  station_pitch_mm: 300.0
  markers:
    - {x_mm: 10.0, y_mm: 20.0, zone: 0}
    - {x_mm: 90.0, y_mm: 20.0, zone: 1}
    - {x_mm: 10.0, y_mm: 120.0, zone: 0}
    - {x_mm: 90.0, y_mm: 120.0, zone: 1}
  zone_area_mm2: [12000.0, 18000.0]
"""
KERNELS = {"twin": twin.Kernel}
if rtcore.COMPILED:
    KERNELS["compiled"] = rtcore.impl.Kernel
S, ZPS, MPS = 8, 2, 4
N, Z = S * MPS, S * ZPS


def renamed_text() -> str:
    text = BENCH[:BENCH.index("fixture:\n")] + FIXTURE + BENCH[BENCH.index("\ntags:\n"):]
    for role, name in RENAMED.items():
        assert f"name: {role}\n" in text
        text = text.replace(f"name: {role}\n", f"name: {name}\n", 1)
    roles = "roles:\n" + "".join(f"  {role}: {name}\n" for role, name in RENAMED.items())
    return text.replace("\ntags:\n", f"\n{roles}\ntags:\n", 1)


@pytest.fixture(scope="module")
def renamed_map(tmp_path_factory):
    path = tmp_path_factory.mktemp("roles") / "other_names.yaml"
    path.write_text(renamed_text())
    return load_tag_map(path)


@pytest.fixture(params=sorted(KERNELS))
def kernel_class(request):
    return KERNELS[request.param]


def test_the_renamed_map_gives_the_core_every_role(renamed_map):
    assert role_problems(renamed_map) == []
    for role in RENAMED:
        assert renamed_map.tag(role) is None  # no tag of a default name is left
    tags = LoopTags.for_map(renamed_map)
    assert (tags.temps, tags.pressures, tags.heartbeat, tags.permit, tags.loaded_module) == (
        "cell_temp_degc", "clamp_kpa", "ipc_beat", "run_enable", "module_id")
    assert station_count(renamed_map) == S
    with pytest.raises(ValueError, match=r"other_names\.yaml: the real-time loop needs tag 'temps_old'"):
        RtLoop(open_bus(renamed_map, Owner.RTCORE, plc=MemoryPlc(renamed_map)), None,
               tags=LoopTags(temps="temps_old"))  # a field set to another tag is kept, and must exist


def test_the_kernels_fixture_is_the_maps(renamed_map):
    fixture = map_fixture(renamed_map)
    assert (fixture.n_markers, fixture.n_zones, fixture.n_stations) == (N, Z, S)
    assert fixture.marker_xy_mm[5].tolist() == [300.0 + 90.0, 20.0]  # station 1's second marker
    assert fixture.marker_zone[:8].tolist() == [0, 1, 0, 1, 2, 3, 2, 3]
    assert fixture.zone_area_mm2[:4].tolist() == [12000.0, 18000.0, 12000.0, 18000.0]
    assert fixture.zone_station.tolist() == list(np.repeat(np.arange(S), ZPS))
    kernel = build_kernel(renamed_map, None, 0.1, kernel_class=twin.Kernel)
    np.testing.assert_array_equal(kernel.fixture.marker_xy_mm, fixture.marker_xy_mm)


def test_the_loop_runs_on_the_renamed_map(renamed_map, kernel_class):
    plc = MemoryPlc(renamed_map)
    plc.set("cell_temp_degc", tuple(25.0 + 0.01 * i for i in range(N)))
    plc.set("clamp_kpa", (120.0,) * Z)
    plc.set("base_flow_lpm", (3.0,) * S)
    bus = open_bus(renamed_map, Owner.RTCORE, plc=plc)
    kernel = build_kernel(renamed_map, None, 0.1, kernel_class=kernel_class)
    loop = RtLoop(bus, kernel, settings=LoopSettings(realtime_priority=0))
    assert loop.n_stations == S
    beat = 0

    def tick(n):
        nonlocal beat
        for _ in range(n):
            beat += 1
            plc.set("plc_beat", beat)
            loop.step()

    tick(2)
    assert plc.get("run_enable") == (False,) * S and plc.get("line_trip") is True  # not armed: safe
    loop.arm("test")
    tick(3)
    assert plc.get("ipc_beat") == loop.tick_count - 1
    assert plc.get("run_enable") == (True,) * S and plc.get("line_trip") is False
    assert plc.get("derate_pct") == (100.0,) * S
    assert plc.get("chiller_lpm") == (3.0,) * S  # the strategy's base, no relief
    temps = list(plc.get("cell_temp_degc"))
    for i in range(2 * MPS, 3 * MPS):  # station 2's markers read NaN
        temps[i] = math.nan
    plc.set("cell_temp_degc", temps)
    tick(loop.kernel.config.nonfinite_debounce_ticks + 1)
    assert loop.kernel.station_safe[2] and not loop.kernel.safe_state
    enable = plc.get("run_enable")
    assert enable[2] is False and all(enable[s] for s in range(S) if s != 2)
    assert plc.get("station_trip")[2] is True
    vent = plc.get("vent_kpa")
    assert [vent[z] for z in (4, 5)] == [400.0, 400.0] and all(vent[z] == 0.0 for z in range(Z) if z not in (4, 5))
    assert plc.get("derate_pct")[2] == 0.0


def test_rtcore_run_refuses_a_map_without_the_pressures_naming_role_and_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    start = BENCH.index("  - name: zone_pressure_kpa\n")
    end = BENCH.index("  - name:", start + 1)
    path = tmp_path / "no_pressure.yaml"
    path.write_text(BENCH[:start] + BENCH[end:])
    code = main(["rtcore", "run", "--map", str(path), "--seconds", "0.1", "--link", f"t-{uuid.uuid4().hex[:8]}",
                 "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{path}:1: no tag plays role 'zone_pressure_kpa'" in err and "which rtcore needs" in err


def test_a_map_fixture_that_does_not_fit_the_counts_is_refused_naming_file_and_line(tmp_path):
    text = BENCH.replace("    - {x_mm: 150.0, y_mm: 0.0, zone: 1}\n", "", 1)  # 3 markers a station
    path = tmp_path / "three_markers.yaml"
    path.write_text(text)
    tag_map = load_tag_map(path)
    line = text[:text.index("fixture:\n")].count("\n") + 1
    with pytest.raises(ValueError, match=rf"three_markers\.yaml:{line}: fixture: 3 markers a station x 8 stations = 24; "
                                         r"the tag 'marker_temp_degc' has 32"):
        build_kernel(tag_map, None, 0.1)
    assert [p.line for p in role_problems(tag_map)] == [line]


def test_a_map_without_fixture_gets_the_even_split_and_a_line_fixture_must_fit(tmp_path):
    text = BENCH[:BENCH.index("fixture:\n")] + BENCH[BENCH.index("\ntags:\n") + 1:]
    path = tmp_path / "no_fixture.yaml"
    path.write_text(text)
    tag_map = load_tag_map(path)
    assert tag_map.fixture is None
    even, shipped = map_fixture(tag_map), map_fixture(load_tag_map(REPO_ROOT / "plc_tags" / "hil_logix.yaml"))
    for field in ("marker_xy_mm", "marker_zone", "zone_area_mm2", "zone_station"):
        np.testing.assert_array_equal(getattr(even, field), getattr(shipped, field))  # the bench's is the even split
    np.testing.assert_array_equal(even.marker_xy_mm, build_fixture(N, Z, S).marker_xy_mm)
    with pytest.raises(ValueError, match=r"no_fixture\.yaml: the fixture has 24 markers and 12 zones; the map 32"):
        build_kernel(tag_map, None, 0.1, fixture=build_fixture(24, 12, 6))
