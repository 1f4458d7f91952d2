"""Roles and the map's fixture (edge/tagmap/roles.py): the catalogue, `role_tag`, the `roles:` and
`fixture:` sections refused by `load_tag_map` when wrong on their own, and `role_problems`
refusing a map that lacks a role its owner needs, each problem naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.tagmap import Owner, TagMapError, load_tag_map
from edge.tagmap.roles import (BY_NAME, EVEN_SPLIT, ROLES, SHAPES, KINDS, MapFixture, even_split_fixture,
                               map_station_count, role_notes, role_problems, role_tag, station_fixture)

pytestmark = pytest.mark.unit

SHIPPED = sorted((REPO_ROOT / "plc_tags").glob("*.yaml"))
BENCH = (REPO_ROOT / "plc_tags" / "hil_logix.yaml").read_text()
FIXTURE_AT = BENCH.index("fixture:\n")


def write(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def drop(text: str, name: str) -> str:
    """The map text without tag `name`'s entry."""
    start = text.index(f"  - name: {name}\n")
    ends = [i for i in (text.find("\n  - name:", start + 1), text.find("\n\n  #", start + 1)) if i >= 0]
    return text[:start] + text[min(ends) + 1:] if ends else text[:start]


def rename(text: str, old: str, new: str) -> str:
    assert f"name: {old}\n" in text
    return text.replace(f"name: {old}\n", f"name: {new}\n", 1)


def with_section(text: str, section: str) -> str:
    return text.replace("\ntags:\n", f"\n{section}\ntags:\n", 1)


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def without_fixture(text: str) -> str:
    end = text.index("\ntags:\n")
    return text[:FIXTURE_AT] + text[end + 1:]


# -- the catalogue ---------------------------------------------------------------------------------
def test_the_catalogue_names_each_role_once_with_a_known_shape_and_kind():
    assert len(BY_NAME) == len(ROLES)
    assert all(r.shape in SHAPES and r.kind in KINDS for r in ROLES)
    core = {r.name for r in ROLES if r.process is Owner.RTCORE}
    assert core == {"marker_temp_degc", "zone_pressure_kpa", "rtcore_heartbeat", "plc_heartbeat", "relief_first_kpa",
                    "relief_second_kpa", "coolant_flow_lpm", "discharge_permit", "current_limit_pct",
                    "station_safe_state", "safe_state"}
    assert {r.name for r in ROLES if Owner.RTCORE in r.required_by} == {"marker_temp_degc", "zone_pressure_kpa",
                                                                       "rtcore_heartbeat"}
    assert Owner.SUPERVISOR in BY_NAME["zone_pressure_kpa"].required_by  # the clamp check reads it


def test_the_supervisor_roles_are_the_flows_required_tags():
    from edge.supervisor.flow import PACKTAGS_READ, PACKTAGS_STATE, REQUIRED_TAGS

    required = {r.name for r in ROLES if Owner.SUPERVISOR in r.required_by}
    assert required == set(REQUIRED_TAGS)
    assert {PACKTAGS_STATE, *PACKTAGS_READ} <= set(BY_NAME)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_maps_have_every_role_and_a_fixture(path):
    tag_map = load_tag_map(path)
    assert role_problems(tag_map) == []
    assert role_notes(tag_map) == []
    assert isinstance(tag_map.fixture, MapFixture) and not tag_map.fixture.even_split
    s = map_station_count(tag_map)
    assert tag_map.fixture.markers_per_station * s == role_tag(tag_map, "marker_temp_degc").count


def test_line1_plays_the_robot_roles_with_its_own_tag_names():
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "line1_logix.yaml")
    assert role_tag(tag_map, "robot_order_seq").name == "robot_order"
    assert role_tag(tag_map, "vision_frame").address == "Vision.Frame"
    assert role_tag(tag_map, "marker_temp_degc").name == "marker_temp_degc"  # by default
    assert tag_map.fixture.station_pitch_mm == 300.0 and tag_map.fixture.zone_area_mm2 == (21600.0,)


