"""The line file and the rtcore map's roles and fixture (edge/supervisor/line.py): the line's
fixture must be the map's, the rtcore map must give the core its roles, and `serve:` is kept as
written. Each refusal names the line file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.supervisor.line import LineError, load_line

pytestmark = pytest.mark.unit

BENCH_LINE = (REPO_ROOT / "lines" / "bench.yaml").read_text()
BENCH_MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"


def line_file(tmp_path: Path, text: str, map_path: Path = BENCH_MAP) -> Path:
    text = text.replace("../plc_tags/hil_modbus.yaml", str(map_path)).replace("../models/shipped",
                                                                               str(REPO_ROOT / "models" / "shipped"))
    path = tmp_path / "line.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str, start: int = 0) -> int:
    return text[:text.index(needle, start)].count("\n") + 1


def refused(path: Path) -> list:
    with pytest.raises(LineError) as caught:
        load_line(path)
    return caught.value.problems


def test_the_bench_line_agrees_with_its_maps_fixture_and_has_no_serve(tmp_path):
    line = load_line(REPO_ROOT / "lines" / "bench.yaml")
    assert line.rtcore_map.fixture is not None and line.serve == {}


@pytest.mark.parametrize("old, new, key", [
    ("station_pitch_mm: 250.0", "station_pitch_mm: 300.0", "fixture.station_pitch_mm"),
    ("- {x_mm: 50.0, y_mm: 0.0, zone: 0}", "- {x_mm: 55.0, y_mm: 0.0, zone: 0}", "fixture.markers"),
    ("zone_area_mm2: [15000.0, 15000.0]", "zone_area_mm2: [15000.0, 16000.0]", "fixture.zone_area_mm2"),
])
def test_a_line_fixture_that_differs_from_the_maps_is_refused(tmp_path, old, new, key):
    text = BENCH_LINE.replace(old, new, 1)
    path = line_file(tmp_path, text)
    problems = [p for p in refused(path) if p.key == key]
    assert len(problems) == 1 and problems[0].file == path.resolve()
    after = text.index("\nfixture:")
    assert problems[0].line == line_of(text, "\n  " + key.split(".")[1] + ":", after) + 1
    assert f"the rtcore map's fixture ({BENCH_MAP}:" in problems[0].message and "must agree" in problems[0].message


def test_a_map_without_fixture_leaves_the_line_its_own(tmp_path):
    text = BENCH_MAP.read_text()
    text = text[:text.index("fixture:\n")] + text[text.index("\ntags:\n") + 1:]
    map_path = tmp_path / "no_fixture.yaml"
    map_path.write_text(text)
    line = load_line(line_file(tmp_path, BENCH_LINE.replace("station_pitch_mm: 250.0", "station_pitch_mm: 300.0"),
                               map_path))
    assert line.station_pitch_mm == 300.0 and line.rtcore_fixture().marker_xy_mm[4].tolist() == [300.0, 0.0]


def test_an_rtcore_map_without_a_core_role_is_refused_naming_the_role(tmp_path):
    text = BENCH_MAP.read_text()
    start = text.index("  - name: zone_pressure_kpa\n")
    map_path = tmp_path / "no_pressure.yaml"
    map_path.write_text(text[:start] + text[text.index("  - name:", start + 1):])
    path = tmp_path / "line.yaml"
    path.write_text(BENCH_LINE.replace("rtcore: ../plc_tags/hil_modbus.yaml", f"rtcore: {map_path}")
                    .replace("../plc_tags/hil_modbus.yaml", str(BENCH_MAP))
                    .replace("../models/shipped", str(REPO_ROOT / "models" / "shipped")))
    problems = [p for p in refused(path) if p.key == "maps.rtcore"]
    assert problems and problems[0].line == line_of(BENCH_LINE, "  rtcore:")
    assert f"{map_path}:1: no tag plays role 'zone_pressure_kpa'" in problems[0].message


def test_serve_is_kept_as_a_raw_mapping(tmp_path):
    text = BENCH_LINE + "\nserve:\n  port: 9000\n  anything: {nested: [1, 2]}\n"
    line = load_line(line_file(tmp_path, text))
    assert line.serve == {"port": 9000, "anything": {"nested": [1, 2]}}
    assert line.serve.key_lines["port"] == line_of(text, "  port: 9000")
    text = BENCH_LINE + "\nserve: 9000\n"
    problems = refused(line_file(tmp_path, text))
    assert [(p.key, p.line, p.message) for p in problems] == [("serve", line_of(text, "serve:"),
                                                               "is 9000; allowed: a mapping")]
