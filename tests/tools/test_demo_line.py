"""The files `discharge-edge demo` writes for the supervisor: the line file and, for another
station count, the resized map (tools/demo.py `write_line_file`, `station_map`)."""

import yaml
import pytest

from edge.supervisor.line import load_line
from edge.tagmap import load_tag_map
from tools.demo import MAPS, station_map, write_line_file

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("protocol", sorted(MAPS))
def test_the_bench_count_keeps_the_map_and_the_line_file_loads(tmp_path, protocol):
    assert station_map(MAPS[protocol], None, tmp_path) == MAPS[protocol]
    assert station_map(MAPS[protocol], 8, tmp_path) == MAPS[protocol]
    line = load_line(write_line_file(tmp_path, MAPS[protocol], "link-x", tmp_path / "state", 8))
    assert line.stations.count == 8 and [c.stations for c in line.channels] == [(0, 1, 2, 3), (4, 5, 6, 7)]


@pytest.mark.parametrize("stations, channels", [(40, 10), (10, 3), (1, 1)])
def test_another_station_count_writes_a_map_and_channels_of_four(tmp_path, stations, channels):
    map_path = station_map(MAPS["modbus"], stations, tmp_path)
    assert map_path == tmp_path / "map.yaml"
    assert load_tag_map(map_path).tag("discharge_permit").count == stations
    path = write_line_file(tmp_path, map_path, "link-x", tmp_path / "state", stations)
    line = load_line(path)
    assert line.stations.count == stations and len(line.channels) == channels
    assert sorted(s for c in line.channels for s in c.stations) == list(range(stations))
    assert all(len(c.stations) <= 4 for c in line.channels)
    assert yaml.safe_load(path.read_text())["maps"]["rtcore"] == str(map_path)


def test_more_inbox_slots_write_a_map_and_the_line_files_slots(tmp_path):
    map_path = station_map(MAPS["logix"], None, tmp_path, slots=12)
    assert map_path == tmp_path / "map.yaml"
    tag_map = load_tag_map(map_path)
    assert tag_map.tag("vision_battery_id").count == 12 and tag_map.tag("discharge_permit").count == 8
    line = load_line(write_line_file(tmp_path, map_path, "link-x", tmp_path / "state", 8, 12))
    assert line.placement.slots == 12