# -- role_tag --------------------------------------------------------------------------------------
def test_role_tag_listed_default_and_claimed(tmp_path):
    text = rename(BENCH, "zone_pressure_kpa", "clamp_kpa")
    text = with_section(text, "roles:\n  zone_pressure_kpa: clamp_kpa\n  plc_heartbeat: rtcore_heartbeat_in\n")
    with pytest.raises(TagMapError):  # a tag the map lacks
        load_tag_map(write(tmp_path, text))
    text = with_section(rename(BENCH, "zone_pressure_kpa", "clamp_kpa"), "roles:\n  zone_pressure_kpa: clamp_kpa\n")
    tag_map = load_tag_map(write(tmp_path, text))
    assert role_tag(tag_map, "zone_pressure_kpa").name == "clamp_kpa"
    assert role_tag(tag_map, "marker_temp_degc").name == "marker_temp_degc"
    assert role_problems(tag_map) == []
    with pytest.raises(KeyError, match="no role 'temperatures'"):
        role_tag(tag_map, "temperatures")


def test_a_default_named_tag_listed_under_another_role_plays_only_that_one(tmp_path):
    # relief_second_kpa listed as the first relief: the second relief role is then played by none
    text = with_section(drop(BENCH, "relief_first_kpa"), "roles:\n  relief_first_kpa: relief_second_kpa\n")
    tag_map = load_tag_map(write(tmp_path, text))
    assert role_tag(tag_map, "relief_first_kpa").name == "relief_second_kpa"
    assert role_tag(tag_map, "relief_second_kpa") is None
    assert role_problems(tag_map) == []  # both reliefs are optional


# -- the roles: section, refused by load_tag_map -----------------------------------------------------
ROLE_SECTION_CASES = [
    ("roles:\n  temperatures: marker_temp_degc\n", "roles: unknown role 'temperatures'; allowed: marker_temp_degc"),
    ("roles:\n  marker_temp_degc: temps\n", "roles: marker_temp_degc names tag 'temps', which the map lacks"),
    ("roles:\n  marker_temp_degc: 7\n", "roles: marker_temp_degc is 7; allowed: the name of a tag"),
    ("roles:\n  discharge_permit: current_limit_pct\n", "is REAL; role 'discharge_permit' needs BOOL"),
    ("roles:\n  rtcore_heartbeat: plc_heartbeat\n", "role 'rtcore_heartbeat' needs a write tag owned by rtcore"),
    ("roles:\n  plc_heartbeat: rtcore_heartbeat\n", "role 'plc_heartbeat' is read by rtcore, which must not write it"),
    ("roles:\n  robot_state: vision_confidence_pct\n", "is REAL; role 'robot_state' needs an integer type"),
    ("roles:\n  coolant_base_lpm: coolant_flow_lpm\n", "role 'coolant_base_lpm' needs a write tag owned by supervisor"),
    ("roles:\n  relief_first_kpa: relief_second_kpa\n  relief_second_kpa: relief_second_kpa\n",
     "plays role 'relief_second_kpa' and role 'relief_first_kpa'; a tag plays one role"),
    ("roles: [marker_temp_degc]\n", "roles must be a mapping of role name -> tag name"),
]


@pytest.mark.parametrize("section, words", ROLE_SECTION_CASES, ids=[c[1][:40] for c in ROLE_SECTION_CASES])
def test_a_wrong_roles_section_is_refused_naming_file_and_line(tmp_path, section, words):
    text = with_section(BENCH, section)
    path = write(tmp_path, text, "roles_map.yaml")
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    hits = [p for p in caught.value.problems if words in p.message]
    assert hits, caught.value
    first_entry = line_of(text, "\nroles:") + 1 + (1 if "\n  " in section else 0)
    assert all(p.file == path and first_entry <= p.line <= first_entry + 1 for p in hits), hits
    assert str(hits[0]).startswith(f"{path}:{hits[0].line}: ")


# -- the fixture: section, refused by load_tag_map ---------------------------------------------------
def fixture_text(body: str) -> str:
    return with_section(without_fixture(BENCH), "fixture:\n" + body)


