"""The bench's view of a map (tools/hil/bench_map.py): tags by role, stations, the plant's markers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.batterymodel.plc import command_from_tags
from edge.batterymodel.thermal import ThermalConfig
from edge.tagmap import load_tag_map
from tools.hil.bench_map import bench_layout, plant_marker_positions
from tools.hil.server_bench import bench_plant_config

pytestmark = pytest.mark.unit

EXAMPLES = REPO_ROOT / "plc_tags" / "examples"


def test_the_even_split_of_the_bench_maps_keeps_the_plants_default_markers():
    layout = bench_layout(load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml"), 6)
    assert (layout.n_stations, layout.zones_per_station, layout.markers_per_station) == (8, 2, 4)
    assert layout.marker_positions == ThermalConfig().marker_positions  # bit for bit: 0, 1/3, 2/3, 1
    # (the same from the map's fixture, markers 50 mm apart, as from the even split)


def test_markers_that_would_cross_into_another_zone_are_spread_over_their_own_zone():
    zone = np.array([0, 1, 2, 3])  # 4 markers in 4 zones of 6 cells: 0, 1/3, 2/3, 1 puts marker 1 over cell 2 (zone 1)
    positions = np.array(plant_marker_positions(np.arange(4.0), zone, 4, 6))
    cell_zone = np.arange(6) * 4 // 6
    assert (cell_zone[np.rint(positions * 5).astype(int)] == zone).all(), positions
    assert plant_marker_positions(np.array([0.0, 1.0, 2.0]), np.zeros(3, int), 1, 6) == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="not all in 0..1"):
        plant_marker_positions(np.arange(3.0), np.array([0, 1, 2]), 2, 6)


def test_the_12_station_map_serves_3_markers_a_station_from_its_fixture():
    tag_map = load_tag_map(EXAMPLES / "line12x3_modbus.yaml")
    layout = bench_layout(tag_map, 6)
    assert (layout.n_stations, layout.zones_per_station, layout.markers_per_station) == (12, 1, 3)
    config = bench_plant_config(tag_map)
    assert config.n_zones == 1 and len(config.thermal.marker_positions) == 3
    if tag_map.fixture is not None:  # the map's fixture: 20, 75, 130 mm along the module
        assert layout.from_fixture and layout.marker_positions == (0.0, 0.5, 1.0)


def test_a_map_without_the_core_heartbeat_is_refused_naming_the_file():
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    without = dataclasses.replace(tag_map, tags=tuple(t for t in tag_map.tags if t.name != "rtcore_heartbeat"))
    with pytest.raises(ValueError, match=r"hil_modbus.yaml: the bench's PLC needs the roles rtcore_heartbeat"):
        bench_layout(without, 6)


def test_renamed_tags_serve_through_the_maps_roles():
    pytest.importorskip("edge.tagmap.roles")
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    renamed = {"marker_temp_degc": "fixture_tc_degc", "rtcore_heartbeat": "ipc_watchdog", "discharge_permit": "run_enable"}
    tags = tuple(dataclasses.replace(t, name=renamed.get(t.name, t.name)) for t in tag_map.tags)
    layout = bench_layout(dataclasses.replace(tag_map, tags=tags, roles=renamed), 6)
    assert layout.served["marker_temp_degc"] == "fixture_tc_degc" and layout.served["discharge_permit"] == "run_enable"
    assert layout.to_served({"rtcore_heartbeat": 3, "no_such_role": 1}) == {"ipc_watchdog": 3}
    assert layout.from_served({"run_enable": (True,) * 8}) == {"discharge_permit": (True,) * 8}


def test_scalar_commands_apply_to_every_station():
    values = {"fixture_pressure_setpoint_kpa": 150.0, "relief_second_kpa": 0.0, "discharge_current_setpoint_a": (5.0, 4.0, 3.0),
              "current_limit_pct": 100.0, "discharge_permit": True, "coolant_flow_lpm": 4.0}
    command = command_from_tags(values, zones_per_station=1, n_stations=3)
    np.testing.assert_array_equal(command.current_a, [5.0, 4.0, 3.0])
    np.testing.assert_array_equal(command.pressure_kpa, [[150.0]] * 3)
    np.testing.assert_array_equal(command.coolant_lpm, [4.0] * 3)
    assert command.discharge_on.all()
    with pytest.raises(ValueError, match="discharge_current_setpoint_a has 2 elements for 3 stations"):
        command_from_tags({**values, "discharge_current_setpoint_a": (5.0, 4.0)}, 1, 3)
