"""Tag maps with the wider types and addresses: UINT .. LREAL, STRING, bits of registers and of
Logix integers, program scope, UDT members, I/O module tags, the 4xxxx/400001 notation; every
refusal names file, line, tag and what is allowed; overlaps on Logix as on Modbus."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.tagmap import DataType, ModbusAddress, ModbusTable, TagMapError, load_tag_map
from edge.tagmap.addresses import parse_logix_path, parse_modbus_address

pytestmark = pytest.mark.unit

HEAD = """\
connection:
  name: t
  protocol: {protocol}
  endpoint: {{host: 127.0.0.1, port: 502}}
  timeout_s: 0.2
scan_groups:
  fast: 100
tags:
"""


def tag(name: str, address: str, data_type: str, access: str = "read", **extra: str) -> str:
    lines = [f"  - name: {name}", f"    address: {address}", f"    type: {data_type}", f"    access: {access}",
             "    owner: rtcore", '    unit: ""', "    scan_group: fast"]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def write_map(tmp_path: Path, protocol: str, *tags: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(HEAD.format(protocol=protocol) + "".join(tags))
    return path


def problems(tmp_path: Path, protocol: str, *tags: str) -> list[str]:
    with pytest.raises(TagMapError) as info:
        load_tag_map(write_map(tmp_path, protocol, *tags))
    return [str(p) for p in info.value.problems]


def line_of(text_tags: list[str], index: int) -> int:
    """The file line of tag `index` (HEAD is 8 lines)."""
    return 9 + sum(t.count("\n") for t in text_tags[:index])


def assert_refused(tmp_path, protocol, tags: list[str], index: int, name: str, words: str):
    """Refused with `words`, at a line of the tag's entry (the field's own line where it has one)."""
    found = problems(tmp_path, protocol, *tags)
    first = line_of(tags, index)
    lines = range(first, first + tags[index].count("\n"))
    starts = [f"{tmp_path / 'map.yaml'}:{line}: tag {name!r}: " for line in lines]
    assert any(p.startswith(start) and words in p for p in found for start in starts), f"{words!r} not in {found}"


# -- types and addresses that load ------------------------------------------------------------------
def test_every_new_type_and_address_loads_on_modbus(tmp_path):
    tags = [
        tag("count_u16", "input_register:0", "UINT"),
        tag("count_u32", "input_register:1", "UDINT", byte_order="CDAB"),
        tag("energy_wh", "input_register:3", "LINT[2]", byte_order="DCBA"),
        tag("serial", "input_register:11", "ULINT"),
        tag("voltage_v", "input_register:15", "LREAL", byte_order="BADC"),
        tag("recipe", "input_register:19", "STRING(20)"),
        tag("door_open", "input_register:29.0", "BOOL"),
        tag("fan_on", "'input_register:29.15'", "BOOL"),
        tag("lamp", "holding_register:40.3", "BOOL", access="write", safe_value="false"),
        tag("lamp2", "{table: holding_register, address: 40, bit: 4}", "BOOL", access="write", safe_value="false"),
        tag("setpoint", "40101", "UINT", access="write", limits="{min: 0, max: 65535}", safe_value="0"),
        tag("setpoint6", "'400201'", "REAL", access="write", limits="{min: 0, max: 1}", safe_value="0"),
        tag("label", "holding_register:300", "STRING(7)", access="write", safe_value="'idle'"),
        tag("input3", "300501", "INT"),
        tag("coil0", "'00001'", "BOOL", access="write", safe_value="false"),
        tag("di5", "10006", "BOOL"),
        tag("hr_bit", "'40051.7'", "BOOL"),
    ]
    tag_map = load_tag_map(write_map(tmp_path, "modbus", *tags))
    by = {t.name: t for t in tag_map.tags}
    assert by["count_u16"].data_type is DataType.UINT and by["count_u16"].register_count == 1
    assert by["count_u32"].register_count == 2
    assert by["energy_wh"].data_type is DataType.LINT and by["energy_wh"].register_count == 8
    assert by["voltage_v"].register_count == 4
    assert by["recipe"].string_chars == 20 and by["recipe"].register_count == 10
    assert by["recipe"].type_text == "STRING(20)" and by["energy_wh"].type_text == "LINT[2]"
    assert by["door_open"].address == ModbusAddress(ModbusTable.INPUT_REGISTER, 29, 0)
    assert by["fan_on"].register_bit == 15 and str(by["fan_on"].address) == "input_register:29.15"
    assert by["lamp2"].address == ModbusAddress(ModbusTable.HOLDING_REGISTER, 40, 4)
    # 40001 = holding_register:0, so 40101 = 100, 400201 = 200, 300501 = input 500, 00001 = coil 0
    assert by["setpoint"].address == ModbusAddress(ModbusTable.HOLDING_REGISTER, 100)
    assert by["setpoint6"].address == ModbusAddress(ModbusTable.HOLDING_REGISTER, 200)
    assert by["input3"].address == ModbusAddress(ModbusTable.INPUT_REGISTER, 500)
    assert by["coil0"].address == ModbusAddress(ModbusTable.COIL, 0)
    assert by["di5"].address == ModbusAddress(ModbusTable.DISCRETE_INPUT, 5)
    assert by["hr_bit"].address == ModbusAddress(ModbusTable.HOLDING_REGISTER, 50, 7)
    assert by["label"].safe_value == "idle"


def test_every_new_type_and_address_loads_on_logix(tmp_path):
    tags = [
        tag("a", "Counts", "UINT[4]"),
        tag("b", "Program:Main.Total", "UDINT"),
        tag("c", "Program:Main.Energy", "LINT"),
        tag("d", "Serial", "ULINT"),
        tag("e", "Program:Discharge.Voltage", "LREAL[2]"),
        tag("f", "Recipe", "STRING"),
        tag("g", "Cell[3].Temp", "REAL"),
        tag("h", "Cell[4].Temp", "REAL"),
        tag("i", "Local:3:I.Ch0Data", "REAL"),
        tag("j", "Rack1:1:O.Data[2]", "INT", access="write", limits="{min: 0, max: 100}", safe_value="0"),
        tag("k", "Status.5", "BOOL"),
        tag("l", "Status.6", "BOOL", access="write", safe_value="false"),
        tag("m", "DL4.In.Status.5", "BOOL"),
        tag("n", "Program:Main.Cell[2].Flags.31", "BOOL"),
        tag("o", "Local:1:I.Data.0", "BOOL"),
        tag("p", "Program:Other.Total", "UDINT"),
        tag("q", "Label", "STRING", access="write", safe_value="''"),
    ]
    tag_map = load_tag_map(write_map(tmp_path, "logix", *tags))
    by = {t.name: t for t in tag_map.tags}
    assert by["f"].string_chars == 82 and by["f"].type_text == "STRING"
    assert by["e"].count == 2 and by["e"].data_type is DataType.LREAL
    assert by["q"].safe_value == ""


def test_the_register_number_notation_is_another_spelling():
    same = {
        40001: "holding_register:0", "400001": "holding_register:0", 49999: "holding_register:9998",
        465536: "holding_register:65535", 30001: "input_register:0", "300010": "input_register:9",
        "00001": "coil:0", "000017": "coil:16", 10001: "discrete_input:0", "40021.3": "holding_register:20.3",
        "holding_register:20.3": "holding_register:20.3", "input_register:5.15": "input_register:5.15",
    }
    for spelling, canonical in same.items():
        assert str(parse_modbus_address(spelling)) == canonical, spelling
    assert parse_modbus_address("400001") == parse_modbus_address("holding_register:0") == parse_modbus_address(40001)


@pytest.mark.parametrize("spelling,words", [
    (40000, "numbered from 1"),
    ("400000", "numbered from 1"),
    (465537, "1..65536"),
    (50001, "starts with 0 (coil)"),
    (25, "'00025' = coil:24"),
    (40021.3, "quote a register bit"),
    ("coil:3.1", "a coil is a bit already"),
    ("holding_register:20.16", "allowed: 0..15"),
    ("holding_register:70000", "0..65535"),
    ({"table": "holding_register", "address": 1, "bit": 16}, "allowed: 0..15"),
    ({"table": "holding_register", "address": 1, "bit": "x"}, "address.bit"),
    ({"table": "registers", "address": 1}, "allowed: coil, discrete_input"),
    ("4001", "register number"),
])
def test_modbus_spellings_refused_say_what_is_allowed(spelling, words):
    with pytest.raises(ValueError, match=None) as info:
        parse_modbus_address(spelling)
    assert words in str(info.value)


def test_logix_paths_parse_to_their_plc_tag():
    assert parse_logix_path("Program:Main.Cell[3].Temp").base == "Program:Main.Cell"
    assert parse_logix_path("Program:Main.Cell[3].Temp").base_index == 3
    assert parse_logix_path("Local:3:I.Ch0Data").base == "Local:3:I"
    assert parse_logix_path("DL4.In.Status.5").bit == 5 and parse_logix_path("DL4.In.Status.5").is_member
    assert parse_logix_path("Status.5").bit == 5 and not parse_logix_path("Status.5").is_member
    assert parse_logix_path("Arr[4]").base_index == 4


# -- refusals, each at its line ---------------------------------------------------------------------
MODBUS_REFUSALS = [
    (tag("x", "holding_register:0", "STRING[4]"), "arrays of STRING are not supported"),
    (tag("x", "holding_register:0", "STRING"), "a Modbus string is STRING(N)"),
    (tag("x", "holding_register:0", "STRING(300)"), "N characters 1..246"),
    (tag("x", "holding_register:0", "INT(4)"), "a length in ( ) is for STRING only"),
    (tag("x", "holding_register:0", "WORD"), "allowed: BOOL, INT, DINT, REAL, UINT, UDINT, LINT, ULINT, LREAL"),
    (tag("x", "coil:3.1", "BOOL"), "a coil is a bit already"),
    (tag("x", "holding_register:3.16", "BOOL"), "allowed: 0..15"),
    (tag("x", "holding_register:3.2", "REAL"), "a bit of a register: its type is BOOL (a scalar), not REAL"),
    (tag("x", "holding_register:3.2", "BOOL[2]"), "its type is BOOL (a scalar), not BOOL[2]"),
    (tag("x", "holding_register:3", "BOOL"), "or at a bit of a register"),
    (tag("x", "coil:3", "LREAL"), "cannot live in coil"),
    (tag("x", "input_register:3.2", "BOOL", access="write", safe_value="false"), "cannot live in input_register"),
    (tag("x", "30001", "UINT", access="write", limits="{min: 0, max: 9}", safe_value="0"), "cannot live in input_register"),
    (tag("x", "40000", "INT"), "numbered from 1"),
    (tag("x", "40021.3", "BOOL"), "quote a register bit"),
    (tag("x", "7", "BOOL"), "'00007' = coil:6"),
    (tag("x", "holding_register:0", "UINT", access="write", limits="{min: -1, max: 10}", safe_value="0"),
     "outside what UINT holds (0..65535)"),
    (tag("x", "holding_register:0", "UDINT", access="write", limits="{min: 0, max: 10}", safe_value="1.5"),
     "must be whole for a UDINT"),
    (tag("x", "holding_register:0", "STRING(4)", access="write", safe_value="'toolong'"),
     "at most 4 characters"),
    (tag("x", "holding_register:0", "STRING(4)", access="write", safe_value="3"), "must be ASCII text"),
    (tag("x", "holding_register:0", "STRING(4)", scaling="{gain: 2}"), "a STRING tag takes no scaling"),
    (tag("x", "holding_register:0", "STRING(4)", limits="{min: 0, max: 1}"), "a STRING tag takes no limits"),
]


@pytest.mark.parametrize("entry,words", MODBUS_REFUSALS, ids=[w for _, w in MODBUS_REFUSALS])
def test_modbus_type_and_address_refusals(tmp_path, entry, words):
    tags = [tag("ok", "input_register:100", "INT"), entry]
    assert_refused(tmp_path, "modbus", tags, 1, "x", words)


LOGIX_REFUSALS = [
    (tag("x", "Recipe", "STRING(20)"), "write STRING without a length"),
    (tag("x", "Recipe", "STRING[2]"), "arrays of STRING are not supported"),
    (tag("x", "Status.32", "BOOL"), "allowed: 0..31"),
    (tag("x", "Status.5", "DINT"), "a bit of an integer: its type is BOOL (a scalar), not DINT"),
    (tag("x", "Status.5", "BOOL[4]"), "not BOOL[4]"),
    (tag("x", "Local:3:I", "REAL"), "name a member"),
    (tag("x", "Program:Main.Local:3:I.Ch0", "REAL"), "controller-scoped"),
    (tag("x", "program:Main.X", "REAL"), "write the scope as 'Program:Main.'"),
    (tag("x", "Status.5.X", "BOOL"), "a bit comes last"),
    (tag("x", "Arr[1,2]", "REAL"), "is not a tag, member or element"),
    (tag("x", "'Program:.X'", "REAL"), "Program:<program>.<tag>"),
    (tag("x", "'  Padded'", "REAL"), "a Logix tag path is allowed"),
    (tag("x", "Temp", "LREAL", byte_order="CDAB"), "byte_order applies to modbus tags only"),
]


@pytest.mark.parametrize("entry,words", LOGIX_REFUSALS, ids=[w for _, w in LOGIX_REFUSALS])
def test_logix_type_and_address_refusals(tmp_path, entry, words):
    tags = [tag("ok", "Other", "INT"), entry]
    assert_refused(tmp_path, "logix", tags, 1, "x", words)


# -- two tags on the same PLC data ------------------------------------------------------------------
LOGIX_SAME_DATA = [
    ("Temp", "REAL", "Temp", "REAL"),  # the same address
    ("Temp", "REAL", "TEMP", "REAL"),  # Logix names are case-insensitive
    ("Temps", "REAL[8]", "Temps[3]", "REAL"),  # an element of the other
    ("Temps[2]", "REAL[4]", "Temps[5]", "REAL[2]"),  # array ranges meet
    ("Cell[3]", "DINT", "Cell[3].5", "BOOL"),  # a bit of the other
    ("Status", "DINT", "Status.5", "BOOL"),
    ("Status.5", "BOOL", "Status.5", "BOOL"),
    ("Cell[3].Temp", "REAL", "Cell[3].Temp", "REAL"),
    ("DL4.In", "DINT", "DL4.In.Status.5", "BOOL"),  # a member's bit inside a member
    ("Program:Main.Relief", "REAL[4]", "Program:main.relief[1]", "REAL"),
    ("Local:3:I.Ch0Data", "REAL", "Local:3:I.Ch0Data", "REAL"),
]


@pytest.mark.parametrize("first,first_type,second,second_type", LOGIX_SAME_DATA)
def test_two_logix_tags_on_the_same_plc_data_are_refused_naming_both_lines(tmp_path, first, first_type, second, second_type):
    tags = [tag("first_tag", first, first_type), tag("other", "Elsewhere", "INT"), tag("second_tag", second, second_type)]
    found = problems(tmp_path, "logix", *tags)
    first_line, second_line = line_of(tags, 0), line_of(tags, 2)
    start = f"{tmp_path / 'map.yaml'}:{second_line}: tag 'second_tag': "
    assert any(p.startswith(start) and f"'first_tag' (line {first_line}" in p for p in found), found


def test_the_rtcore_and_supervisor_case_on_one_logix_tag(tmp_path):
    """The issue's case: one PLC tag mapped twice, once for each process."""
    text = tag("rt_permit", "Program:Discharge.Permit", "BOOL[4]", access="write", safe_value="false")
    text2 = tag("sup_permit", "Program:Discharge.Permit", "BOOL[4]").replace("owner: rtcore", "owner: supervisor")
    found = problems(tmp_path, "logix", text, text2)
    assert any("sup_permit" in p and "'rt_permit' (line 9" in p for p in found), found


