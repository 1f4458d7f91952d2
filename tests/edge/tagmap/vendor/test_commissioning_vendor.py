"""Vendor files in shapes the shipped examples do not have, as an engineer's own exports come:
an L5X with a two-dimensional array of a UDT, a Kepware CSV without the optional columns, and the
export of a map with `roles:` and `fixture:`. Nothing written that `tags check` then refuses,
nothing dropped silently, nothing reported that was not there."""

from __future__ import annotations

import json

import pytest
import yaml

from edge import REPO_ROOT
from edge.cli import main
from edge.tagmap.addresses import parse_logix_path

pytestmark = pytest.mark.integration

L5X = """\
<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<RSLogix5000Content SchemaRevision="1.0" SoftwareRevision="35.00" TargetName="Line7" TargetType="Controller">
<Controller Use="Target" Name="Line7">
<DataTypes>
<DataType Name="UDT_C" Family="NoFamily" Class="User"><Members>
<Member Name="Val" DataType="REAL" Dimension="0" Radix="Float" Hidden="false" ExternalAccess="Read/Write"/>
</Members></DataType>
</DataTypes>
<Tags>
<Tag Name="Grid" TagType="Base" DataType="UDT_C" Dimensions="2 3" ExternalAccess="Read/Write"/>
<Tag Name="Row" TagType="Base" DataType="UDT_C" Dimensions="2" ExternalAccess="Read/Write"/>
<Tag Name="Flat" TagType="Base" DataType="DINT" Dimensions="4 5" ExternalAccess="Read/Write"/>
</Tags>
</Controller>
</RSLogix5000Content>
"""