FIXTURE_CASES = [
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 0}]\n  zone_area_mm2: [0.0]\n",
     "fixture.zone_area_mm2[0] is 0.0; allowed: a finite area > 0 mm2"),
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 0}]\n  zone_area_mm2: [-5.0]\n", "zone_area_mm2[0] is -5.0"),
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 2}, {x_mm: 1, y_mm: 0, zone: 0}]\n  zone_area_mm2: [10.0, 10.0]\n",
     "fixture.markers[0].zone is 2; allowed: 0..1"),
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 0}, {x_mm: 1, y_mm: 0, zone: 0}]\n  zone_area_mm2: [10.0, 10.0]\n",
     "fixture.markers: zone(s) [1] have no marker"),
    ("  markers: [{x_mm: .nan, y_mm: 0, zone: 0}]\n  zone_area_mm2: [10.0]\n",
     "fixture.markers[0].x_mm is nan; it must be a finite number"),
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 0, z_mm: 3}]\n  zone_area_mm2: [10.0]\n", "unknown key 'z_mm'"),
    ("  zone_area_mm2: [10.0]\n", "fixture.markers is missing; it is required"),
    ("  markers: []\n  zone_area_mm2: [10.0]\n", "fixture.markers must be a non-empty list"),
    ("  station_pitch_mm: 0\n  markers: [{x_mm: 0, y_mm: 0, zone: 0}]\n  zone_area_mm2: [10.0]\n",
     "fixture.station_pitch_mm is 0; allowed: > 0 mm"),
    ("  markers: [{x_mm: 0, y_mm: 0, zone: 0}]\n  zone_area_mm2: 10.0\n", "zone_area_mm2 must be a non-empty list"),
]


@pytest.mark.parametrize("body, words", FIXTURE_CASES, ids=[c[1][:40] for c in FIXTURE_CASES])
def test_a_wrong_fixture_is_refused_naming_file_and_line(tmp_path, body, words):
    text = fixture_text(body)
    path = write(tmp_path, text)
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    hits = [p for p in caught.value.problems if words in p.message]
    assert hits, caught.value
    start = line_of(text, "fixture:")
    assert all(p.file == path and start <= p.line <= start + body.count("\n") for p in hits), hits


# -- role_problems: what the owners need ------------------------------------------------------------
def test_a_map_without_the_pressures_is_refused_naming_the_role_and_file(tmp_path):
    path = write(tmp_path, drop(BENCH, "zone_pressure_kpa"), "no_pressure.yaml")
    tag_map = load_tag_map(path)  # loads: a map is also a bus fixture ...
    problems = role_problems(tag_map)  # ... but neither process can run it
    missing = [p for p in problems if "'zone_pressure_kpa'" in p.message]
    assert len(missing) == 1 and missing[0].file == path and missing[0].line == 1
    assert "which rtcore and supervisor need; name a tag" in missing[0].message
    assert str(missing[0]).startswith(f"{path}:1: no tag plays role 'zone_pressure_kpa'")
    assert any("'zone_pressure_kpa'" in p.message for p in role_problems(tag_map, Owner.RTCORE))