LOGIX_APART = [
    ("Status.5", "BOOL", "Status.6", "BOOL"),
    ("Cell[3].Temp", "REAL", "Cell[4].Temp", "REAL"),
    ("Cell[3].Temp", "REAL", "Cell[3].Pressure", "REAL"),
    ("Temps", "REAL[4]", "Temps[4]", "REAL"),
    ("Program:A.X", "REAL", "Program:B.X", "REAL"),
    ("Program:A.X", "REAL", "X", "REAL"),
    ("Local:3:I.Ch0Data", "REAL", "Local:4:I.Ch0Data", "REAL"),
    ("Local:3:I.Ch0Data", "REAL", "Local:3:O.Ch0Data", "REAL"),
]


@pytest.mark.parametrize("first,first_type,second,second_type", LOGIX_APART)
def test_logix_tags_on_different_data_load(tmp_path, first, first_type, second, second_type):
    tag_map = load_tag_map(write_map(tmp_path, "logix", tag("a", first, first_type), tag("b", second, second_type)))
    assert [t.name for t in tag_map.tags] == ["a", "b"]


MODBUS_SAME_DATA = [
    ("holding_register:20.3", "BOOL", "holding_register:20.3", "BOOL"),
    ("holding_register:20", "INT", "holding_register:20.3", "BOOL"),
    ("input_register:10", "LINT", "input_register:13", "INT"),  # 10..13
    ("input_register:0", "STRING(8)", "input_register:3", "UINT"),  # 0..3
    ("holding_register:5", "LREAL[2]", "'40012'", "INT"),  # 5..12; 40012 = 11
]