def test_a_two_dimensional_udt_array_is_skipped_named_not_written_as_a_path_the_map_refuses(tmp_path, capsys):
    source, out = tmp_path / "line7.L5X", tmp_path / "line7.yaml"
    source.write_text(L5X)
    main(["tags", "import", "studio5000", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    tags = yaml.safe_load(out.read_text())["tags"]
    for tag in tags:
        parse_logix_path(tag["address"])  # was Grid[0,0].Val: refused by tags check
    assert [(t["address"], t["type"]) for t in tags] == [("Row[0].Val", "REAL"), ("Row[1].Val", "REAL"),
                                                          ("Flat", "DINT[20]")]
    (skipped,) = result["skipped"]
    assert skipped["name"] == "Grid" and skipped["origin"].endswith("line7.L5X:10")
    assert "2 dimensions (2 x 3)" in skipped["reason"]


def test_a_kepware_csv_without_client_access_reports_no_column_it_does_not_have(tmp_path, capsys):
    source, out = tmp_path / "min.csv", tmp_path / "min.yaml"
    source.write_text('Tag Name,Address,Data Type\r\n"Core.Beat","300025",Long\r\n"Ipc.Beat","400001",Long\r\n')
    main(["tags", "import", "kepware", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["unmapped_columns"] == {}  # was: 'Client Access' not carried, '' x2
    assert result["missing_count"]["access"] == 2  # what the file lacks is what the map misses


def test_the_export_names_roles_and_fixture_as_not_carried(tmp_path, capsys):
    source = REPO_ROOT / "plc_tags" / "line1_logix.yaml"  # roles: (17) and fixture:
    main(["tags", "export", "kepware", str(source), "--out", str(tmp_path / "line1.csv"), "--json"])
    result = json.loads(capsys.readouterr().out)
    roles = result["not_carried"]["roles"]
    assert roles["count"] == 17 and "robot_order_seq = robot_order" in roles["names"]
    assert result["not_carried"]["fixture"]["count"] == 1
    main(["tags", "export", "kepware", str(source), "--out", str(tmp_path / "line1.csv")])
    text = capsys.readouterr().out
    assert "no Kepware column for roles: 17" in text and "no Kepware column for fixture: 1" in text


STUDIO_CSV = (
    'remark,"CSV-Import-Export"\r\n0.3\r\nTYPE,SCOPE,NAME,DESCRIPTION,DATATYPE,SPECIFIER,ATTRIBUTES\r\n'
    'TAG,Main,MixedCase,"","dint","","(RADIX := Decimal, ExternalAccess := Read/Write)"\r\n'
    'TAG,,Extra,"","REAL","","(RADIX := Float, ExternalAccess := Read/Write)",EXTRA_COL\r\n'
)


def test_a_studio5000_csv_lowercase_type_is_read_and_a_cell_past_the_header_is_reported(tmp_path, capsys):
    source, out = tmp_path / "hand.csv", tmp_path / "hand.yaml"
    source.write_text(STUDIO_CSV, newline="")
    main(["tags", "import", "studio5000", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert [(t["address"], t["type"]) for t in yaml.safe_load(out.read_text())["tags"]] == [
        ("Program:Main.MixedCase", "DINT"), ("Extra", "REAL")]  # 'dint' was skipped as an undefined type
    assert result["skipped"] == []
    assert result["unmapped_columns"]["(a cell beyond the header's columns)"]["values"] == {"EXTRA_COL": 1}


def test_a_kepware_cell_past_the_header_is_reported(tmp_path, capsys):
    source, out = tmp_path / "k.csv", tmp_path / "k.yaml"
    source.write_text('Tag Name,Address,Data Type\r\n"Core.Beat","300025",Long,historian\r\n', newline="")
    main(["tags", "import", "kepware", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["unmapped_columns"]["(a cell beyond the header's columns)"]["values"] == {"historian": 1}


def test_two_tags_ending_in_a_roles_name_are_named_not_guessed(tmp_path, capsys):
    source, out = tmp_path / "two.csv", tmp_path / "two.yaml"
    source.write_text('Tag Name,Address,Data Type,Client Access,Scan Rate\r\n'
                      '"A.marker_temp_degc","300001[4]",Float Array,RO,100\r\n'
                      '"B.marker_temp_degc","300101[4]",Float Array,RO,100\r\n', newline="")
    main(["tags", "import", "kepware", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert "marker_temp_degc" not in result["roles"]
    assert ("role marker_temp_degc: 2 tags end in its name (A__marker_temp_degc, B__marker_temp_degc); "
            "list the one that plays it under roles:") in result["notes"]


def test_the_export_refuses_to_write_over_the_map_it_exports(tmp_path, capsys):
    path = tmp_path / "line1.yaml"
    text = (REPO_ROOT / "plc_tags" / "line1_logix.yaml").read_text()
    path.write_text(text)
    assert main(["tags", "export", "kepware", str(path), "--out", str(path)]) == 2
    assert path.read_text() == text  # was overwritten by the CSV
    assert f"--out {path} is the map itself; write the CSV to another file" in capsys.readouterr().err


def test_a_kepware_file_imported_with_the_other_protocol_says_which(tmp_path, capsys):
    source, out = tmp_path / "modbus.csv", tmp_path / "m.yaml"
    source.write_text('Tag Name,Address,Data Type\r\n"Core.Beat","300025",Long\r\n"Ipc.Beat","400001",Long\r\n', newline="")
    assert main(["tags", "import", "kepware", str(source), "--out", str(out), "--protocol", "logix", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["tag_count"] == 0 and len(result["skipped"]) == 2
    assert ("no row imported as logix, and 2 of 2 addresses are Modbus: the file is a modbus device's; import it "
            "with --protocol modbus") in result["notes"]
    assert any("tags must be a non-empty list" in p["message"] for p in result["check_problems"]), result


def test_a_kepware_logix_path_the_map_refuses_is_skipped_named(tmp_path, capsys):
    source, out = tmp_path / "grid.csv", tmp_path / "grid.yaml"
    source.write_text('Tag Name,Address,Data Type,Client Access\r\n"G","Grid[0,1].Val",Float,RO\r\n'
                      '"OK","Data[2]",Long,RO\r\n', newline="")
    main(["tags", "import", "kepware", str(source), "--out", str(out), "--protocol", "logix", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert [t["address"] for t in yaml.safe_load(out.read_text())["tags"]] == ["Data[2]"]  # Grid[0,1].Val was written
    (skipped,) = result["skipped"]
    assert skipped["name"] == "G" and skipped["origin"].endswith("grid.csv:2")
    assert skipped["reason"].startswith("the map cannot address it: address 'Grid[0,1].Val'")


def nested_l5x(levels: int, members: int) -> str:
    """UDT U0 of `members` REALs, U(k) of `members` U(k-1)s, and one tag of the outermost."""
    types = ['<DataType Name="U0" Family="NoFamily" Class="User"><Members>' + "".join(
        f'<Member Name="V{i}" DataType="REAL" Dimension="0" Hidden="false" ExternalAccess="Read/Write"/>'
        for i in range(members)) + "</Members></DataType>"]
    for k in range(1, levels):
        types.append(f'<DataType Name="U{k}" Family="NoFamily" Class="User"><Members>' + "".join(
            f'<Member Name="M{i}" DataType="U{k - 1}" Dimension="0" Hidden="false" ExternalAccess="Read/Write"/>'
            for i in range(members)) + "</Members></DataType>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<RSLogix5000Content TargetName="X" TargetType="Controller">\n'
            '<Controller Use="Target" Name="X">\n<DataTypes>\n' + "\n".join(types) + "\n</DataTypes>\n<Tags>\n"
            f'<Tag Name="Big" TagType="Base" DataType="U{levels - 1}" ExternalAccess="Read/Write"/>\n'
            "</Tags>\n</Controller>\n</RSLogix5000Content>\n")


def test_nested_udts_are_counted_once_a_type(tmp_path):
    """5 UDTs of 10 members, each of the one before: 10^5 map tags. Counting member by member
    took 10^5 steps (7 levels: 8 s; 9 levels, a 9 kB L5X: minutes); counted once a type, 5 steps."""
    from edge.tagmap.vendor.logix import LogixTags
    from edge.tagmap.vendor.studio5000 import read_studio5000

    counted = []
    original = LogixTags._leaves

    def counting(self, datatype, dims, depth=0):
        counted.append(datatype)
        return original(self, datatype, dims, depth)

    source = tmp_path / "nested.L5X"
    source.write_text(nested_l5x(5, 10))  # counted member by member: 111 111 steps
    LogixTags._leaves = counting
    try:
        draft = read_studio5000(source)
    finally:
        LogixTags._leaves = original
    assert draft.tags == [] and len(counted) < 200, len(counted)
    (skipped,) = draft.report.skipped
    assert skipped["name"] == "Big" and "1 elements of U4: 100000 map tags, more than 4096" in skipped["reason"]


def test_an_l5x_that_would_pass_20000_map_tags_stops_at_whole_tags_named(tmp_path):
    """Six tags of a UDT of 64 x 64 members: 24 576 map tags (60 such tags, a 16 kB L5X, made
    245 760: 14 s, 580 MB and a 13.5 MB map no loader reads)."""
    from edge.tagmap.vendor.studio5000 import read_studio5000

    text = nested_l5x(2, 64).replace(
        '<Tag Name="Big" TagType="Base" DataType="U1" ExternalAccess="Read/Write"/>',
        "".join(f'<Tag Name="T{i}" TagType="Base" DataType="U1" ExternalAccess="Read/Write"/>\n' for i in range(6)))
    source = tmp_path / "wide.L5X"
    source.write_text(text)
    draft = read_studio5000(source)
    assert len(draft.tags) == 4 * 4096 and {t.address.split(".")[0] for t in draft.tags} == {"T0", "T1", "T2", "T3"}
    assert [s["name"] for s in draft.report.skipped] == ["T4", "T5"]
    assert "4096 map tags more would pass 20000 in all" in draft.report.skipped[0]["reason"]


def test_an_l5x_member_comment_is_its_map_tags_description(tmp_path, capsys):
    text = L5X.replace(
        '<Tag Name="Row" TagType="Base" DataType="UDT_C" Dimensions="2" ExternalAccess="Read/Write"/>',
        '<Tag Name="Row" TagType="Base" DataType="UDT_C" Dimensions="2" ExternalAccess="Read/Write">'
        '<Description><![CDATA[the row]]></Description><Comments>'
        '<Comment Operand="[1].VAL"><![CDATA[second cell, degC]]></Comment>'
        '<Comment Operand=".Nope"><![CDATA[a typo]]></Comment></Comments></Tag>')
    source, out = tmp_path / "comments.L5X", tmp_path / "comments.yaml"
    source.write_text(text)
    main(["tags", "import", "studio5000", str(source), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    described = {t["address"]: t.get("description") for t in yaml.safe_load(out.read_text())["tags"]}
    assert described["Row[1].Val"] == "second cell, degC" and described["Row[0].Val"] == "the row"  # was dropped
    assert result["unmapped_columns"]["Comment (an operand not imported as its own tag)"]["values"] == {"Row.Nope": 1}
