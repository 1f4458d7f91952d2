"""The wider types through the bus's conversions (memory backend) and the Logix tag-list check.

Conversions: a 64-bit count stays exact (it never passes through float64 unscaled), a scaled
UINT/UDINT converts both ways, a STRING is checked (ASCII, its length) before it is sent, a bit
is a BOOL. The Logix check (`type_problem`): program scope, I/O module and UDT member paths,
bits of integers, STRING and the new atomic types against a controller's tag list as pycomm3
reports it.
"""

from __future__ import annotations

import pytest

from edge.bus import MemoryPlc, Quality, open_bus
from edge.bus.base import eu_to_raw, plant_raw, raw_to_eu
from edge.bus.logix import type_problem
from edge.tagmap import Owner, load_tag_map

pytestmark = pytest.mark.unit

MAP = """\
connection:
  name: types-logix
  protocol: logix
  endpoint: {host: 127.0.0.1}
  timeout_s: 0.5
scan_groups:
  fast: 100
tags:
  - {name: counts, address: Counts, type: "UINT[3]", access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: level_pct, address: Program:Main.Level, type: UINT, access: read, owner: rtcore, unit: pct,
     scaling: {gain: 0.01}, limits: {min: 0, max: 100}, scan_group: fast}
  - {name: energy_wh, address: Program:Main.Energy, type: "LINT[2]", access: read, owner: rtcore, unit: Wh, scan_group: fast}
  - {name: serial, address: Serial, type: ULINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 18446744073709551615}, safe_value: 0}
  - {name: total, address: Program:Main.Total, type: UDINT, access: write, owner: rtcore, unit: kWh, scan_group: fast,
     scaling: {gain: 0.001}, limits: {min: 0, max: 4000000}, safe_value: 0}
  - {name: voltage_v, address: Local:3:I.Ch0Data, type: LREAL, access: read, owner: rtcore, unit: V, scan_group: fast}
  - {name: cell_temp_degc, address: "Cell[3].Temp", type: REAL, access: read, owner: rtcore, unit: degC, scan_group: fast}
  - {name: recipe, address: Recipe, type: STRING, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: ""}
  - {name: door_open, address: Status.5, type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: lamp, address: DL4.In.Status.6, type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: out2, address: "Rack1:1:O.Data[2]", type: INT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 100}, safe_value: 0}
  - {name: volts_v, address: Program:Main.Meas.Volts, type: "REAL[4]", access: read, owner: rtcore, unit: V, scan_group: fast}
  - {name: cntrl_cmd, address: PackTags.Command.CntrlCmd, type: DINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: flags, address: "Panel.Flags[2]", type: "BOOL[6]", access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: batch, address: Panel.Batch, type: STRING, access: read, owner: rtcore, unit: "", scan_group: fast}
"""


@pytest.fixture
def tag_map(tmp_path):
    path = tmp_path / "types.yaml"
    path.write_text(MAP)
    return load_tag_map(path)


def test_conversions_of_the_new_types(tag_map):
    serial, total, level, recipe, energy = (tag_map.tag(n) for n in ("serial", "total", "level_pct", "recipe", "energy_wh"))
    assert eu_to_raw(serial, 2**64 - 1) == 2**64 - 1  # exact: float64 would give 2**64, outside ULINT
    assert raw_to_eu(serial, 2**64 - 1) == (2**64 - 1, Quality.GOOD)
    assert raw_to_eu(energy, (-(2**63), 2**63 - 1)) == ((-(2**63), 2**63 - 1), Quality.GOOD)
    assert eu_to_raw(total, 1234.567) == 1234567
    assert raw_to_eu(total, 4_000_000_000) == (pytest.approx(4_000_000.0), Quality.GOOD)
    assert raw_to_eu(level, 65535) == (pytest.approx(655.35), Quality.UNCERTAIN_LIMITS)
    assert eu_to_raw(recipe, "R-7") == "R-7" and raw_to_eu(recipe, "R-7") == ("R-7", Quality.GOOD)
    for bad, words in (("x" * 83, "holds 82"), ("caf\u00e9", "ASCII"), (7, "not text")):
        with pytest.raises(ValueError, match=words):
            eu_to_raw(recipe, bad)
    with pytest.raises(ValueError, match="outside limits"):
        eu_to_raw(serial, -1)
    assert plant_raw(energy, (2**62 + 1, -5)) == (2**62 + 1, -5)  # the plant side exact too
    assert plant_raw(recipe, "ok") == "ok"


