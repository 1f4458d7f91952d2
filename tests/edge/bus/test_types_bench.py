"""The wider types against the HIL bench's servers over the real protocols on 127.0.0.1.

Both sides use edge/bus/codec.py: the controller (modbus.py, pycomm3 for Logix) and the bench
(tools/hil/server_modbus.py `encode_tag`/`decode_tag`, server_logix.py `encode_cip`/`decode_cip`/
`cip_with_bit`). Every value set on the plant side reads back exact on the bus, every write lands;
a bit written keeps the other bits of its register or DINT. A type the bench does not serve yet
skips its test with the bench's own message.
"""

from __future__ import annotations

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import Owner, load_tag_map

from .test_types_logix import MAP as LOGIX_MAP
from .test_types_modbus import MAP as MODBUS_MAP

pytestmark = pytest.mark.contract


def serve(kind: str, text: str, tmp_path):
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    tag_map = load_tag_map(path)
    if kind == "modbus":
        from tools.hil.server_modbus import ModbusPlcServer as Server
    else:
        from tools.hil.server_logix import LogixPlcServer as Server
    try:
        return Server(tag_map)
    except ValueError as exc:
        if "does not serve" in str(exc):
            pytest.skip(f"the bench: {exc}")
        raise


@pytest.fixture
def modbus(tmp_path):
    server = serve("modbus", MODBUS_MAP, tmp_path)
    yield server
    server.close()


def test_modbus_bench_serves_every_new_type(modbus):
    plant = {"count_u16": 65535, "total_u32": 4_000_000_000, "energy_wh": (-(2**62) - 3, 2**62 + 5),
             "serial": 2**64 - 2, "voltage_v": 230.123456789012, "recipe": "RECIPE-7", "door_open": True,
             "fan_on": False}
    modbus.set_many(plant)
    with open_bus(modbus.tag_map, Owner.RTCORE) as bus:
        read = {r.name: r for r in bus.read(list(plant))}
        assert {n: r.quality for n, r in read.items()} == {n: Quality.GOOD for n in plant}
        assert {n: r.value for n, r in read.items()} == plant
        modbus.set("lamp", False)
        modbus.set("horn", True)  # the PLC's bit beside ours
        written = bus.write({"lamp": True, "beacon": True, "big_count": 2**64 - 1, "offset_lint": -(2**63),
                             "gain": (0.1 + 0.2, -7.5), "label": "AB c", "total_setpoint": 4_294_967_295,
                             "limit_u16": 65535})
        assert [w.quality for w in written] == [Quality.GOOD] * 8, written
    got = modbus.get_many(["lamp", "horn", "beacon", "big_count", "offset_lint", "gain", "label", "total_setpoint",
                           "limit_u16"])
    assert got == {"lamp": True, "horn": True, "beacon": True, "big_count": 2**64 - 1, "offset_lint": -(2**63),
                   "gain": (0.1 + 0.2, -7.5), "label": "AB c", "total_setpoint": 4_294_967_295, "limit_u16": 65535}


def logix_server(tmp_path, text):
    return serve("logix", text, tmp_path)


def test_logix_bench_serves_the_new_types_program_scope_modules_udt_members_and_bits(tmp_path):
    text = "\n".join(line for line in LOGIX_MAP.splitlines() if "name: recipe" not in line) + "\n"
    server = logix_server(tmp_path, text)
    try:
        plant = {"counts": (1, 2, 65535), "energy_wh": (2**62 + 3, -5), "door_open": True,
                 "voltage_v": 0.1 + 0.2, "cell_temp_degc": 21.5, "level_pct": 42.0}
        for name, value in plant.items():
            server.set(name, value)
        with open_bus(server.tag_map, Owner.RTCORE) as bus:
            read = {r.name: r for r in bus.read(list(plant))}
            assert {n: r.quality for n, r in read.items()} == {n: Quality.GOOD for n in plant}, read
            assert read["counts"].value == (1, 2, 65535) and read["energy_wh"].value == (2**62 + 3, -5)
            assert read["door_open"].value is True and read["voltage_v"].value == 0.1 + 0.2
            assert read["cell_temp_degc"].value == 21.5 and read["level_pct"].value == pytest.approx(42.0)
            written = bus.write({"serial": 2**64 - 1, "lamp": True, "total": 12.5, "out2": 7})
            assert [w.quality for w in written] == [Quality.GOOD] * 4, written
        assert server.get("serial") == 2**64 - 1 and server.get("lamp") is True
        assert server.get("total") == pytest.approx(12.5) and server.get("out2") == 7
        assert server.get("door_open") is True  # bit 5 of Status; the bit write went to DL4.In.Status
    finally:
        server.close()


def test_logix_bench_serves_a_string(tmp_path):
    server = logix_server(tmp_path, LOGIX_MAP)
    try:
        with open_bus(server.tag_map, Owner.RTCORE) as bus:
            assert bus.write({"recipe": "BATCH-42"})[0].quality is Quality.GOOD
            assert server.get("recipe") == "BATCH-42"
            assert bus.read(["recipe"])[0].value == "BATCH-42"
            server.set("recipe", "x" * 82)
            assert bus.read(["recipe"])[0].value == "x" * 82
    finally:
        server.close()
