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


def atomic(data_type: str, dims: int = 0) -> dict:
    return {"tag_type": "atomic", "data_type": data_type, "data_type_name": data_type, "dimensions": [dims, 0, 0]}


def struct(name: str, dims: int = 0) -> dict:
    return {"tag_type": "struct", "data_type": {"name": name}, "data_type_name": name, "dimensions": [dims, 0, 0]}


PLC_TAGS = {
    "Counts": atomic("UINT", 3),
    "Program:Main.Level": atomic("UINT"),
    "Program:Main.Energy": atomic("LINT", 2),
    "Serial": atomic("ULINT"),
    "Program:Main.Total": atomic("UDINT"),
    "Local:3:I": struct("AB:1756_IF8:I:0"),
    "Cell": struct("CellUdt", 8),
    "Recipe": struct("STRING"),
    "STATUS": atomic("DINT"),  # Logix names are case-insensitive
    "DL4": struct("DL4Udt"),
    "Rack1:1:O": struct("AB:1756_OB16:O:0"),
}


def test_the_tag_list_check_accepts_a_matching_controller(tag_map):
    assert {t.name: type_problem(t, PLC_TAGS) for t in tag_map.tags} == {t.name: "" for t in tag_map.tags}


@pytest.mark.parametrize("name,plc_name,definition,words", [
    ("counts", "Counts", atomic("UINT", 2), "has 2 elements, the map needs 3"),
    ("counts", "Counts", atomic("INT", 3), "is INT, the map says UINT"),
    ("energy_wh", "Program:Main.Energy", atomic("ULINT", 2), "is ULINT, the map says LINT"),
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