@pytest.mark.parametrize("first,first_type,second,second_type", MODBUS_SAME_DATA)
def test_modbus_overlaps_with_bits_and_wide_types(tmp_path, first, first_type, second, second_type):
    tags = [tag("first_tag", first, first_type), tag("second_tag", second, second_type)]
    found = problems(tmp_path, "modbus", *tags)
    assert any(f":{line_of(tags, 1)}: tag 'second_tag'" in p and "'first_tag' (line 9" in p for p in found), found


def test_every_modbus_overlap_is_found_not_only_the_neighbour(tmp_path):
    tags = [tag("wide", "input_register:0", "INT[10]"), tag("b", "input_register:2", "INT"),
            tag("c", "input_register:5", "INT"), tag("d", "input_register:20.1", "BOOL"),
            tag("e", "input_register:20.2", "BOOL"), tag("f", "input_register:20.1", "BOOL")]
    found = problems(tmp_path, "modbus", *tags)
    named = {name for name in "bcdef" if any(f"tag {name!r}:" in p for p in found)}
    assert named == {"b", "c", "f"}, found
    assert all("overlaps tag 'wide'" in p for p in found if "tag 'b'" in p or "tag 'c'" in p)
    assert any("tag 'f'" in p and "overlaps tag 'd'" in p for p in found)


def test_bits_of_one_register_do_not_overlap(tmp_path):
    tags = [tag(f"b{bit}", f"holding_register:7.{bit}", "BOOL") for bit in range(16)]
    assert len(load_tag_map(write_map(tmp_path, "modbus", *tags)).tags) == 16
