"""The bench PLC over Modbus TCP: a pymodbus server serving a tag map's four tables.

The one file in tools/ that imports pymodbus (the controller's client is edge/bus/modbus.py).
Registers are encoded with the controller's own codec, so a byte-order mistake in a map shows
the same on both sides. Tests: tests/tools/hil/test_servers.py, tests/edge/bus/test_contract.py.
"""

from __future__ import annotations

import logging

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from edge.bus.base import plant_raw, raw_to_eu
from edge.bus.codec import decode_registers, encode_registers
from edge.tagmap import DataType, ModbusTable, Protocol, TagMap
from edge.tagmap.model import Value
from tools.hil.server_common import BenchPlcServer

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_READ_CODE = {ModbusTable.COIL: 1, ModbusTable.DISCRETE_INPUT: 2, ModbusTable.HOLDING_REGISTER: 3, ModbusTable.INPUT_REGISTER: 4}


class ModbusPlcServer(BenchPlcServer):
    protocol_name = "modbus"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0):
        if tag_map.protocol is not Protocol.MODBUS:
            raise ValueError(f"{tag_map.source}: a Modbus bench server needs protocol: modbus")
        self._server: ModbusTcpServer | None = None
        self._retained: dict = {}
        super().__init__(tag_map, host, port)

    def _device(self) -> SimDevice:
        ends = {table: 1 for table in ModbusTable}
        for tag in self.served_map.tags:
            table = tag.address.table
            ends[table] = max(ends[table], tag.address.address + tag.register_count)

        def bits(end: int) -> list[SimData]:  # count is in bits, stored 16 a register: whole registers
            return [SimData(0, count=16 * (end // 16 + 1), values=False, datatype=SimType.BITS)]

        def registers(end: int) -> list[SimData]:
            return [SimData(0, count=end, values=0, datatype=SimType.REGISTERS)]

        return SimDevice(id=0, simdata=(
            bits(ends[ModbusTable.COIL]), bits(ends[ModbusTable.DISCRETE_INPUT]),
            registers(ends[ModbusTable.HOLDING_REGISTER]), registers(ends[ModbusTable.INPUT_REGISTER]),
        ))

    async def _start_inner(self, port: int = 0) -> None:
        self._server = ModbusTcpServer(self._device(), address=(self.host, port))
        await self._server.listen()
        self._inner_port = self._server.transport.sockets[0].getsockname()[1]
        for (table, address), data in self._retained.items():  # values kept over a restart
            await self._server.context.async_setValues(0, _READ_CODE[table], address, data)

    async def _stop_inner(self) -> None:
        if self._server is None or self._server.transport is None:
            return
        self._retained = {
            (t.address.table, t.address.address): await self._server.context.async_getValues(
                0, _READ_CODE[t.address.table], t.address.address, t.register_count)
            for t in self.served_map.tags
        }
        await self._server.shutdown()

    def get(self, name: str) -> Value:
        tag = self.served_map.tag(name)
        table = tag.address.table
        data = self._loop.call(self._server.context.async_getValues(0, _READ_CODE[table], tag.address.address, tag.register_count))
        raw = tuple(bool(b) for b in data) if tag.data_type is DataType.BOOL else decode_registers(tag.data_type, tag.byte_order, data)
        return raw_to_eu(tag, raw if tag.is_array else raw[0])[0]

    def set(self, name: str, value: Value) -> None:
        tag = self.served_map.tag(name)
        raw = plant_raw(tag, value)
        elements = list(raw) if tag.is_array else [raw]
        data = elements if tag.data_type is DataType.BOOL else encode_registers(tag.data_type, tag.byte_order, elements)
        self._loop.call(self._server.context.async_setValues(0, _READ_CODE[tag.address.table], tag.address.address, data))
