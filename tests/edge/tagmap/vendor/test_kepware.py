"""Kepware tag CSV in and out (edge/tagmap/vendor/kepware.py): the realistic examples of
plc_tags/examples/vendor/, the lines `tags check` names, and the round trip Kepware -> map -> Kepware
field by field."""

from __future__ import annotations

import csv
import io

import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.tagmap import DataType, ModbusTable, load_tag_map
from edge.tagmap.checker import TagMapError
from edge.tagmap.model import Protocol
from edge.tagmap.vendor.draft import write_draft
from edge.tagmap.vendor.kepware import COLUMNS, _modbus_address, read_kepware, write_kepware

from .fill import complete
from .test_studio5000 import FIXTURE

pytestmark = pytest.mark.unit

EXAMPLES = REPO_ROOT / "plc_tags" / "examples" / "vendor"
MODBUS_CSV = EXAMPLES / "line3_kepware_modbus.csv"
LOGIX_CSV = EXAMPLES / "line4_kepware_logix.csv"
SHARED = ("Tag Name", "Address", "Data Type", "Client Access", "Scan Rate", "Scaling", "Raw Low", "Raw High",
          "Scaled Low", "Scaled High", "Eng Units", "Description", "Negate Value")
"""The Kepware columns the map has a field for; the others are reported at import."""


