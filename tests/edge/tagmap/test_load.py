"""Tag-map loading: the shipped maps load; every kind of mistake is refused with file, line, tag."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.tagmap import (
    Access,
    ByteOrder,
    DataType,
    ModbusAddress,
    ModbusTable,
    Owner,
    Protocol,
    TagMapError,
    load_tag_map,
)

pytestmark = pytest.mark.unit

SHIPPED = sorted((REPO_ROOT / "plc_tags").glob("*.yaml"))

BASE = """\
connection:
  name: t
  protocol: modbus
  endpoint: {host: 127.0.0.1, port: 502, unit_id: 1}
  timeout_s: 0.2
scan_groups:
  fast: 100
tags:
  - name: temp_degc
    address: input_register:0
    type: INT[4]
    access: read
    owner: rtcore
    unit: degC
    scaling: {gain: 0.1, offset: 0.0}
    limits: {min: -40.0, max: 150.0}
    scan_group: fast
  - name: relief_pct
    address: holding_register:10
    type: REAL[2]
    access: write
    owner: rtcore
    unit: pct
    limits: {min: 0.0, max: 100.0}
    safe_value: 100.0
    byte_order: CDAB
    scan_group: fast
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(TagMapError) as info:
        load_tag_map(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_maps_load(path):
    tag_map = load_tag_map(path)
    assert tag_map.tags and tag_map.source == path
    for tag in tag_map.tags:
        assert tag.source_line > 0
        if tag.access is Access.WRITE:
            assert tag.safe_value is not None


def test_shipped_examples_cover_both_protocols():
    protocols = {load_tag_map(p).protocol for p in SHIPPED}
    assert protocols == {Protocol.LOGIX, Protocol.MODBUS}


def test_base_map_loads_into_frozen_dataclasses(tmp_path):
    tag_map = load_tag_map(write(tmp_path, BASE))
    temp, relief = tag_map.tags
    assert temp.address == ModbusAddress(ModbusTable.INPUT_REGISTER, 0)
    assert (temp.data_type, temp.count, temp.owner) == (DataType.INT, 4, Owner.RTCORE)
    assert temp.scaling.to_eu(253) == pytest.approx(25.3)
    assert (relief.byte_order, relief.safe_value, relief.source_line) == (ByteOrder.CDAB, (100.0, 100.0), 18)
    assert tag_map.tag("relief_pct") is relief and tag_map.tag("nope") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        relief.safe_value = 0.0


# (what to change in BASE, the line the error must name, the tag, words the message must hold)
MISTAKES = [
    ("protocol: modbus", "protocol: profinet", 3, None, "allowed: logix, modbus"),
    ("port: 502", "port: 70000", 4, None, "allowed: 1..65535"),
    ("timeout_s: 0.2", "timeout_s: 0", 5, None, "> 0"),
    ("  fast: 100", "  fast: 1", 7, None, "allowed: an integer 10..3600000"),
    ("type: INT[4]", "type: FLOAT[4]", 11, "temp_degc", "allowed: BOOL, INT, DINT, REAL"),
    ("type: INT[4]", "type: INT[0]", 11, "temp_degc", "allowed: 1..1024"),
    ("access: read", "access: readwrite", 12, "temp_degc", "allowed: read, write"),
    ("owner: rtcore\n    unit: degC", "owner: plc\n    unit: degC", 13, "temp_degc", "allowed: rtcore, supervisor"),
    ("address: input_register:0", "address: input_register:70000", 10, "temp_degc", "allowed: 0..65535"),
    ("address: input_register:0", "address: registers:0", 10, "temp_degc", "address.table"),
    ("address: input_register:0", "address: coil:0", 10, "temp_degc", "cannot live in coil"),
    ("address: holding_register:10", "address: input_register:10", 19, "relief_pct", "read-only"),
    ("address: holding_register:10", "address: holding_register:10\n    colour: red", 20, "relief_pct", "unknown key 'colour'"),
    ("limits: {min: 0.0, max: 100.0}", "limits: {min: 100.0, max: 0.0}", 24, "relief_pct", "above limits.max"),
    ("limits: {min: -40.0, max: 150.0}", "limits: {min: -40.0, max: 5000.0}", 16, "temp_degc", "outside what INT holds"),
    ("    limits: {min: 0.0, max: 100.0}\n", "", 18, "relief_pct", "a write tag needs limits"),
    ("    safe_value: 100.0\n", "", 18, "relief_pct", "a write tag needs safe_value"),
    ("safe_value: 100.0", "safe_value: 150.0", 25, "relief_pct", "outside limits"),
    ("safe_value: 100.0", "safe_value: [1.0, 2.0, 3.0]", 25, "relief_pct", "has 3 elements"),
    ("byte_order: CDAB", "byte_order: CBAD", 26, "relief_pct", "allowed: ABCD, CDAB, BADC, DCBA"),
    ("scaling: {gain: 0.1, offset: 0.0}", "scaling: {gain: 0.0}", 15, "temp_degc", "non-zero"),
    ("scan_group: fast\n  - name: relief_pct", "scan_group: slow\n  - name: relief_pct", 17, "temp_degc", "not declared"),
    ("  - name: relief_pct", "  - name: temp_degc", 18, "temp_degc", "duplicate tag name (first on line 9)"),
    ("    unit: pct\n", "", 18, "relief_pct", "missing 'unit'"),
]


@pytest.mark.parametrize("old,new,line,tag,words", MISTAKES, ids=[m[4][:30] for m in MISTAKES])
def test_each_mistake_is_refused_naming_file_line_and_tag(tmp_path, old, new, line, tag, words):
    assert old in BASE
    problems = problems_of(tmp_path, BASE.replace(old, new, 1))
    path = tmp_path / "map.yaml"
    expected_start = f"{path}:{line}: " + (f"tag {tag!r}: " if tag else "")
    matching = [p for p in problems if p.startswith(expected_start) and words in p]
    assert matching, f"no problem starting {expected_start!r} with {words!r} in:\n" + "\n".join(problems)


def test_logix_map_refuses_modbus_only_fields(tmp_path):
    text = BASE.replace("protocol: modbus", "protocol: logix").replace(", unit_id: 1", "")
    text = text.replace("address: input_register:0", "address: Temps").replace("address: holding_register:10", "address: Relief")
    problems = problems_of(tmp_path, text)
    assert any(":26: tag 'relief_pct': byte_order applies to modbus tags only" in p for p in problems), problems


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    text = BASE.replace("type: INT[4]", "type: FLOAT").replace("safe_value: 100.0", "safe_value: 150.0")
    assert len(problems_of(tmp_path, text)) == 2


def test_broken_yaml_names_the_line(tmp_path):
    problems = problems_of(tmp_path, BASE.replace("    unit: pct", "    unit: [pct"))
    assert problems[0].startswith(f"{tmp_path / 'map.yaml'}:") and "not valid YAML" in problems[0]


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(TagMapError, match="cannot read"):
        load_tag_map(tmp_path / "absent.yaml")
    assert "empty file" in problems_of(tmp_path, "")[0]


def test_duplicate_yaml_key_is_refused(tmp_path):
    problems = problems_of(tmp_path, BASE.replace("    unit: degC", "    unit: degC\n    unit: degF"))
    assert any(":15: duplicate key 'unit' (first on line 14)" in p for p in problems), problems


def test_overlapping_modbus_addresses_are_refused(tmp_path):
    extra = ("  - name: x\n    address: holding_register:11\n    type: INT\n    access: read\n"
             "    owner: rtcore\n    unit: ''\n    scan_group: fast\n")
    problems = problems_of(tmp_path, BASE + extra)
    assert problems == [f"{tmp_path / 'map.yaml'}:28: tag 'x': address holding_register:11 overlaps tag 'relief_pct' "
                        "(line 18, holding_register:10 spans 4 registers)"]
