"""The line file: the bench's line loads; every kind of mistake is refused with file, line and key,
all of them together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.limits import SHIPPED_MODELS_DIR
from edge.rtloop.process import build_fixture
from edge.supervisor.line import LineError, RouteKind, load_line

pytestmark = pytest.mark.unit

BENCH_MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"
MODELS = SHIPPED_MODELS_DIR

BASE = f"""\
name: test-line
state_dir: state
tiers: 4
maps:
  rtcore: {BENCH_MAP}
  supervisor: {BENCH_MAP}
rtcore_link: test-link
stations:
  count: 8
  zones: 2
  markers: 4
channels:
  A: [0, 1, 2, 3]
  B: [4, 5, 6, 7]
fixture:
  station_pitch_mm: 250.0
  markers:
    - {{x_mm: 0.0, y_mm: 0.0, zone: 0}}
    - {{x_mm: 50.0, y_mm: 0.0, zone: 0}}
    - {{x_mm: 100.0, y_mm: 0.0, zone: 1}}
    - {{x_mm: 150.0, y_mm: 0.0, zone: 1}}
  zone_area_mm2: [15000.0, 15000.0]
routes:
  default: recycling
  chemistries:
    NMC:
      cutoff_v_per_cell: 2.5
      second_life_floor_v_per_cell: 3.0
      recycling_floor_v_per_cell: 2.7
models:
  soc_gan: {MODELS}
  rl_policy: {MODELS}
limits:
  warning_degc: 45.0
  temp_limit_degc: 55.0
  max_current_a: 15.0
  max_coolant_lpm: 20.0
