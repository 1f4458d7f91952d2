"""Studio 5000 tag CSV and L5X imports (edge/tagmap/vendor/studio5000.py, logix.py) on the realistic
examples of plc_tags/examples/vendor/: one controller exported both ways gives the expected tags."""

from __future__ import annotations

import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.tagmap import load_tag_map
from edge.tagmap.checker import TagMapError
from edge.tagmap.model import Owner, Protocol
from edge.tagmap.vendor.draft import write_draft
from edge.tagmap.vendor.studio5000 import read_l5x, read_studio5000, read_studio_csv

from .fill import complete

pytestmark = pytest.mark.unit

EXAMPLES = REPO_ROOT / "plc_tags" / "examples" / "vendor"
CSV = EXAMPLES / "line4_studio5000_tags.csv"
L5X = EXAMPLES / "line4.L5X"
S = 12
STATION_MEMBERS = 3 * 6 + 1 + 1 + 1 + 1 + 5  # 3 cells x (Temp, Volt, Ok, Fault, Alarms, Hist), Permit, Pressure,
# LoadedId, Name, the TIMER's PRE ACC EN TT DN


def _tags(draft):
    return {t.name: t for t in draft.tags}


def test_the_tag_csv_gives_the_controller_and_program_tags():
    draft = read_studio_csv(CSV)
    assert draft.protocol is Protocol.LOGIX and draft.name == "line4_studio5000_tags"
    report = draft.report.as_dict()
    assert report["vendor_rows"] == 66
    assert {s["name"] for s in report["skipped"]} == {
        "Station", "Robot", "DL4", "DebugByte", "InternalScratch", "Pid1", "Program:Discharge.Seq"}
    assert report["unsupported_types"]["UDT_Robot"]["names"] == ["Robot", "Program:Discharge.Seq"]
    assert "SINT" in report["unsupported_types"] and "AOI_PIDE_Lite" in report["unsupported_types"]
    tags = _tags(draft)
    assert len(tags) == 61
    relief = tags["Discharge_Relief"]
    assert (relief.address, relief.type_text, relief.access) == ("Program:Discharge.Relief", "REAL[16]", None)
    assert (tags["Robot_StepNo"].address, tags["Discharge_StepNo"].address) == ("Program:Robot.StepNo",
                                                                                "Program:Discharge.StepNo")
    assert tags["Map2D"].type_text == "REAL[20]"  # DINT[4,5]-style: read flat
    assert [tags[f"BatchCount_{m}"].type for m in ("PRE", "ACC", "CU", "CD", "DN", "OV", "UN")] == \
        ["DINT", "DINT", "BOOL", "BOOL", "BOOL", "BOOL", "BOOL"]
    assert tags["plc_heartbeat"].access == "read"  # ExternalAccess Read Only
    assert tags["MaxStations"].access == "read"  # a constant
    assert tags["FirmwareRev"].access == "read"
    assert (tags["RecipeName"].type, tags["RecipeName"].unit) == ("STRING", "")
    assert [tags[n].type for n in ("EnergyTotal", "RuntimeNs", "Serial", "Code", "CounterBig")] == \
        ["LREAL", "LINT", "UDINT", "UINT", "ULINT"]
    assert tags["StatusBit5"].type is None and tags["StatusBit5"].address == "StatusBit5"  # its UDT is not in a CSV
    assert tags["station_safe_state"].description == "held safe, one a station"  # from its COMMENT row
    assert tags["discharge_permit"].description == "the core's permit per station"
    assert report["unmapped_columns"]["COMMENT (an operand not imported as its own tag)"]["rows"] == 3


def test_the_l5x_expands_udts_arrays_of_them_bits_and_aliases():
    draft = read_l5x(L5X)
    assert draft.name == "Line4_CLX"
    tags = _tags(draft)
    assert len(tags) == 20 + S * STATION_MEMBERS + 6 + 2 + 7 + 9 + 3 + (3 + 6) + 16 + 3  # controller atomics,
    # Station[12], Robot, DL4, BatchCount, 9 more atomics, 3 aliases; Discharge: Relief, StepNo, ZoneOk + Seq
    # (UDT_Robot); Cell: the robot's and camera's 16; Robot: 3
    cell = tags["Station_11_Cells_2_Hist"]
    assert (cell.address, cell.type_text) == ("Station[11].Cells[2].Hist", "REAL[4]")
    ok = tags["Station_4_Cells_0_Ok"]  # a BIT member on its hidden SINT
    assert (ok.address, ok.type, ok.unit) == ("Station[4].Cells[0].Ok", "BOOL", "")
    assert tags["Station_0_Permit"].type == "BOOL" and tags["Station_0_Name"].type == "STRING"
    assert tags["Station_0_Tmr_DN"].address == "Station[0].Tmr.DN"
    assert tags["DL4_In_Status"].address == "DL4.In.Status" and tags["DL4_In_Status"].access == "read"
    assert (tags["StatusBit5"].type, tags["CellTemp7"].type, tags["AirPressureAi"].type) == ("BOOL", "REAL", None)
    assert tags["Robot_Busy"].type == "BOOL" and tags["Discharge_Seq_Busy"].address == "Program:Discharge.Seq.Busy"
    assert tags["Station_0_Cells_1_Temp"].description == "the stations - the module's cells - cell temperature, degC"
    skipped = {s["name"]: s["reason"] for s in draft.report.skipped}
    assert set(skipped) == {"DebugByte", "InternalScratch", "Pid1", "OrderIn"}
    assert "InOut" in skipped["OrderIn"] and "ExternalAccess None" in skipped["InternalScratch"]
    assert any("hidden UDT members" in n and n.startswith(f"{S * 3 + S + 1 + 1} ") for n in draft.report.notes)
    # the role tags, by their default names, get the role's owner and access
    assert (tags["marker_temp_degc"].owner, tags["marker_temp_degc"].access) == ("rtcore", "read")
    assert (tags["rtcore_heartbeat"].owner, tags["rtcore_heartbeat"].access) == ("rtcore", "write")
    assert tags["Robot_Cmd"].owner is None and tags["Robot_Cmd"].access is None


