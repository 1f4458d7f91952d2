"""Modbus request planning and the check that a response answers its request."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edge.bus.modbus import MAX_READ_REGISTERS, _check_response, _Request, plan_reads
from edge.tagmap import ModbusTable, load_tag_map

from .conftest import HERE

pytestmark = pytest.mark.unit


def test_plan_covers_every_tag_within_request_limits():
    tag_map = load_tag_map(HERE / "contract_modbus.yaml")
    plan = plan_reads(list(tag_map.tags))
    assert all(r.count <= MAX_READ_REGISTERS for r in plan if not r.table.is_bits)
    for tag in tag_map.tags:
        covered = {a for r in plan if r.table is tag.address.table for a in range(r.start, r.start + r.count)}
        assert set(range(tag.address.address, tag.address.address + tag.register_count)) <= covered, tag.name
    # 64 REALs are 128 registers: two input-register requests, cut on a REAL boundary
    temps = [r for r in plan if r.table is ModbusTable.INPUT_REGISTER and r.start < 128]
    assert [(r.start, r.count) for r in temps] == [(0, 124), (124, 4)]


def response(code, registers=(), bits=(), error=False):
    return SimpleNamespace(isError=lambda: error, function_code=code, registers=list(registers), bits=list(bits),
                           exception_code=2)


def test_response_must_answer_the_request():
    request = _Request(ModbusTable.HOLDING_REGISTER, 10, 4, ())
    assert _check_response(response(3, [1, 2, 3, 4]), request) == ""
    assert "function code 4" in _check_response(response(4, [1, 2, 3, 4]), request)
    assert "3 values" in _check_response(response(3, [1, 2, 3]), request)
    assert "exception 2" in _check_response(response(0x83, error=True), request)
    coils = _Request(ModbusTable.COIL, 0, 3, ())
    assert _check_response(response(1, bits=[True] * 8), coils) == ""  # bits come padded to a byte


def test_register_answers_and_writes_pack_as_pymodbus_does():
    import struct

    from pymodbus.pdu.register_message import (ReadHoldingRegistersResponse, ReadInputRegistersResponse,
                                               WriteMultipleRegistersRequest)

    from edge.bus.modbus import _HoldingAnswer, _InputAnswer, _WriteRegisters

    for ours, theirs in ((_HoldingAnswer, ReadHoldingRegistersResponse), (_InputAnswer, ReadInputRegistersResponse)):
        assert ours.function_code == theirs.function_code
        for count in (1, 2, 124, 125):
            data = struct.pack(f">B{count}H", 2 * count, *(65535 - 7 * i for i in range(count)))
            a, b = ours(), theirs()
            a.decode(data)
            b.decode(data)
            assert a.registers == b.registers and len(a.registers) == count
    values = [0, 1, 65535, *range(100, 220)]
    assert _WriteRegisters(address=7, registers=values).encode() == \
        WriteMultipleRegistersRequest(address=7, registers=values).encode()
