"""The bench PLC over Modbus TCP: a pymodbus server serving a tag map's four tables.

The one file in tools/ that imports pymodbus (the controller's client is edge/bus/modbus.py).
Every tag is encoded with the controller's own codec (edge/bus/codec.py `encode_tag`,
`decode_tag`: every type, byte order, STRING(N), a BOOL at a bit of a register, set from the plant
side in its register as it is), so a byte-order mistake in a map shows the same on both sides;
the controller writes such a bit with FC 22 (mask write), which the server applies to the register.

Request limits, as a real device enforces them (Modbus Application Protocol 1.1b3): a read of
more than 125 registers (FC 3/4) or 2000 bits (FC 1/2), a write of more than 123 registers
(FC 16) or 1968 coils (FC 15), or a count of 0, is answered with exception 3 (Illegal Data
Value) under the request's own function code. pymodbus's server alone fails to decode an
oversized read and answers function code 0x80, and takes 2000-coil writes. Every request is
counted by function code in `requests` and every refusal in `refused`, so a test can show the
controller's plan split within the limits. Tests: tests/tools/hil/test_server_modbus_limits.py,
tests/edge/bus/test_contract.py, tests/edge/bus/test_request_plan.py; tags at the last addresses (coil 65535):
tests/tools/hil/test_bench_high_addresses.py.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest, WriteMultipleCoilsRequest
from pymodbus.pdu.register_message import (ReadHoldingRegistersRequest, ReadHoldingRegistersResponse,
                                           ReadInputRegistersRequest, ReadInputRegistersResponse,
                                           WriteMultipleRegistersRequest)
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from edge.bus.base import plant_raw, raw_to_eu
from edge.bus.codec import decode_tag, encode_tag
from edge.tagmap import ModbusTable, Protocol, TagMap
from edge.tagmap.model import Value
from tools.hil.server_common import BenchPlcServer

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_READ_CODE = {ModbusTable.COIL: 1, ModbusTable.DISCRETE_INPUT: 2, ModbusTable.HOLDING_REGISTER: 3, ModbusTable.INPUT_REGISTER: 4}
REQUEST_LIMITS = {1: 2000, 2: 2000, 3: 125, 4: 125, 15: 1968, 16: 123}
"""The most values one request of each function code may carry (bits for 1, 2, 15; registers)."""
_REQUESTS = (ReadCoilsRequest, ReadDiscreteInputsRequest, ReadHoldingRegistersRequest, ReadInputRegistersRequest,
             WriteMultipleCoilsRequest, WriteMultipleRegistersRequest)


class _HoldingAnswer(ReadHoldingRegistersResponse):
    """pymodbus's answer, packed in one call (it packs a register at a time)."""

    def encode(self) -> bytes:
        return struct.pack(f">B{len(self.registers)}H", 2 * len(self.registers), *self.registers)


class _InputAnswer(ReadInputRegistersResponse):
    encode = _HoldingAnswer.encode


_FAST_ANSWER = {3: _HoldingAnswer, 4: _InputAnswer}


def _limited(base: type, requests: Counter, refused: Counter) -> type:
    """`base` (a pymodbus request) that counts itself and refuses a count outside 1..the limit;
    register data is packed and unpacked in one call, not a register at a time."""
    limit = REQUEST_LIMITS[base.function_code]

    class Limited(base):
        over_limit = False

        def decode(self, data: bytes) -> None:
            address, count = struct.unpack(">HH", data[:4])
            requests[self.function_code] += 1
            if not 1 <= count <= limit:
                self.address, self.count, self.over_limit = address, count, True
                return
            if self.function_code != 16:
                super().decode(data)
                return
            self.address, self.count, self.byte_count = struct.unpack(">HHB", data[:5])
            self._payload_byte_count = len(data) - 5
            words = (min(len(data), self.byte_count + 5) - 5) // 2
            self.registers = list(struct.unpack_from(f">{words}H", data, 5))

        async def datastore_update(self, context, device_id: int):
            if self.over_limit:
                refused[self.function_code] += 1
                return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_VALUE)
            response = await super().datastore_update(context, device_id)
            if type(response) in (ReadHoldingRegistersResponse, ReadInputRegistersResponse):
                response.__class__ = _FAST_ANSWER[response.function_code]
            return response

    Limited.__name__ = f"Limited{base.__name__}"
    return Limited


