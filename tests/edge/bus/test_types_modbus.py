"""The Modbus backend with the wider types: request plans with bits, 64-bit values and strings,
and a loopback round trip of every type against a plain pymodbus server (its own datastore, its
own FC 22), which shows that writing a bit of a holding register keeps the register's other bits.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.bus import Quality, open_bus
from edge.bus.codec import decode_registers, decode_string, encode_registers
from edge.bus.modbus import MAX_READ_REGISTERS, MAX_WRITE_REGISTERS, _check_mask_response, _Request, plan_reads, plan_writes
from edge.tagmap import ByteOrder, DataType, ModbusTable, Owner, load_tag_map

pytestmark = pytest.mark.integration

MAP = """\
connection:
  name: types
  protocol: modbus
  endpoint: {host: 127.0.0.1, port: 502}
  timeout_s: 1.0
scan_groups:
  fast: 100
tags:
  - {name: count_u16, address: input_register:0, type: UINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: total_u32, address: input_register:1, type: UDINT, access: read, owner: rtcore, unit: "", scan_group: fast, byte_order: CDAB}
  - {name: energy_wh, address: input_register:3, type: "LINT[2]", access: read, owner: rtcore, unit: Wh, scan_group: fast, byte_order: DCBA}
  - {name: serial, address: input_register:11, type: ULINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: voltage_v, address: input_register:15, type: LREAL, access: read, owner: rtcore, unit: V, scan_group: fast, byte_order: BADC}
  - {name: recipe, address: input_register:19, type: STRING(9), access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: door_open, address: "input_register:24.0", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: fan_on, address: "input_register:24.15", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: lamp, address: "holding_register:40.3", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: horn, address: "holding_register:40.5", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: beacon, address: "40044.0", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: limit_u16, address: 40042, type: UINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 65535}, safe_value: 0}
  - {name: big_count, address: holding_register:50, type: ULINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 18446744073709551615}, safe_value: 0, byte_order: CDAB}
  - {name: offset_lint, address: holding_register:54, type: LINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: -9223372036854775808, max: 9223372036854775807}, safe_value: 0}
  - {name: gain, address: holding_register:58, type: "LREAL[2]", access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: -1.0e+6, max: 1.0e+6}, safe_value: 0.0, byte_order: DCBA}
  - {name: label, address: holding_register:70, type: STRING(5), access: write, owner: rtcore, unit: "", scan_group: fast,
     safe_value: "", byte_order: BADC}
  - {name: total_setpoint, address: "400081", type: UDINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 4294967295}, safe_value: 0}
"""


@pytest.fixture
def tag_map(tmp_path):
    path = tmp_path / "types.yaml"
    path.write_text(MAP)
    return load_tag_map(path)


# -- plans --------------------------------------------------------------------------------------------
def test_read_plan_reads_bits_with_their_register(tag_map):
    plan = plan_reads(list(tag_map.tags))
    inputs = [r for r in plan if r.table is ModbusTable.INPUT_REGISTER]
    assert [(r.start, r.count) for r in inputs] == [(0, 25)]  # 0..24: the bits' register 24 included
    holding = [r for r in plan if r.table is ModbusTable.HOLDING_REGISTER]
    assert [(r.start, r.count) for r in holding] == [(40, 42)]  # 40..81 across holes of at most 8
    assert not any(r.mask for r in plan)


def test_write_plan_sends_bits_of_a_register_as_one_mask_write_never_in_fc16(tag_map):
    outputs = [t for t in tag_map.tags if t.access.value == "write"]
    plan = plan_writes(outputs)
    masks = [(r.start, tuple(t.name for t in r.tags)) for r in plan if r.mask]
    assert masks == [(40, ("lamp", "horn")), (43, ("beacon",))]  # two bits of register 40 share one FC 22
    blocks = [(r.start, r.count) for r in plan if not r.mask]
    # FC 16 covers 41 (limit_u16), 50..65, 70..72, 80..81 (no holes): never register 40 or 43
    assert blocks == [(41, 1), (50, 16), (70, 3), (80, 2)]
    assert all(not (r.start <= 40 < r.start + r.count or r.start <= 43 < r.start + r.count) for r in plan if not r.mask)


def test_wide_values_never_straddle_two_requests(tmp_path):
    text = MAP.split("tags:\n")[0] + "tags:\n" + """\
  - {name: first, address: input_register:0, type: INT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: wide, address: input_register:1, type: "LINT[70]", access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: text, address: input_register:290, type: STRING(246), access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: out, address: holding_register:0, type: "LREAL[40]", access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 1}, safe_value: 0}
  - {name: out_text, address: holding_register:200, type: STRING(246), access: write, owner: rtcore, unit: "", scan_group: fast,
     safe_value: ""}