def test_the_memory_backend_carries_every_new_type(tag_map):
    plc = MemoryPlc(tag_map)
    plc.set("counts", (0, 1, 65535))
    plc.set("energy_wh", (2**62 + 3, -(2**62) - 1))
    plc.set("door_open", True)
    plc.set("voltage_v", 0.1 + 0.2)
    with open_bus(tag_map, Owner.RTCORE, plc=plc) as bus:
        read = {r.name: r for r in bus.read(["counts", "energy_wh", "door_open", "voltage_v", "recipe"])}
        assert read["counts"].value == (0, 1, 65535)
        assert read["energy_wh"].value == (2**62 + 3, -(2**62) - 1)
        assert read["door_open"].value is True and read["voltage_v"].value == 0.1 + 0.2
        assert read["recipe"].value == ""  # a STRING starts empty
        written = bus.write({"serial": 2**64 - 1, "recipe": "BATCH-42", "lamp": True, "total": 12.5, "out2": 7})
        assert [w.quality for w in written] == [Quality.GOOD] * 5
        assert plc.get("serial") == 2**64 - 1 and plc.get("recipe") == "BATCH-42" and plc.get("lamp") is True
        assert plc.get("total") == pytest.approx(12.5)
        refused = bus.write({"recipe": "y" * 83, "serial": 2**64})
        assert [w.quality for w in refused] == [Quality.REFUSED_LIMITS] * 2
        assert plc.get("recipe") == "BATCH-42"
        assert bus.safe_values()["recipe"] == ""


# A controller's tag list as pycomm3 uploads it: a tag's `dimensions`; a structure's template in
# `data_type` (`internal_tags`: each member's type, `array` its element count, 0 a scalar; a
# member of a structure type carries its own template); a BOOL member is a bit (`bit`, no array).
def atomic(data_type: str, dims: int = 0) -> dict:
    return {"tag_type": "atomic", "data_type": data_type, "data_type_name": data_type, "dimensions": [dims, 0, 0]}


def template(name: str, members: dict | None) -> dict:
    return {"name": name, **({} if members is None else {"internal_tags": members})}


def struct(name: str, dims: int = 0, members: dict | None = None) -> dict:
    return {"tag_type": "struct", "data_type": template(name, members), "data_type_name": name, "dimensions": [dims, 0, 0]}


def member(data_type: str, array: int = 0) -> dict:
    if data_type == "BOOL":
        return {"tag_type": "atomic", "data_type": "BOOL", "data_type_name": "BOOL", "bit": 0, "offset": 0}
    return {"tag_type": "atomic", "data_type": data_type, "data_type_name": data_type, "array": array, "offset": 0}


def struct_member(name: str, members: dict, array: int = 0) -> dict:
    return {"tag_type": "struct", "data_type": template(name, members), "data_type_name": name, "array": array, "offset": 0}