def test_tags_check_refuses_a_map_without_the_pressures_naming_role_and_file(tmp_path, capsys):
    from edge.cli import main

    path = write(tmp_path, drop(BENCH, "zone_pressure_kpa"), "no_pressure.yaml")
    assert main(["tags", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1: no tag plays role 'zone_pressure_kpa'" in out
    assert main(["tags", "check", str(REPO_ROOT / "plc_tags" / "hil_logix.yaml")]) == 0


def test_a_map_holding_only_core_tags_needs_only_the_core_roles(tmp_path):
    text = BENCH
    for name in [t.name for t in load_tag_map(REPO_ROOT / "plc_tags" / "hil_logix.yaml").tags
                 if t.owner is Owner.SUPERVISOR]:
        text = drop(text, name)
    tag_map = load_tag_map(write(tmp_path, text))
    assert role_problems(tag_map) == []
    sup = role_problems(tag_map, Owner.SUPERVISOR)  # asked for the supervisor: every one of its roles
    assert {re.search(r"role '(\w+)'", p.message).group(1) for p in sup} == {
        r.name for r in ROLES if Owner.SUPERVISOR in r.required_by and r.name != "zone_pressure_kpa"}


def test_a_listed_role_on_a_missing_core_role_names_the_roles_line(tmp_path):
    text = with_section(rename(BENCH, "rtcore_heartbeat", "beat_out"), "roles:\n  plc_heartbeat: plc_heartbeat\n")
    path = write(tmp_path, text)
    problems = role_problems(load_tag_map(path))
    assert len(problems) == 1 and problems[0].line == 1 and problems[0].message.startswith(
        "no tag plays role 'rtcore_heartbeat' (the core's tick counter; the PLC's watchdog watches it), which rtcore "
        "needs; name a tag 'rtcore_heartbeat' or list the role under roles:")


def test_a_fixture_of_another_marker_count_is_refused_naming_the_fixture_line(tmp_path):
    body = ("  markers: [{x_mm: 0, y_mm: 0, zone: 0}, {x_mm: 50, y_mm: 0, zone: 1}, {x_mm: 100, y_mm: 0, zone: 1}]\n"
            "  zone_area_mm2: [15000.0, 15000.0]\n")
    text = fixture_text(body)
    path = write(tmp_path, text)
    problems = role_problems(load_tag_map(path))
    assert [(p.line, p.message) for p in problems] == [
        (line_of(text, "fixture:"), "fixture: 3 markers a station x 8 stations = 24; allowed: the 'marker_temp_degc' "
                                    f"tag's 32 elements (line {line_of(text, '- name: marker_temp_degc')})")]


def test_a_fixture_of_another_zone_count_is_refused(tmp_path):
    body = "  markers: [{x_mm: 0, y_mm: 0, zone: 0}, {x_mm: 1, y_mm: 0, zone: 0}, {x_mm: 2, y_mm: 0, zone: 0}, " \
           "{x_mm: 3, y_mm: 0, zone: 0}]\n  zone_area_mm2: [30000.0]\n"
    problems = role_problems(load_tag_map(write(tmp_path, fixture_text(body))))
    assert [p.message.split(";")[0] for p in problems] == ["fixture: 1 zones a station x 8 stations = 8"]


def test_without_a_fixture_the_even_split_is_a_warning_and_counts_must_nest(tmp_path):
    tag_map = load_tag_map(write(tmp_path, without_fixture(BENCH)))
    assert role_problems(tag_map) == []
    notes = role_notes(tag_map)
    assert len(notes) == 1 and notes[0].message.startswith("warning: no fixture: section; the core assumes the even split")
    split = station_fixture(tag_map, 8)
    assert split.even_split and split.markers_per_station == 4 and split.zones_per_station == 2
    assert [m.x_mm for m in split.markers] == [0.0, 50.0, 100.0, 150.0] and [m.zone for m in split.markers] == [0, 0, 1, 1]
    assert split.zone_area_mm2 == (EVEN_SPLIT.module_area_mm2 / 2,) * 2
    text = without_fixture(BENCH).replace("type: REAL[32]", "type: REAL[24]", 1)  # 24 markers over 16 zones
    problems = role_problems(load_tag_map(write(tmp_path, text)))
    assert [p.message for p in problems] == [
        "24 marker points do not split evenly over 16 zones (the even split a map without fixture: gets)"]
    with pytest.raises(ValueError, match="5 marker points a station do not split evenly over 2 zones"):
        even_split_fixture(5, 2)


def test_per_station_tags_that_disagree_are_refused(tmp_path):
    at = BENCH.index("name: station_safe_state")
    text = BENCH[:at] + BENCH[at:].replace("BOOL[8]", "BOOL[3]", 1)
    path = write(tmp_path, text)
    problems = role_problems(load_tag_map(path))
    assert any(p.message.startswith("the per-station tags disagree on the station count") and "station_safe_state 3"
               in p.message for p in problems), problems


@pytest.mark.parametrize("name, old, new, words", [
    ("coolant_base_lpm", "REAL[8]", "REAL[4]", "has 4 elements; role 'coolant_base_lpm' needs one per station (8)"),
    ("station_voltage_v", "REAL[8]", "REAL[16]", "has 16 elements; role 'station_voltage_v' needs one per station (8)"),
    ("vision_frame", "DINT[4]", "DINT[5]", "role 'vision_frame' needs one per inbox slot (4"),
    ("vision_terminal_x_mm", "REAL[8]", "REAL[4]", "role 'vision_terminal_x_mm' needs two per inbox slot (8)"),
    ("plc_heartbeat", "type: DINT", "type: REAL", "is REAL; role 'plc_heartbeat' needs an integer type"),
    ("rtcore_heartbeat", "type: DINT", "type: DINT[2]", "role 'rtcore_heartbeat' needs one element"),
])
def test_a_default_named_tag_of_the_wrong_shape_or_type_is_refused_naming_its_line(tmp_path, name, old, new, words):
    at = BENCH.index(f"name: {name}\n")
    text = BENCH[:at] + BENCH[at:].replace(old, new, 1)
    path = write(tmp_path, text)
    tag_map = load_tag_map(path)
    hits = [p for p in role_problems(tag_map) if words in p.message]
    assert hits and hits[0].tag == name and hits[0].line == line_of(text, f"- name: {name}\n"), role_problems(tag_map)