"""
    path = tmp_path / "wide.yaml"
    path.write_text(text)
    tag_map = load_tag_map(path)
    reads = [r for r in plan_reads(list(tag_map.tags)) if r.table is ModbusTable.INPUT_REGISTER]
    assert all(r.count <= MAX_READ_REGISTERS for r in reads)
    # the INT and 31 LINTs fill 0..124; then 31 LINTs a request, cut on LINT boundaries (1 + 4k)
    assert [(r.start, r.count) for r in reads] == [(0, 125), (125, 124), (249, 32), (290, 123)]
    writes = plan_writes([tag_map.tag("out"), tag_map.tag("out_text")])
    assert all(r.count <= MAX_WRITE_REGISTERS and r.count % 4 == 0 for r in writes if r.start < 200)
    assert [(r.start, r.count) for r in writes if r.start >= 200] == [(200, 123)]


def test_a_mask_write_answer_must_echo_the_request():
    request = _Request(ModbusTable.HOLDING_REGISTER, 40, 1, (), mask=True)

    def answer(code=22, address=40, and_mask=0xFFD7, or_mask=0x0008, error=False):
        return SimpleNamespace(isError=lambda: error, function_code=code, address=address, and_mask=and_mask,
                               or_mask=or_mask, exception_code=1)

    assert _check_mask_response(answer(), request, 0xFFD7, 0x0008) == ""
    assert "exception 1 for mask write (FC 22)" in _check_mask_response(answer(error=True), request, 0xFFD7, 0x0008)
    assert "function code 16" in _check_mask_response(answer(code=16), request, 0xFFD7, 0x0008)
    assert "echoes (41," in _check_mask_response(answer(address=41), request, 0xFFD7, 0x0008)


# -- a loopback round trip -----------------------------------------------------------------------------
class PlainModbusServer:
    """pymodbus's own server and datastore (FC 22 included), on a loop thread: registers in and out."""

    def __init__(self):
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType as SimType
        from pymodbus.simulator import SimData, SimDevice

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        device = SimDevice(id=0, simdata=(
            [SimData(0, count=256, values=False, datatype=SimType.BITS)],
            [SimData(0, count=256, values=False, datatype=SimType.BITS)],
            [SimData(0, count=300, values=0, datatype=SimType.REGISTERS)],
            [SimData(0, count=300, values=0, datatype=SimType.REGISTERS)],
        ))

        async def start():
            self.server = ModbusTcpServer(device, address=("127.0.0.1", 0))
            await self.server.listen()
            return self.server.transport.sockets[0].getsockname()[1]

        self.port = self.call(start())

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def registers(self, code: int, address: int, count: int) -> list[int]:
        return list(self.call(self.server.context.async_getValues(0, code, address, count)))

    def set_registers(self, code: int, address: int, values: list[int]) -> None:
        self.call(self.server.context.async_setValues(0, code, address, values))

    def close(self):
        self.call(self.server.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server():
    plain = PlainModbusServer()
    yield plain
    plain.close()


def test_every_type_round_trips_over_modbus_tcp(tag_map, server):
    inputs = (encode_registers(DataType.UINT, ByteOrder.ABCD, [65535])
              + encode_registers(DataType.UDINT, ByteOrder.CDAB, [4_000_000_000])
              + encode_registers(DataType.LINT, ByteOrder.DCBA, [-(2**62) - 3, 2**62 + 5])
              + encode_registers(DataType.ULINT, ByteOrder.ABCD, [2**64 - 2])
              + encode_registers(DataType.LREAL, ByteOrder.BADC, [230.123456789012])
              + [0x5245, 0x4349, 0x5045, 0x2D37, 0x0000]  # "RECIPE-7"
              + [0x8001])  # bits 0 and 15
    server.set_registers(4, 0, inputs)
    with open_bus(tag_map.with_endpoint("127.0.0.1", server.port), Owner.RTCORE) as bus:
        names = ["count_u16", "total_u32", "energy_wh", "serial", "voltage_v", "recipe", "door_open", "fan_on"]
        values = {r.name: r for r in bus.read(names)}
        assert all(r.quality is Quality.GOOD for r in values.values()), values
        assert values["count_u16"].value == 65535
        assert values["total_u32"].value == 4_000_000_000
        assert values["energy_wh"].value == (-(2**62) - 3, 2**62 + 5)  # exact: beyond float64's 53 bits
        assert values["serial"].value == 2**64 - 2
        assert values["voltage_v"].value == 230.123456789012
        assert values["recipe"].value == "RECIPE-7"
        assert values["door_open"].value is True and values["fan_on"].value is True

        # writes: the PLC's own bits of register 40 (0, 1, 15) stay as they are
        server.set_registers(3, 40, [0x8003])
        written = bus.write({"lamp": True, "horn": True, "beacon": True, "limit_u16": 65535,
                             "big_count": 2**64 - 1, "offset_lint": -(2**63), "gain": (0.1 + 0.2, -7.5),
                             "label": "AB c", "total_setpoint": 4_294_967_295})
        assert [w.quality for w in written] == [Quality.GOOD] * 9, written
        assert server.registers(3, 40, 1) == [0x8003 | 0x0028]
        assert server.registers(3, 43, 1) == [0x0001]
        assert server.registers(3, 41, 1) == [0xFFFF]
        assert decode_registers(DataType.ULINT, ByteOrder.CDAB, server.registers(3, 50, 4)) == (2**64 - 1,)
        assert decode_registers(DataType.LINT, ByteOrder.ABCD, server.registers(3, 54, 4)) == (-(2**63),)
        assert decode_registers(DataType.LREAL, ByteOrder.DCBA, server.registers(3, 58, 8)) == (0.1 + 0.2, -7.5)
        assert decode_string(server.registers(3, 70, 3), ByteOrder.BADC) == "AB c"
        assert decode_registers(DataType.UDINT, ByteOrder.ABCD, server.registers(3, 80, 2)) == (4_294_967_295,)

        server.set_registers(3, 40, [0xFFFF])  # the PLC sets every bit; we clear two
        assert [w.quality for w in bus.write({"lamp": False, "horn": False})] == [Quality.GOOD] * 2
        assert server.registers(3, 40, 1) == [0xFFFF & ~0x0028]
        back = {r.name: r.value for r in bus.read(["lamp", "horn", "label", "gain"])}
        assert back == {"lamp": False, "horn": False, "label": "AB c", "gain": (0.1 + 0.2, -7.5)}


def test_values_outside_the_new_types_are_refused_before_sending(tag_map, server):
    with open_bus(tag_map.with_endpoint("127.0.0.1", server.port), Owner.RTCORE) as bus:
        written = {w.name: w for w in bus.write({"label": "toolong", "limit_u16": 65536, "big_count": -1,
                                                 "lamp": 2, "offset_lint": 2**63})}
        assert {n: w.quality for n, w in written.items()} == {n: Quality.REFUSED_LIMITS for n in written}
        assert "holds 5" in written["label"].detail
        assert bus.write({"label": "caf\u00e9"})[0].quality is Quality.REFUSED_LIMITS
        assert server.registers(3, 40, 40) == [0] * 40  # nothing was sent


def test_a_device_without_fc22_makes_the_bit_bad_and_sends_nothing_else_in_its_place(tag_map, server):
    """pymodbus's server answers FC 22 on holding registers; on an address it lacks it answers an
    exception: the bit tag reads BAD_DEVICE (a real device without FC 22 answers exception 1)."""
    far = Path(tag_map.source).read_text().replace('"40044.0"', '"holding_register:299.0"')
    far = far.replace("holding_register:299.0", "holding_register:999.0")
    path = Path(tag_map.source).with_name("far.yaml")
    path.write_text(far)
    with open_bus(load_tag_map(path).with_endpoint("127.0.0.1", server.port), Owner.RTCORE) as bus:
        results = {w.name: w.quality for w in bus.write({"beacon": True, "lamp": True})}
    assert results == {"beacon": Quality.BAD_DEVICE, "lamp": Quality.GOOD}
    assert server.registers(3, 40, 1) == [0x0008]