STRING_MEMBERS = {"LEN": member("DINT"), "DATA": member("SINT", 82)}
PLC_TAGS = {
    "Counts": atomic("UINT", 3),
    "Program:Main.Level": atomic("UINT"),
    "Program:Main.Energy": atomic("LINT", 2),
    "Serial": atomic("ULINT"),
    "Program:Main.Total": atomic("UDINT"),
    "Local:3:I": struct("AB:1756_IF8:I:0", members={"Fault": member("DINT"), "Ch0Data": member("LREAL")}),
    "Cell": struct("CellUdt", 8, {"Temp": member("REAL"), "Volts": member("REAL")}),
    "Recipe": struct("STRING", members=STRING_MEMBERS),
    "STATUS": atomic("DINT"),  # Logix names are case-insensitive
    "DL4": struct("DL4Udt", members={"In": struct_member("DL4In", {"Status": member("INT")})}),
    "Rack1:1:O": struct("AB:1756_OB16:O:0", members={"Data": member("INT", 4)}),
    "Program:Main.Meas": struct("MeasUdt", members={"Volts": member("REAL", 4)}),
    "PackTags": struct("PackTagsUdt", members={"Command": struct_member("PackCommand", {"CntrlCmd": member("DINT")})}),
    "Panel": struct("PanelUdt", members={"flags": member("DWORD", 1), "Batch": struct_member("STRING", STRING_MEMBERS)}),
}


def with_member(plc_tags: dict, path: tuple[str, ...], definition: dict | None) -> dict:
    """A copy of `plc_tags` with the member at `path` (tag, member, ...) replaced (None: removed)."""
    import copy

    out = copy.deepcopy(plc_tags)
    members = out[path[0]]["data_type"]["internal_tags"]
    for name in path[1:-1]:
        members = members[name]["data_type"]["internal_tags"]
    if definition is None:
        del members[path[-1]]
    else:
        members[path[-1]] = definition
    return out


def test_the_tag_list_check_accepts_a_matching_controller(tag_map):
    assert {t.name: type_problem(t, PLC_TAGS) for t in tag_map.tags} == {t.name: "" for t in tag_map.tags}


@pytest.mark.parametrize("name,plc_name,definition,words", [
    ("counts", "Counts", atomic("UINT", 2), "has 2 elements, the map needs 3"),
    ("counts", "Counts", atomic("INT", 3), "is INT[3], the map says UINT[3]"),
    ("energy_wh", "Program:Main.Energy", atomic("ULINT", 2), "is ULINT[2], the map says LINT[2]"),
    ("serial", "Serial", atomic("LREAL"), "is LREAL, the map says ULINT"),
    ("recipe", "Recipe", struct("STRING_20"), "is STRING_20, the map says STRING"),
    ("recipe", "Recipe", atomic("DINT"), "is DINT, the map says STRING"),
    ("door_open", "STATUS", atomic("REAL"), "a bit (Status.5) needs an integer"),
    ("door_open", "STATUS", struct("Udt"), "a bit (Status.5) needs an integer"),
    ("door_open", "STATUS", atomic("SINT"), ""),  # bit 5 of a SINT: there
    ("cell_temp_degc", "Cell", None, "PLC has no tag 'Cell'"),
    ("voltage_v", "Local:3:I", None, "PLC has no tag 'Local:3:I'"),
])
def test_the_tag_list_check_names_what_differs(tag_map, name, plc_name, definition, words):
    plc_tags = dict(PLC_TAGS)
    if definition is None:
        del plc_tags[plc_name]
    else:
        plc_tags[plc_name] = definition
    problem = type_problem(tag_map.tag(name), plc_tags)
    assert (words in problem and problem.startswith(f"{name}: ")) if words else problem == "", problem


def test_a_bit_beyond_the_integer_is_named(tmp_path):
    path = tmp_path / "bits.yaml"
    path.write_text(MAP.split("tags:\n")[0] + "tags:\n"
                    "  - {name: b20, address: Flags.20, type: BOOL, access: read, owner: rtcore, unit: \"\", scan_group: fast}\n")
    tag = load_tag_map(path).tag("b20")
    assert type_problem(tag, {"Flags": atomic("INT")}) == "b20: PLC tag 'Flags' is INT, 16 bits; the map asks bit 20"
    assert type_problem(tag, {"Flags": atomic("DINT")}) == ""