inbox: inbox
operator_page: {{host: 127.0.0.1, port: 8080}}
"""


def write(tmp_path: Path, text: str, name: str = "line.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(LineError) as info:
        load_line(path)
    return [str(p) for p in info.value.problems]


def test_the_base_file_loads(tmp_path):
    line = load_line(write(tmp_path, BASE))
    assert line.name == "test-line" and line.tiers == 4 and line.rtcore_link == "test-link"
    assert line.state_dir == tmp_path / "state"
    assert line.rtcore_map.source == BENCH_MAP and line.supervisor_map.name == "hil-modbus"
    assert (line.stations.count, line.stations.zones, line.stations.markers) == (8, 2, 4)
    assert [c.name for c in line.channels] == ["A", "B"] and line.channel_of(6).name == "B"
    nmc = line.routes.for_chemistry()
    assert (nmc.chemistry, nmc.cutoff_v_per_cell) == ("NMC", 2.5)
    assert nmc.floor_v_per_cell(RouteKind.SECOND_LIFE) == 3.0 and nmc.floor_v_per_cell(RouteKind.RECYCLING) == 2.7
    assert line.routes.default is RouteKind.RECYCLING
    assert line.models.soc_gan_dir == MODELS and line.models.rl_policy_dir == MODELS
    assert (line.limits.warning_degc, line.limits.temp_limit_degc) == (45.0, 55.0)
    assert (line.operator_page.host, line.operator_page.port) == ("127.0.0.1", 8080)
    paths = line.state_paths()
    assert paths.inbox == tmp_path / "state" / "inbox" and paths.database == tmp_path / "state" / "supervisor.sqlite"
    assert line.state_paths(override=tmp_path / "other").inbox == tmp_path / "other" / "inbox"
    with pytest.raises(KeyError, match="LFP"):
        line.routes.for_chemistry("LFP")


def test_the_bench_line_file_loads_and_its_fixture_is_the_cores():
    line = load_line(REPO_ROOT / "lines" / "bench.yaml")
    assert line.stations.count * line.stations.markers == line.rtcore_map.tag("marker_temp_degc").count
    assert [len(c.stations) for c in line.channels] == [4, 4]
    assert line.state_dir is not None and line.state_dir.is_absolute()
    ours, cores = line.rtcore_fixture(), build_fixture(32, 16, 8)
    for field in ("marker_xy_mm", "marker_zone", "zone_area_mm2", "zone_station"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(cores, field))


def test_defaults(tmp_path):
    text = BASE.replace("state_dir: state\n", "").replace("tiers: 4\n", "").replace("rtcore_link: test-link\n", "")
    text = text.split("models:")[0] + "limits:" + text.split("limits:")[1]
    text = text.replace("inbox: inbox\n", "").replace("operator_page: {host: 127.0.0.1, port: 8080}\n", "")
    line = load_line(write(tmp_path, text))
    assert line.state_dir is None and line.tiers == 4 and line.rtcore_link == "discharge-edge-rtcore"
    assert line.models.soc_gan_dir == MODELS and line.operator_page.host == "127.0.0.1"
    with pytest.raises(ValueError, match="no state_dir"):
        line.state_paths()
    assert line.state_paths(default=tmp_path / "d").inbox == tmp_path / "d" / "inbox"
    assert line.stations.cells_per_module == 6  # the bench's modules


def test_cells_per_module_is_read(tmp_path):
    line = load_line(write(tmp_path, BASE.replace("  markers: 4\n", "  markers: 4\n  cells_per_module: 12\n", 1)))
    assert line.stations.cells_per_module == 12
    assert load_line(REPO_ROOT / "lines" / "bench.yaml").stations.cells_per_module == 6


def test_a_station_may_have_its_own_fixture(tmp_path):
    text = BASE.replace("  zone_area_mm2: [15000.0, 15000.0]\n", "  zone_area_mm2: [15000.0, 15000.0]\n"
                        "  stations:\n    3:\n      markers:\n"
                        + "".join(f"        - {{x_mm: {10.0 * i}, y_mm: 5.0, zone: {i // 2}}}\n" for i in range(4))
                        + "      zone_area_mm2: [9000.0, 11000.0]\n")
    line = load_line(write(tmp_path, text))
    assert line.fixtures[3].zone_area_mm2 == (9000.0, 11000.0) and line.fixtures[2].zone_area_mm2 == (15000.0, 15000.0)
    fixture = line.rtcore_fixture()
    assert fixture.marker_xy_mm[13].tolist() == [3 * 250.0 + 10.0, 5.0]


def sized_map(tmp_path: Path) -> Path:
    """The bench map with 24 marker points: sizes that disagree with 8 stations x 4 markers."""
    text = BENCH_MAP.read_text().replace("type: INT[32]", "type: INT[24]")
    return write(tmp_path, text, "small_map.yaml")


def broken_map(tmp_path: Path) -> Path:
    return write(tmp_path, BENCH_MAP.read_text().replace("protocol: modbus", "protocol: profibus"), "broken.yaml")


# (case id, replace this, with that, the key named, a fragment of the message, the reported line's text)
CASES = [
    ("unknown-top-key", "tiers: 4\n", "tiers: 4\ncolour: red\n", "colour", "unknown key", "colour: red"),
    ("missing-section", "limits:\n  warning_degc: 45.0\n  temp_limit_degc: 55.0\n  max_current_a: 15.0\n"
     "  max_coolant_lpm: 20.0\n", "", "limits", "missing; it is required", None),
    ("tiers-range", "tiers: 4", "tiers: 0", "tiers", "an integer 1..20", "tiers: 0"),
    ("tiers-type", "tiers: 4", "tiers: four", "tiers", "an integer 1..20", "tiers: four"),
    ("duplicate-key", "tiers: 4\n", "tiers: 4\ntiers: 5\n", "the file", "duplicate key 'tiers'", "tiers: 5"),
    ("name-empty", "name: test-line", "name: ''", "name", "a name of letters", "name: ''"),
    ("link-with-slash", "rtcore_link: test-link", "rtcore_link: a/b", "rtcore_link", "a plain name", "rtcore_link"),
    ("stations-not-mapping", "stations:\n  count: 8\n  zones: 2\n  markers: 4\n", "stations: [8, 2, 4]\n",
     "stations", "must be a mapping", "stations:"),
    ("markers-not-multiple", "  markers: 4\n", "  markers: 3\n", "stations.markers", "a multiple of stations.zones",
     "  markers: 3"),
    ("cells-per-module-range", "  markers: 4\n", "  markers: 4\n  cells_per_module: 401\n",
     "stations.cells_per_module", "is 401; allowed: an integer 1..400", "  cells_per_module:"),
    ("cells-per-module-zero", "  markers: 4\n", "  markers: 4\n  cells_per_module: 0\n",
     "stations.cells_per_module", "an integer 1..400", "  cells_per_module:"),
    ("cells-per-module-type", "  markers: 4\n", "  markers: 4\n  cells_per_module: 6.5\n",
     "stations.cells_per_module", "is 6.5; allowed: an integer 1..400", "  cells_per_module:"),
    ("stations-vs-map", "  count: 8", "  count: 6", "maps.rtcore", "= 6 x 4 = 24", "  rtcore:"),
    ("map-sizes-disagree", f"  rtcore: {BENCH_MAP}", "  rtcore: small_map.yaml", "maps.rtcore",
     "marker_temp_degc has 24 elements; allowed: stations.count x stations.markers = 8 x 4 = 32", "  rtcore:"),
    ("map-missing", f"  supervisor: {BENCH_MAP}", "  supervisor: nowhere.yaml", "maps.supervisor", "does not exist",
     "  supervisor:"),
    ("map-does-not-load", f"  supervisor: {BENCH_MAP}", "  supervisor: broken.yaml", "maps.supervisor",
     "the tag map does not load: ", "  supervisor:"),
    ("channel-twice", "  B: [4, 5, 6, 7]", "  B: [3, 4, 5, 6, 7]", "channels.B", "already in channel 'A'", "  B:"),
    ("channel-misses-a-station", "  B: [4, 5, 6, 7]", "  B: [4, 5, 6]", "channels", "stations [7] are in no channel",
     "channels:"),
    ("channel-unknown-station", "  B: [4, 5, 6, 7]", "  B: [4, 5, 6, 7, 8]", "channels.B", "station 8 does not exist",
     "  B:"),
    ("channel-not-a-list", "  B: [4, 5, 6, 7]", "  B: four", "channels.B", "a non-empty list", "  B:"),
    ("fixture-marker-count", "    - {x_mm: 150.0, y_mm: 0.0, zone: 1}\n", "", "fixture.markers",
     "allowed: a list of stations.markers = 4", "  markers:\n    - {x_mm: 0.0"),
    ("fixture-marker-zone", "    - {x_mm: 50.0, y_mm: 0.0, zone: 0}", "    - {x_mm: 50.0, y_mm: 0.0, zone: 1}",
     "fixture.markers[1].zone", "allowed: 0", "x_mm: 50.0"),
    ("fixture-marker-x-type", "{x_mm: 100.0,", "{x_mm: far,", "fixture.markers[2].x_mm", "a finite number in mm",
     "x_mm: far"),
    ("fixture-marker-unknown-key", "y_mm: 0.0, zone: 1}\n  zone", "y_mm: 0.0, z_mm: 1, zone: 1}\n  zone",
     "fixture.markers[3].z_mm", "unknown key", "z_mm"),
    ("fixture-area-negative", "[15000.0, 15000.0]", "[-1.0, 15000.0]", "fixture.zone_area_mm2[0]", "> 0 mm2",
     "zone_area_mm2"),
    ("fixture-area-count", "[15000.0, 15000.0]", "[30000.0]", "fixture.zone_area_mm2", "stations.zones = 2",
     "zone_area_mm2"),
    ("fixture-station-unknown", "  zone_area_mm2: [15000.0, 15000.0]\n",
     "  zone_area_mm2: [15000.0, 15000.0]\n  stations:\n    9: {}\n", "fixture.stations.9", "station 9 does not exist",
     "    9:"),
    ("floor-below-cutoff", "recycling_floor_v_per_cell: 2.7", "recycling_floor_v_per_cell: 2.4",
     "routes.chemistries.NMC.recycling_floor_v_per_cell", "above the cut-off (2.5 V)", "recycling_floor"),
    ("route-default", "default: recycling", "default: landfill", "routes.default", "second_life, recycling",
     "default: landfill"),
    ("route-unknown-key", "      cutoff_v_per_cell: 2.5\n", "      cutoff_v_per_cell: 2.5\n      max_c: 1\n",
     "routes.chemistries.NMC.max_c", "unknown key", "max_c"),
    ("route-missing-floor", "      second_life_floor_v_per_cell: 3.0\n", "",
     "routes.chemistries.NMC.second_life_floor_v_per_cell", "missing", "cutoff_v_per_cell"),
    ("route-cutoff-type", "cutoff_v_per_cell: 2.5", "cutoff_v_per_cell: low", "routes.chemistries.NMC.cutoff_v_per_cell",
     "a finite number in V", "cutoff_v_per_cell"),
    ("models-no-metadata", f"  soc_gan: {MODELS}", "  soc_gan: .", "models.soc_gan", "holds no soc_gan.json",
     "  soc_gan:"),
    ("warning-above-limit", "warning_degc: 45.0", "warning_degc: 60.0", "limits.warning_degc",
     "below limits.temp_limit_degc (55 degC)", "warning_degc"),
    ("current-above-tag", "max_current_a: 15.0", "max_current_a: 20.0", "limits.max_current_a",
     "the limit of discharge_current_setpoint_a", "max_current_a"),
    ("limit-missing", "  max_coolant_lpm: 20.0\n", "", "limits.max_coolant_lpm", "missing", "warning_degc"),
    ("limit-type", "warning_degc: 45.0", "warning_degc: hot", "limits.warning_degc", "a finite number in degC",
     "warning_degc"),
    ("inbox-type", "inbox: inbox", "inbox: 5", "inbox", "a folder", "inbox: 5"),
    ("operator-host", "host: 127.0.0.1", "host: localhost", "operator_page.host", "an IP address", "operator_page"),
    ("operator-port", "port: 8080", "port: 70000", "operator_page.port", "an integer 1..65535", "operator_page"),
]


@pytest.mark.parametrize("old, new, key, fragment, line_text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_kind_of_mistake_names_file_line_and_key(tmp_path, old, new, key, fragment, line_text):
    sized_map(tmp_path), broken_map(tmp_path)
    assert old in BASE
    text = BASE.replace(old, new, 1)
    path = write(tmp_path, text)
    expected_line = 1 if line_text is None else text[:text.index(line_text)].count("\n") + 1
    problems = problems_of(path)
    want = f"{path.resolve()}:{expected_line}: {key}: "
    assert any(p.startswith(want) and fragment in p for p in problems), (want, fragment, problems)


def test_every_problem_is_reported_together_in_line_order(tmp_path):
    text = (BASE.replace("tiers: 4", "tiers: 0").replace("  B: [4, 5, 6, 7]", "  B: [3, 4, 5, 6, 7]")
            .replace("warning_degc: 45.0", "warning_degc: 60.0").replace("port: 8080", "port: 0"))
    problems = problems_of(write(tmp_path, text))
    keys = [p.split(": ")[1] for p in problems]
    assert keys == ["tiers", "channels.B", "limits.warning_degc", "operator_page.port"]


def test_a_bad_cells_per_module_does_not_hide_the_map_checks(tmp_path):
    text = BASE.replace("  markers: 4\n", "  markers: 4\n  cells_per_module: true\n", 1).replace("  count: 8", "  count: 6")
    keys = [p.split(": ")[1] for p in problems_of(write(tmp_path, text))]
    assert keys == ["maps.rtcore"] * 3 + ["maps.supervisor"] * 5 + ["stations.cells_per_module"] + ["channels.B"] * 2


def test_not_yaml_empty_and_missing_files(tmp_path):
    bad = write(tmp_path, "name: [unclosed\n", "bad.yaml")
    (problem,) = problems_of(bad)
    assert problem.startswith(f"{bad.resolve()}:") and "not valid YAML" in problem
    empty = write(tmp_path, "\n", "empty.yaml")
    assert problems_of(empty) == [f"{empty.resolve()}:1: the file: empty; a line file needs name, maps, stations, "
                                  "channels, fixture, routes, limits"]
    (missing,) = problems_of(tmp_path / "nothing.yaml")
    assert "cannot read" in missing
    listed = write(tmp_path, "- a\n- b\n", "list.yaml")
    assert "must be a mapping" in problems_of(listed)[0]


def test_a_line_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "line.yaml"
    path.write_bytes(b"name: x\n\xff\xfe caf\xe9\n")
    with pytest.raises(LineError) as err:
        load_line(path)
    assert str(err.value) == f"{path}:2: the file: not UTF-8 text (byte 0xff at offset 8); save the file as UTF-8"


PLACEMENT = """\
placement:
  slots: 4
  terminals:
    positive: {x_mm: -38.0, y_mm: 1.0}
    negative: {x_mm: 42.0, y_mm: -1.0}
  tolerance_mm: 2.5
  min_confidence_pct: 85.0
  max_frame_age_s: 1.5
  ack_timeout_s: 3.0
  motion_timeout_s: 20.0
  retries: 2
  vision_frames: 4
  clamp_tolerance_pct: 4.0