def test_both_exports_of_one_controller_agree_where_the_csv_knows():
    from_csv, from_l5x = _tags(read_studio_csv(CSV)), _tags(read_l5x(L5X))
    for name, tag in from_csv.items():
        other = from_l5x[name]
        assert (tag.address, tag.type_text or other.type_text, tag.access) == (other.address, other.type_text,
                                                                                other.access), name
    assert set(from_l5x) - set(from_csv) >= {"Station_0_Cells_0_Temp", "Robot_OrderSeq", "DL4_In_Value"}


FIXTURE = {"station_pitch_mm": 250, "markers": [{"x_mm": 25, "y_mm": 50, "zone": 0}, {"x_mm": 75, "y_mm": 100, "zone": 0},
                                                {"x_mm": 125, "y_mm": 150, "zone": 1}],
           "zone_area_mm2": [15000, 15000]}


def test_the_imported_l5x_once_filled_passes_tags_check(tmp_path, capsys):
    """What the user adds: owners, units, limits, safe values, a scan group, the endpoint, the fixture."""
    draft = complete(read_l5x(L5X))
    draft.fixture = FIXTURE
    draft.tags = [t for t in draft.tags if t.name != "AirPressureAi"]  # an I/O alias of unknown type: the user's
    path = tmp_path / "line4.yaml"
    path.write_text(write_draft(draft)[0])
    tag_map = load_tag_map(path)
    assert len(tag_map.tags) == len(draft.tags)
    assert tag_map.tag("Discharge_Relief").address == "Program:Discharge.Relief"
    assert tag_map.tag("marker_temp_degc").owner is Owner.RTCORE
    assert tag_map.tag("Cell_robot_ack_seq").owner is Owner.SUPERVISOR
    assert main(["tags", "check", str(path)]) == 0, capsys.readouterr().out
    assert f"{path}: OK, {len(draft.tags)} tags" in capsys.readouterr().out


def test_the_csv_reader_finds_the_kind_of_file(tmp_path):
    assert read_studio5000(L5X).name == "Line4_CLX"
    assert read_studio5000(CSV).name == "line4_studio5000_tags"
    other = tmp_path / "other.csv"
    other.write_text("Tag Name,Address\nx,400001\n")
    with pytest.raises(ValueError, match=r"other.csv:1: no 'TYPE,SCOPE,NAME"):
        read_studio5000(other)


@pytest.mark.parametrize("text, message", [
    ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<RSLogix5000Content/>\n', r"bomb.L5X:2: a DOCTYPE"),
    ("<RSLogix5000Content>\n<Controller>\n</RSLogix5000Content>\n", r"bomb.L5X:3: not well-formed XML"),
    ("<Other/>\n", r"bomb.L5X:1: no RSLogix5000Content/Controller"),
])
def test_an_l5x_that_is_not_one_is_refused_with_its_line(tmp_path, text, message):
    path = tmp_path / "bomb.L5X"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_studio5000(path)


def test_a_udt_array_too_large_to_expand_is_skipped_and_named(tmp_path):
    path = tmp_path / "big.L5X"
    path.write_text(L5X.read_text().replace('Name="Station" TagType="Base" DataType="UDT_Station" Dimensions="12"',
                                            'Name="Station" TagType="Base" DataType="UDT_Station" Dimensions="400"'))
    draft = read_l5x(path)
    assert not any(t.name.startswith("Station_") for t in draft.tags)
    assert any(s["name"] == "Station" and f"400 elements of UDT_Station: {400 * STATION_MEMBERS} map tags" in s["reason"]
               for s in draft.report.skipped)


def test_missing_fields_are_on_the_lines_tags_check_names(tmp_path):
    draft = read_l5x(L5X)
    text, missing = write_draft(draft)
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(TagMapError) as refused:
        load_tag_map(path)
    first_tag_line = text.splitlines().index("tags:") + 2
    assert {(p.line, p.tag) for p in refused.value.problems if p.line >= first_tag_line} == {
        (m.line, m.tag) for m in missing if m.tag}
    assert {(p.line, p.tag) for p in refused.value.problems if p.line < first_tag_line} >= {(1, None)}  # scan_groups


def test_an_l5x_with_localized_descriptions(tmp_path):
    path = tmp_path / "loc.L5X"
    path.write_text('<?xml version="1.0"?>\n<RSLogix5000Content SchemaRevision="1.0">\n<Controller Name="C1">\n<Tags>\n'
                    '<Tag Name="Flow" TagType="Base" DataType="REAL" Radix="Float" ExternalAccess="Read Only">\n'
                    '<Description>\n<LocalizedDescription Lang="en-US">\n<![CDATA[coolant  flow,\n L/min]]>\n'
                    '</LocalizedDescription>\n</Description>\n</Tag>\n</Tags>\n</Controller>\n</RSLogix5000Content>\n')
    (tag,) = read_l5x(path).tags
    assert (tag.name, tag.address, tag.type, tag.access, tag.description, tag.origin) == (
        "Flow", "Flow", "REAL", "read", "coolant flow, L/min", f"{path}:5")