@pytest.mark.parametrize("name,path,definition,problem", [
    # controller scope, an element of a UDT array: the member's type and size, the UDT named
    ("cell_temp_degc", ("Cell", "Temp"), member("DINT"),
     "PLC member 'Cell[3].Temp' of CellUdt is DINT, the map says REAL"),
    ("cell_temp_degc", ("Cell", "Temp"), None,
     "PLC tag 'Cell' is CellUdt, which has no member 'Temp'; its members: Volts"),
    # program scope
    ("volts_v", ("Program:Main.Meas", "Volts"), member("DINT", 4),
     "PLC member 'Program:Main.Meas.Volts' of MeasUdt is DINT[4], the map says REAL[4]"),
    ("volts_v", ("Program:Main.Meas", "Volts"), member("REAL", 2),
     "PLC member 'Program:Main.Meas.Volts' of MeasUdt has 2 elements, the map needs 4"),
    ("volts_v", ("Program:Main.Meas", "Volts"), member("REAL"),
     "PLC member 'Program:Main.Meas.Volts' of MeasUdt has 1 elements, the map needs 4"),
    # nested structures, an I/O module's, an element of a member array
    ("cntrl_cmd", ("PackTags", "Command", "CntrlCmd"), member("INT"),
     "PLC member 'PackTags.Command.CntrlCmd' of PackCommand is INT, the map says DINT"),
    ("cntrl_cmd", ("PackTags", "Command"), member("DINT"),
     "PLC member 'PackTags.Command' of PackTagsUdt is DINT, not a structure; the map asks its member 'CntrlCmd' "
     "(PackTags.Command.CntrlCmd)"),
    ("voltage_v", ("Local:3:I", "Ch0Data"), member("REAL"),
     "PLC member 'Local:3:I.Ch0Data' of AB:1756_IF8:I:0 is REAL, the map says LREAL"),
    ("out2", ("Rack1:1:O", "Data"), member("INT", 2),
     "PLC member 'Rack1:1:O.Data' of AB:1756_OB16:O:0 has 2 elements, the map needs 3"),
    # a bit of a nested member; a STRING member; BOOLs in 32-bit words
    ("lamp", ("DL4", "In", "Status"), member("REAL"),
     "PLC member 'DL4.In.Status' of DL4In is REAL; a bit (DL4.In.Status.6) needs an integer"),
    ("batch", ("Panel", "Batch"), member("DINT"), "PLC member 'Panel.Batch' of PanelUdt is DINT, the map says STRING"),
    ("flags", ("Panel", "flags"), member("BOOL"), "PLC member 'Panel.flags' of PanelUdt has 1 elements, the map needs 8"),
    ("flags", ("Panel", "flags"), member("DINT", 1), "PLC member 'Panel.flags' of PanelUdt is DINT[1], the map says BOOL[6]"),
])
def test_a_udt_members_type_and_size_come_from_its_template(tag_map, name, path, definition, problem):
    """The controller's templates (uploaded with the tag list) type every member: a member of
    another type or size is named with its real type (was: any member passed, and was read as the
    map's type)."""
    assert type_problem(tag_map.tag(name), with_member(PLC_TAGS, path, definition)) == f"{name}: {problem}"


def test_a_udt_element_past_the_array_and_a_member_of_a_value_are_named(tag_map):
    cell = tag_map.tag("cell_temp_degc")
    assert type_problem(cell, {**PLC_TAGS, "Cell": struct("CellUdt", 3, {"Temp": member("REAL")})}) == \
        "cell_temp_degc: PLC tag 'Cell' is CellUdt[3]; the map asks element 3 (Cell[3].Temp)"
    assert type_problem(cell, {**PLC_TAGS, "Cell": atomic("REAL", 8)}) == \
        "cell_temp_degc: PLC tag 'Cell' is REAL[8], not a structure; the map asks its member 'Temp' (Cell[3].Temp)"


def test_a_structure_without_its_template_in_the_list_is_left_to_the_read(tag_map):
    """A tag list that lacks a structure's members cannot type them: not judged here (the read's
    own type, pycomm3's `type`, is checked on every read: test_logix_udt_types.py)."""
    plc_tags = {**PLC_TAGS, "Cell": struct("CellUdt", 8)}
    assert type_problem(tag_map.tag("cell_temp_degc"), plc_tags) == ""