"""


def test_the_placement_section_loads_and_feeds_vision_and_the_robot(tmp_path):
    line = load_line(write(tmp_path, BASE + PLACEMENT))
    p = line.placement
    assert (p.slots, p.positive_mm, p.negative_mm) == (4, (-38.0, 1.0), (42.0, -1.0))
    rules, timeouts = p.vision_rules(), p.timeouts()
    assert (rules.tolerance_mm, rules.min_confidence_pct, rules.max_frame_age_s) == (2.5, 85.0, 1.5)
    assert (timeouts.ack_timeout_s, timeouts.motion_timeout_s, timeouts.retries) == (3.0, 20.0, 2)
    assert (p.vision_frames, p.clamp_tolerance_pct, p.clamp_timeout_s) == (4, 4.0, 60.0)
    assert load_line(write(tmp_path, BASE, "bare.yaml")).placement.tolerance_mm == 3.0  # the contract's defaults


def test_a_bad_placement_section_is_refused_with_file_line_and_key(tmp_path):
    text = (BASE + PLACEMENT).replace("slots: 4", "slots: 6").replace("tolerance_mm: 2.5", "tolerance_mm: 0") \
        .replace("retries: 2", "retries: 11").replace("x_mm: 42.0", "x_mm: far").replace("vision_frames: 4", "bogus: 1")
    path = write(tmp_path, text)
    lines = text.splitlines()
    at = {key: lines.index(next(ln for ln in lines if ln.strip().startswith(key))) + 1
          for key in ("slots:", "tolerance_mm:", "retries:", "negative:", "bogus:")}
    assert problems_of(path) == sorted([
        f"{path}:{at['slots:']}: placement.slots: is 6; allowed: 4, the count of vision_battery_id in hil_modbus.yaml",
        f"{path}:{at['negative:']}: placement.terminals.negative.x_mm: is 'far'; allowed: a finite number in mm",
        f"{path}:{at['tolerance_mm:']}: placement.tolerance_mm: is 0 mm; allowed: > 0 and <= 100",
        f"{path}:{at['retries:']}: placement.retries: is 11; allowed: an integer 0..10",
        f"{path}:{at['bogus:']}: placement.bogus: unknown key; allowed: ack_timeout_s, clamp_timeout_s, "
        "clamp_tolerance_pct, max_frame_age_s, min_confidence_pct, motion_timeout_s, retries, slots, terminals, "
        "tolerance_mm, vision_frames",
    ], key=lambda p: int(p.split(":")[1]))