ADDRESSES = 65536  # of each Modbus table, 0..65535


class ModbusPlcServer(BenchPlcServer):
    protocol_name = "modbus"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0):
        if tag_map.protocol is not Protocol.MODBUS:
            raise ValueError(f"{tag_map.source}: a Modbus bench server needs protocol: modbus")
        self._server: ModbusTcpServer | None = None
        self._retained: dict = {}
        self.requests: Counter = Counter()  # function code -> requests received
        self.refused: Counter = Counter()  # function code -> requests refused for their count
        self._pdus = [_limited(base, self.requests, self.refused) for base in _REQUESTS]
        super().__init__(tag_map, host, port)

    def _device(self) -> SimDevice:
        ends = {table: 1 for table in ModbusTable}
        for tag in self.served_map.tags:
            table = tag.address.table
            ends[table] = max(ends[table], tag.address.address + tag.register_count)

        # One block a table, its values a list and count 1: pymodbus's SimDevice check builds a block's
        # values count x count times (a count of N coils took N^2 booleans: coils at 9000 took 690 MB
        # and 6 s, a coil at 65535 a MemoryError), a list of N values of count 1 is N.
        def bits(end: int) -> list[SimData]:  # bits, 16 a register: whole registers, at most 65536
            return [SimData(0, count=1, values=[False] * min(16 * (end // 16 + 1), ADDRESSES), datatype=SimType.BITS)]

        def registers(end: int) -> list[SimData]:
            return [SimData(0, count=1, values=[0] * min(end, ADDRESSES), datatype=SimType.REGISTERS)]

        return SimDevice(id=0, simdata=(
            bits(ends[ModbusTable.COIL]), bits(ends[ModbusTable.DISCRETE_INPUT]),
            registers(ends[ModbusTable.HOLDING_REGISTER]), registers(ends[ModbusTable.INPUT_REGISTER]),
        ))

    async def _start_inner(self, port: int = 0) -> None:
        self._server = ModbusTcpServer(self._device(), address=(self.host, port), custom_pdu=self._pdus)
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
        return self.get_many([name])[name]

    def set(self, name: str, value: Value) -> None:
        self.set_many({name: value})

    def get_many(self, names: list[str]) -> dict[str, Value]:
        """Tags read on the plant side in one hop to the server's thread (a scan reads many)."""
        tags = [self.served_map.tag(name) for name in names]

        async def read_all():
            context = self._server.context
            return [await context.async_getValues(0, _READ_CODE[t.address.table], t.address.address, t.register_count)
                    for t in tags]

        return {name: raw_to_eu(tag, decode_tag(tag, data))[0]
                for name, tag, data in zip(names, tags, self._loop.call(read_all()))}

    def set_many(self, values: dict[str, Value]) -> None:
        """Tags set on the plant side in one hop to the server's thread, between two requests."""
        writes = []
        for name, value in values.items():
            tag = self.served_map.tag(name)
            raw = plant_raw(tag, value)
            data = None if tag.register_bit is not None else encode_tag(tag, raw)  # a bit: in its register as it is
            writes.append((tag, raw, data))

        async def write_all():
            context = self._server.context
            for tag, raw, data in writes:
                code, address = _READ_CODE[tag.address.table], tag.address.address
                if data is None:
                    data = encode_tag(tag, raw, await context.async_getValues(0, code, address, 1))
                await context.async_setValues(0, code, address, data)

        self._loop.call(write_all())
