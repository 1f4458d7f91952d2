"""The register codec: golden vectors for every byte and word order, and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.bus.codec import decode_registers, encode_registers
from edge.tagmap import ByteOrder, DataType

pytestmark = pytest.mark.unit

# 123.456 as float32 is 0x42F6E979; DINT 0x12345678; INT -2 is 0xFFFE. The four layouts of a
# 32-bit value as Modbus devices publish them (A = most significant byte).
GOLDEN = [
    (DataType.REAL, ByteOrder.ABCD, [123.456], [0x42F6, 0xE979]),
    (DataType.REAL, ByteOrder.CDAB, [123.456], [0xE979, 0x42F6]),
    (DataType.REAL, ByteOrder.BADC, [123.456], [0xF642, 0x79E9]),
    (DataType.REAL, ByteOrder.DCBA, [123.456], [0x79E9, 0xF642]),
    (DataType.DINT, ByteOrder.ABCD, [0x12345678], [0x1234, 0x5678]),
    (DataType.DINT, ByteOrder.CDAB, [0x12345678], [0x5678, 0x1234]),
    (DataType.DINT, ByteOrder.BADC, [0x12345678], [0x3412, 0x7856]),
    (DataType.DINT, ByteOrder.DCBA, [0x12345678], [0x7856, 0x3412]),
    (DataType.DINT, ByteOrder.ABCD, [-1, -2], [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE]),
    (DataType.INT, ByteOrder.ABCD, [-2, 258], [0xFFFE, 0x0102]),
    (DataType.INT, ByteOrder.CDAB, [-2, 258], [0xFFFE, 0x0102]),
    (DataType.INT, ByteOrder.BADC, [-2, 258], [0xFEFF, 0x0201]),
    (DataType.INT, ByteOrder.DCBA, [-2, 258], [0xFEFF, 0x0201]),
    (DataType.REAL, ByteOrder.ABCD, [1.0, -2.0], [0x3F80, 0x0000, 0xC000, 0x0000]),
    (DataType.REAL, ByteOrder.CDAB, [1.0, -2.0], [0x0000, 0x3F80, 0x0000, 0xC000]),
]


@pytest.mark.parametrize("data_type,order,values,registers", GOLDEN)
def test_golden_vectors(data_type, order, values, registers):
    assert encode_registers(data_type, order, values) == registers
    decoded = decode_registers(data_type, order, registers)
    assert decoded == pytest.approx(tuple(values), rel=1e-7)


@given(st.sampled_from(list(ByteOrder)), st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=70))
def test_real_round_trip(order, values):
    assert decode_registers(DataType.REAL, order, encode_registers(DataType.REAL, order, values)) == tuple(values)


@given(st.sampled_from(list(ByteOrder)), st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=70))
def test_dint_round_trip(order, values):
    registers = encode_registers(DataType.DINT, order, values)
    assert all(0 <= r <= 0xFFFF for r in registers) and len(registers) == 2 * len(values)
    assert decode_registers(DataType.DINT, order, registers) == tuple(values)


def test_nan_survives_and_bad_shapes_are_refused():
    assert math.isnan(decode_registers(DataType.REAL, ByteOrder.CDAB, encode_registers(DataType.REAL, ByteOrder.CDAB, [math.nan]))[0])
    with pytest.raises(ValueError, match="whole number"):
        decode_registers(DataType.REAL, ByteOrder.ABCD, [1, 2, 3])
    with pytest.raises(ValueError, match="coils"):
        encode_registers(DataType.BOOL, ByteOrder.ABCD, [True])
