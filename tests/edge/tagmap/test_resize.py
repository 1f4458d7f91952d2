"""Maps resized to a line of another station count, and written back as YAML (edge/tagmap/resize.py)."""

from dataclasses import replace

import pytest

from edge import REPO_ROOT
from edge.tagmap import DataType, ModbusTable, Protocol, load_tag_map
from edge.tagmap.resize import dump_tag_map, resized

pytestmark = pytest.mark.unit

MAPS = {name: load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{name}.yaml") for name in ("modbus", "logix")}


def _same(a, b):
    assert (a.name, a.protocol, a.endpoint, a.timeout_s, a.scan_groups) == (b.name, b.protocol, b.endpoint,
                                                                          b.timeout_s, b.scan_groups)
    assert [replace(t, source_line=0) for t in a.tags] == [replace(t, source_line=0) for t in b.tags]


@pytest.mark.parametrize("protocol", sorted(MAPS))
@pytest.mark.parametrize("stations", [None, 1, 40])
def test_a_map_written_as_yaml_reads_back_equal(tmp_path, protocol, stations):
    tag_map = MAPS[protocol] if stations is None else resized(MAPS[protocol], stations)
    path = tmp_path / "map.yaml"
    path.write_text(dump_tag_map(tag_map, header="written by a test\nsecond line"))
    assert path.read_text().startswith("# written by a test\n# second line\n")
    _same(load_tag_map(path), tag_map)


@pytest.mark.parametrize("protocol", sorted(MAPS))
def test_resized_keeps_the_elements_per_station(protocol):
    base = MAPS[protocol]
    s0 = base.tag("discharge_permit").count
    big = resized(base, 40)
    for tag in base.tags:
        new = big.tag(tag.name)
        if tag.name.startswith(("robot_", "vision_")) or not tag.is_array:
            assert new.count == tag.count, tag.name
        else:
            assert new.count == tag.count // s0 * 40, tag.name
    assert big.tag("marker_temp_degc").count == 160 and big.tag("zone_pressure_kpa").count == 80
    assert big.tag("relief_first_kpa").safe_value == (400.0,) * 80


def test_resized_modbus_tags_never_overlap_and_keep_their_order():
    big = resized(MAPS["modbus"], 40, types={"marker_temp_degc": DataType.REAL})
    assert big.protocol is Protocol.MODBUS and big.tag("marker_temp_degc").data_type is DataType.REAL
    for table in ModbusTable:
        tags = sorted((t for t in big.tags if t.address.table is table), key=lambda t: t.address.address)
        for a, b in zip(tags, tags[1:]):
            assert a.address.address + a.register_count <= b.address.address, (a.name, b.name)
        old = [t.name for t in sorted((t for t in MAPS["modbus"].tags if t.address.table is table),
                                      key=lambda t: t.address.address)]
        assert [t.name for t in tags] == old


def test_resized_refuses_a_bad_count_and_a_map_without_stations():
    with pytest.raises(ValueError, match="stations must be a positive integer, got 0"):
        resized(MAPS["logix"], 0)
    station_tags = {"discharge_permit", "current_limit_pct", "station_safe_state", "zone_pressure_kpa"}
    bare = replace(MAPS["logix"], tags=tuple(t for t in MAPS["logix"].tags if t.name not in station_tags))
    with pytest.raises(ValueError, match="no tag plays role 'zone_pressure_kpa'"):
        resized(bare, 4)


def test_a_map_of_other_names_resizes_by_its_roles_and_dumps_them(tmp_path):
    renamed = {"discharge_permit": "Permit", "current_limit_pct": "ILimit", "station_safe_state": "StationSafe",
               "vision_battery_id": "CamBatteryId", "robot_state": "RobotState"}
    base = MAPS["logix"]
    tags = tuple(replace(t, name=renamed.get(t.name, t.name)) for t in base.tags)
    tag_map = replace(base, tags=tags, roles={role: name for role, name in renamed.items()})
    big = resized(tag_map, 12, slots=6)
    assert big.tag("Permit").count == 12 and big.tag("ILimit").count == 12
    assert big.tag("CamBatteryId").count == 6 and big.tag("RobotState").count == 1
    path = tmp_path / "renamed.yaml"
    path.write_text(dump_tag_map(big))
    back = load_tag_map(path)
    assert dict(back.roles) == renamed
    assert back.fixture == replace(base.fixture, line=back.fixture.line)  # the one-station fixture carries over
    _same(back, big)


@pytest.mark.parametrize("protocol", sorted(MAPS))
def test_slots_resize_the_cameras_arrays_only(tmp_path, protocol):
    base = MAPS[protocol]
    slots0 = base.tag("vision_battery_id").count
    big = resized(base, 8, slots=16)
    for tag in base.tags:
        new = big.tag(tag.name)
        expected = tag.count * 16 // slots0 if tag.name.startswith("vision_") else tag.count
        assert new.count == expected, tag.name
    assert big.tag("vision_terminal_x_mm").count == 32 and big.tag("robot_order_seq").count == 1
    path = tmp_path / "map.yaml"
    path.write_text(dump_tag_map(big))
    _same(load_tag_map(path), big)
    with pytest.raises(ValueError, match="slots must be a positive integer, got 0"):
        resized(base, 8, slots=0)


EXTRA_MODBUS_TAGS = """
  - {name: status_bit_3, address: "holding_register:900.3", type: BOOL, access: read, owner: supervisor, unit: "", scan_group: slow}
  - {name: status_bit_9, address: "holding_register:900.9", type: BOOL, access: read, owner: supervisor, unit: "", scan_group: slow}
  - {name: energy_wh, address: "input_register:900", type: ULINT, access: read, owner: supervisor, unit: Wh, byte_order: DCBA, scan_group: slow}
  - {name: cycle_count, address: "input_register:904", type: "UINT[3]", access: read, owner: supervisor, unit: "", byte_order: BADC, scan_group: slow}
  - {name: module_serial, address: "input_register:910", type: "STRING(10)", access: read, owner: supervisor, unit: "", scan_group: slow}
  - {name: pack_voltage_v, address: "input_register:920", type: LREAL, access: read, owner: supervisor, unit: V, byte_order: CDAB, scan_group: slow}
"""


@pytest.mark.parametrize("stations", [None, 12])
def test_new_types_bits_and_byte_orders_survive_dump_and_resize(tmp_path, stations):
    source = (REPO_ROOT / "plc_tags" / "hil_modbus.yaml").read_text() + EXTRA_MODBUS_TAGS
    (tmp_path / "extra.yaml").write_text(source)
    tag_map = load_tag_map(tmp_path / "extra.yaml")
    tag_map = tag_map if stations is None else resized(tag_map, stations)
    path = tmp_path / "map.yaml"
    path.write_text(dump_tag_map(tag_map))
    back = load_tag_map(path)
    _same(back, tag_map)
    bits = [back.tag("status_bit_3").address, back.tag("status_bit_9").address]
    assert [b.bit for b in bits] == [3, 9] and bits[0].address == bits[1].address  # one register still
    assert back.tag("energy_wh").byte_order.value == "DCBA" and back.tag("cycle_count").byte_order.value == "BADC"
    assert back.tag("module_serial").type_text == "STRING(10)"