def _rows(text: str) -> dict[str, dict]:
    return {row["Tag Name"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


@pytest.mark.parametrize("text, expected", [
    ("400001", (ModbusTable.HOLDING_REGISTER, 1, None, None, 1)),
    ("40001", (ModbusTable.HOLDING_REGISTER, 1, None, None, 1)),
    ("300010", (ModbusTable.INPUT_REGISTER, 10, None, None, 1)),
    ("000005", (ModbusTable.COIL, 5, None, None, 1)),
    ("100001", (ModbusTable.DISCRETE_INPUT, 1, None, None, 1)),
    ("400020.3", (ModbusTable.HOLDING_REGISTER, 20, 3, None, 1)),
    ("400001[10]", (ModbusTable.HOLDING_REGISTER, 1, None, None, 10)),
    ("400001 [2][5]", (ModbusTable.HOLDING_REGISTER, 1, None, None, 10)),
    ("400701.20H", (ModbusTable.HOLDING_REGISTER, 701, None, 20, 1)),
    ("465536", (ModbusTable.HOLDING_REGISTER, 65536, None, None, 1)),
])
def test_kepware_modbus_addresses(text, expected):
    assert _modbus_address(text) == expected


@pytest.mark.parametrize("text", ["500001", "400000", "465537", "400001.16", "4000x1", "", "Tag.5"])
def test_kepware_addresses_that_are_none(text):
    assert _modbus_address(text) is None


def test_the_modbus_example_imports_every_tag_it_can_and_names_the_rest():
    draft = read_kepware(MODBUS_CSV)
    report = draft.report.as_dict()
    assert draft.protocol is Protocol.MODBUS
    assert report["vendor_rows"] == 313
    assert len(draft.tags) == 309
    assert {s["name"] for s in report["skipped"]} == {
        "Station01.debug_byte", "Station02.debug_byte", "Line.coolant_flow_total_lpm", "Line.firmware_bcd"}
    assert report["unsupported_types"] == {"Char": {"count": 2, "names": ["Station01.debug_byte", "Station02.debug_byte"]},
                                           "BCD": {"count": 1, "names": ["Line.firmware_bcd"]}}
    assert report["unmapped_columns"]["Scaled Data Type"] == {"rows": 75, "values": {"Float": 63, "Double": 12}}
    assert report["unmapped_columns"]["Clamp Low"]["rows"] == 12
    assert report["unmapped_columns"]["Respect Data Type"] == {"rows": 1, "values": {"0": 1}}
    assert draft.scan_groups == {"scan_100ms": 100, "scan_250ms": 250, "scan_500ms": 500, "scan_1000ms": 1000,
                                 "scan_5000ms": 5000}
    tags = {t.name: t for t in draft.tags}
    marker = tags["Core__marker_temp_degc"]
    assert (marker.address, marker.type, marker.count, marker.access) == ("input_register:0", "REAL", 36, "read")
    assert (tags["Core__discharge_permit"].address, tags["Core__discharge_permit"].type_text) == ("coil:0", "BOOL[12]")
    door = tags["Station12__alarm_door"]
    assert (door.address, door.type) == ("input_register:439.3", "BOOL")
    setpoint = tags["Station01__current_setpoint_a"]
    assert setpoint.type == "UINT" and setpoint.access == "write" and setpoint.unit == "A"
    assert setpoint.scaling == pytest.approx((0.01, 0.0)) and setpoint.limits == (0.0, 100.0)
    vacuum = tags["Line__vacuum_kpa"]  # Negate Value 1: the sign of the gain
    assert vacuum.scaling == pytest.approx((-0.1, -0.0)) and vacuum.limits == (-100.0, -0.0)
    assert tags["Station03__runtime_ms"].type == "ULINT" and tags["Station03__energy_wh"].type == "LREAL"
    assert tags["Station03__charge_mah"].type == "LINT" and tags["Station03__cycle_count"].type == "UDINT"
    recipe = tags["Line__recipe_name"]
    assert (recipe.address, recipe.type_text, recipe.access) == ("holding_register:620", "STRING(20)", "write")
    assert tags["Station01__status_word"].unit is None  # a number without Eng Units: the user says its unit
    assert tags["Station01__door_closed"].unit == ""
    assert draft.roles.get("marker_temp_degc") == "Core__marker_temp_degc"


@pytest.mark.parametrize("source", [MODBUS_CSV, LOGIX_CSV], ids=["modbus", "logix"])
def test_tags_check_names_the_lines_the_import_lists(tmp_path, source):
    draft = read_kepware(source)
    draft.host = "10.0.0.5"
    text, missing = write_draft(draft)
    path = tmp_path / "map.yaml"
    path.write_text(text)
    first_tag_line = text.splitlines().index("tags:") + 2
    with pytest.raises(TagMapError) as refused:
        load_tag_map(path)
    checked = {(p.line, p.tag) for p in refused.value.problems if p.line >= first_tag_line}
    assert checked == {(m.line, m.tag) for m in missing}
    assert all("owner" in m.fields for m in missing if m.tag not in draft.roles.values())
    assert not any("owner" in m.fields for m in missing if m.tag in draft.roles.values())
    # with owner, unit and access given, what is left (limits, safe values) is again on the listed lines
    for tag in draft.tags:
        tag.owner, tag.unit = "supervisor", "" if tag.unit is None else tag.unit
    text, missing = write_draft(draft)
    path.write_text(text)
    with pytest.raises(TagMapError) as refused:
        load_tag_map(path)
    assert {(p.line, p.tag) for p in refused.value.problems if p.line >= first_tag_line} == {
        (m.line, m.tag) for m in missing}
    assert {f for m in missing for f in m.fields} == {"limits", "safe_value"}


@pytest.mark.parametrize("source", [MODBUS_CSV, LOGIX_CSV], ids=["modbus", "logix"])
def test_kepware_to_map_to_kepware_loses_nothing_both_sides_have(tmp_path, capsys, source):
    draft = complete(read_kepware(source))
    draft.fixture = FIXTURE
    path = tmp_path / "map.yaml"
    path.write_text(write_draft(draft)[0])
    tag_map = load_tag_map(path)
    if source is MODBUS_CSV:  # the whole line: filled in, the map passes tags check, roles and all
        assert main(["tags", "check", str(path)]) == 0, capsys.readouterr().out
    text, report = write_kepware(tag_map)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    before, after = _rows(source.read_text()), _rows(text)
    skipped = {s["name"] for s in draft.report.skipped}
    assert set(after) == set(before) - skipped
    compared = 0
    for name, row in after.items():
        original = before[name]
        for column in SHARED:
            want, got = original[column], row[column]
            if column in ("Raw Low", "Raw High", "Scaled Low", "Scaled High") and want:
                assert float(got) == pytest.approx(float(want), rel=1e-12, abs=1e-12), (name, column)
            else:
                assert got == want, (name, column)
            compared += 1
    assert compared == len(after) * len(SHARED) > 13 * 100
    assert report["not_carried"]["owner"]["count"] == len(tag_map.tags)


def test_a_shipped_map_to_kepware_and_back(tmp_path):
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    text, report = write_kepware(tag_map)
    csv_path = tmp_path / "hil.csv"
    csv_path.write_text(text, newline="")
    draft = read_kepware(csv_path)
    assert not draft.report.skipped
    back = {t.name: t for t in draft.tags}
    periods = {g.name: g.period_ms for g in tag_map.scan_groups}
    for tag in tag_map.tags:
        got = back[tag.name]
        assert got.address == str(tag.address) and got.count == tag.count
        assert got.type == tag.data_type.value and got.access == tag.access.value
        assert draft.scan_groups[got.scan_group] == periods[tag.scan_group]
        assert got.description == tag.description
        if (tag.scaling.gain, tag.scaling.offset) != (1.0, 0.0):
            assert got.scaling == pytest.approx((tag.scaling.gain, tag.scaling.offset), abs=1e-9)
            if tag.limits is not None:
                assert got.limits == pytest.approx((tag.limits.min, tag.limits.max))
            assert got.unit == tag.unit
    assert report["not_carried"]["byte_order"]["names"] == [t.name for t in tag_map.tags
                                                             if t.byte_order.value != "ABCD" and t.data_type.registers >= 2]


def test_a_csv_that_is_not_kepwares_names_file_and_line(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,value\nx,1\n")
    with pytest.raises(ValueError, match=r"other.csv:1: no 'Tag Name' column"):
        read_kepware(path)


def test_types_the_map_has_no_counterpart_for_are_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(",".join(COLUMNS) + "\n" + "\n".join(
        f'"T{i}","4000{i + 1}",{t},1,RO,100,,,,,,,,,,"",' for i, t in enumerate(
            ["Byte", "LBCD", "Date", "Word", "Frobnicate", "Word Array", "String Array"])) + "\n")
    draft = read_kepware(path, Protocol.MODBUS)
    assert [t.name for t in draft.tags] == ["T3", "T5"]
    assert set(draft.report.unsupported_types) == {"Byte", "LBCD", "Date", "Frobnicate", "String Array"}
    assert draft.tags[0].type == "UINT" and DataType(draft.tags[0].type) is DataType.UINT


def test_a_semicolon_separated_export_reads_the_same(tmp_path):
    rows = list(csv.reader(io.StringIO(MODBUS_CSV.read_text(), newline="")))
    path = tmp_path / "semicolon.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    same, other = read_kepware(MODBUS_CSV), read_kepware(path)
    assert [(t.name, t.address, t.type_text, t.scaling, t.limits) for t in other.tags] == \
        [(t.name, t.address, t.type_text, t.scaling, t.limits) for t in same.tags]


def test_export_quotes_what_a_csv_must(tmp_path):
    source = REPO_ROOT / "plc_tags" / "line2_modbus.yaml"
    text = source.read_text().replace("unit: degC", 'unit: "deg C, 0.1"', 1)
    path = tmp_path / "m.yaml"
    path.write_text(text)
    tag_map = load_tag_map(path)
    rows = _rows(write_kepware(tag_map)[0])
    assert [r["Eng Units"] for r in rows.values()] == [t.unit for t in tag_map.tags]
    assert "deg C, 0.1" in [t.unit for t in tag_map.tags]
