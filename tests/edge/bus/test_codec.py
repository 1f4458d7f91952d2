"""The codec: golden vectors for every type and every byte and word order, on Modbus and CIP, and round trips.

The golden registers are written out by hand from the IEEE 754 / two's-complement bytes (A the
most significant), not computed with the codec."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.bus.codec import (
    CIP_STRING_BYTES,
    CIP_TYPE_CODE,
    apply_mask_write,
    cip_bit,
    cip_with_bit,
    decode_cip,
    decode_registers,
    decode_string,
    decode_tag,
    encode_cip,
    encode_registers,
    encode_string,
    encode_tag,
    mask_write_masks,
    register_bit,
)
from edge.tagmap import Access, ByteOrder, DataType, ModbusAddress, ModbusTable, Owner, Scaling, Tag

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
    # 16-bit unsigned
    (DataType.UINT, ByteOrder.ABCD, [0x1234, 65535, 0], [0x1234, 0xFFFF, 0x0000]),
    (DataType.UINT, ByteOrder.CDAB, [0x1234], [0x1234]),
    (DataType.UINT, ByteOrder.BADC, [0x1234], [0x3412]),
    (DataType.UINT, ByteOrder.DCBA, [0x1234, 0x8001], [0x3412, 0x0180]),
    # 32-bit unsigned: 0xDEADBEEF is above DINT's range
    (DataType.UDINT, ByteOrder.ABCD, [0xDEADBEEF], [0xDEAD, 0xBEEF]),
    (DataType.UDINT, ByteOrder.CDAB, [0xDEADBEEF], [0xBEEF, 0xDEAD]),
    (DataType.UDINT, ByteOrder.BADC, [0xDEADBEEF], [0xADDE, 0xEFBE]),
    (DataType.UDINT, ByteOrder.DCBA, [0xDEADBEEF], [0xEFBE, 0xADDE]),
    # 64-bit: bytes A..H = 01 02 03 04 05 06 07 08; CDAB = low word first (GH EF CD AB)
    (DataType.LINT, ByteOrder.ABCD, [0x0102030405060708], [0x0102, 0x0304, 0x0506, 0x0708]),
    (DataType.LINT, ByteOrder.CDAB, [0x0102030405060708], [0x0708, 0x0506, 0x0304, 0x0102]),
    (DataType.LINT, ByteOrder.BADC, [0x0102030405060708], [0x0201, 0x0403, 0x0605, 0x0807]),
    (DataType.LINT, ByteOrder.DCBA, [0x0102030405060708], [0x0807, 0x0605, 0x0403, 0x0201]),
    (DataType.LINT, ByteOrder.ABCD, [-2, 2**63 - 1], [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE, 0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF]),
    (DataType.ULINT, ByteOrder.ABCD, [2**64 - 1], [0xFFFF] * 4),
    (DataType.ULINT, ByteOrder.CDAB, [0x8000000000000001], [0x0001, 0x0000, 0x0000, 0x8000]),
    (DataType.ULINT, ByteOrder.DCBA, [0x8000000000000001], [0x0100, 0x0000, 0x0000, 0x0080]),
    # LREAL: 1.0 = 3FF0 0000 0000 0000; 123.456 = 405E DD2F 1A9F BE77
    (DataType.LREAL, ByteOrder.ABCD, [1.0], [0x3FF0, 0x0000, 0x0000, 0x0000]),
    (DataType.LREAL, ByteOrder.CDAB, [1.0], [0x0000, 0x0000, 0x0000, 0x3FF0]),
    (DataType.LREAL, ByteOrder.BADC, [1.0], [0xF03F, 0x0000, 0x0000, 0x0000]),
    (DataType.LREAL, ByteOrder.DCBA, [1.0], [0x0000, 0x0000, 0x0000, 0xF03F]),
    (DataType.LREAL, ByteOrder.ABCD, [123.456], [0x405E, 0xDD2F, 0x1A9F, 0xBE77]),
    (DataType.LREAL, ByteOrder.CDAB, [123.456], [0xBE77, 0x1A9F, 0xDD2F, 0x405E]),
    (DataType.LREAL, ByteOrder.BADC, [123.456], [0x5E40, 0x2FDD, 0x9F1A, 0x77BE]),
    (DataType.LREAL, ByteOrder.DCBA, [123.456], [0x77BE, 0x9F1A, 0x2FDD, 0x5E40]),
]


@pytest.mark.parametrize("data_type,order,values,registers", GOLDEN)
def test_golden_vectors(data_type, order, values, registers):
    assert encode_registers(data_type, order, values) == registers
    decoded = decode_registers(data_type, order, registers)
    if data_type.is_float:
        assert decoded == pytest.approx(tuple(values), rel=1e-7)
    else:
        assert decoded == tuple(values) and all(isinstance(v, int) for v in decoded)  # exact, even 64-bit


def test_lreal_keeps_float64_precision():
    value = 0.1 + 0.2  # 0.30000000000000004: float32 would lose it
    for order in ByteOrder:
        assert decode_registers(DataType.LREAL, order, encode_registers(DataType.LREAL, order, [value])) == (value,)


@given(st.sampled_from(list(ByteOrder)), st.sampled_from([DataType.LINT, DataType.ULINT, DataType.UDINT, DataType.UINT]),
       st.data())
def test_unsigned_and_64_bit_round_trip(order, data_type, data):
    low, high = data_type.raw_range
    values = data.draw(st.lists(st.integers(low, high), min_size=1, max_size=40))
    registers = encode_registers(data_type, order, values)
    assert all(0 <= r <= 0xFFFF for r in registers) and len(registers) == data_type.registers * len(values)
    assert decode_registers(data_type, order, registers) == tuple(values)


@given(st.sampled_from(list(ByteOrder)), st.lists(st.floats(allow_nan=False), min_size=1, max_size=40))
def test_lreal_round_trip(order, values):
    assert decode_registers(DataType.LREAL, order, encode_registers(DataType.LREAL, order, values)) == tuple(values)


# -- STRING(N) on Modbus: two characters a register, first in the high byte (AB) or the low (BA)
STRING_GOLDEN = [
    ("ABC", 4, ByteOrder.ABCD, [0x4142, 0x4300]),
    ("ABC", 4, ByteOrder.CDAB, [0x4142, 0x4300]),  # word order does not apply: registers in text order
    ("ABC", 4, ByteOrder.BADC, [0x4241, 0x0043]),
    ("ABC", 4, ByteOrder.DCBA, [0x4241, 0x0043]),
    ("ABC", 3, ByteOrder.ABCD, [0x4142, 0x4300]),  # 3 characters take 2 registers
    ("", 2, ByteOrder.ABCD, [0x0000]),
    ("OK12", 6, ByteOrder.ABCD, [0x4F4B, 0x3132, 0x0000]),
]


@pytest.mark.parametrize("text,chars,order,registers", STRING_GOLDEN)
def test_string_golden_vectors(text, chars, order, registers):
    assert encode_string(text, chars, order) == registers
    assert decode_string(registers, order) == text


def test_string_refusals_and_reads():
    with pytest.raises(ValueError, match="holds 4"):
        encode_string("ABCDE", 4)
    with pytest.raises(ValueError, match="ASCII"):
        encode_string("\u00e9t\u00e9", 8)
    with pytest.raises(ValueError, match="ASCII"):
        encode_string("a\0b", 8)
    assert decode_string([0x4142, 0x0043]) == "AB"  # reads to the first NUL
    assert decode_string([0xE941]) == "\u00e9A"  # a byte above 0x7F from a device is read, not refused


# -- a bit of a register, and FC 22
def test_register_bits_and_mask_write():
    assert register_bit(0x0008, 3) is True and register_bit(0x0008, 2) is False
    assert register_bit(0x8000, 15) is True
    assert mask_write_masks({3: True, 5: False}) == (0xFFD7, 0x0008)
    assert mask_write_masks({0: True, 15: True}) == (0x7FFE, 0x8001)
    # the specification's own example (MODBUS Application Protocol 1.1b3, 6.16)
    assert apply_mask_write(0x12, 0xF2, 0x25) == 0x17
    and_mask, or_mask = mask_write_masks({3: True, 5: False})
    assert apply_mask_write(0x00F0, and_mask, or_mask) == 0x00D8  # bit 3 set, bit 5 cleared, 4/6/7 kept
    assert apply_mask_write(0xFFFF, *mask_write_masks({15: False})) == 0x7FFF


def _tag(data_type, address, count=1, order=ByteOrder.ABCD, chars=0):
    return Tag("t", address, data_type, count, Access.READ, Owner.RTCORE, "", Scaling(), None, order, None, "fast",
               string_chars=chars)


def test_whole_tags_as_the_bench_servers_store_them():
    bit = _tag(DataType.BOOL, ModbusAddress(ModbusTable.HOLDING_REGISTER, 20, 3))
    assert bit.register_count == 1
    assert decode_tag(bit, [0x0008]) is True and decode_tag(bit, [0xFFF7]) is False
    assert encode_tag(bit, True, current=[0x00F0]) == [0x00F8]
    assert encode_tag(bit, False, current=[0xFFFF]) == [0xFFF7]
    with pytest.raises(ValueError, match="current"):
        encode_tag(bit, True)
    coils = _tag(DataType.BOOL, ModbusAddress(ModbusTable.COIL, 0), count=3)
    assert encode_tag(coils, (True, False, True)) == [True, False, True]
    assert decode_tag(coils, [True, False, True, False, False]) == (True, False, True)  # answers pad to a byte
    text = _tag(DataType.STRING, ModbusAddress(ModbusTable.HOLDING_REGISTER, 0), order=ByteOrder.BADC, chars=5)
    assert text.register_count == 3
    assert encode_tag(text, "AB") == [0x4241, 0x0000, 0x0000]
    assert decode_tag(text, [0x4241, 0x0000, 0x0000]) == "AB"
    counts = _tag(DataType.ULINT, ModbusAddress(ModbusTable.INPUT_REGISTER, 0), count=2, order=ByteOrder.CDAB)
    assert counts.register_count == 8
    wire = encode_tag(counts, (1, 2**64 - 1))
    assert wire == [1, 0, 0, 0] + [0xFFFF] * 4
    assert decode_tag(counts, wire) == (1, 2**64 - 1)
    one = _tag(DataType.LREAL, ModbusAddress(ModbusTable.INPUT_REGISTER, 0))
    assert decode_tag(one, encode_tag(one, 2.5)) == 2.5


# -- CIP (Logix): little-endian atomic data and the 88-byte STRING structure
CIP_GOLDEN = [
    (DataType.BOOL, [True, False], bytes([1, 0])),
    (DataType.INT, [-2], bytes.fromhex("feff")),
    (DataType.UINT, [0x1234], bytes.fromhex("3412")),
    (DataType.DINT, [-2], bytes.fromhex("feffffff")),
    (DataType.UDINT, [0xDEADBEEF], bytes.fromhex("efbeadde")),
    (DataType.LINT, [0x0102030405060708], bytes.fromhex("0807060504030201")),
    (DataType.ULINT, [2**64 - 1], bytes.fromhex("ffffffffffffffff")),
    (DataType.REAL, [1.0], bytes.fromhex("0000803f")),
    (DataType.LREAL, [1.0], bytes.fromhex("000000000000f03f")),
    (DataType.STRING, ["Hi"], bytes.fromhex("02000000") + b"Hi" + bytes(82)),  # LEN, DATA[82], 2 pad
]


@pytest.mark.parametrize("data_type,values,data", CIP_GOLDEN)
def test_cip_golden_vectors(data_type, values, data):
    assert encode_cip(data_type, values) == data
    assert decode_cip(data_type, data) == tuple(values)


def test_cip_types_strings_and_bits():
    assert CIP_TYPE_CODE[DataType.UINT] == 0xC7 and CIP_TYPE_CODE[DataType.LREAL] == 0xCB
    assert CIP_TYPE_CODE[DataType.ULINT] == 0xC9 and CIP_TYPE_CODE[DataType.STRING] == 0x0FCE
    assert CIP_STRING_BYTES == 88
    assert len(encode_cip(DataType.STRING, ["x" * 82, ""])) == 176
    with pytest.raises(ValueError, match="holds 82"):
        encode_cip(DataType.STRING, ["x" * 83])
    with pytest.raises(ValueError, match="LEN is 90"):
        decode_cip(DataType.STRING, bytes.fromhex("5a000000") + bytes(84))
    with pytest.raises(ValueError, match="whole number"):
        decode_cip(DataType.DINT, bytes(6))
    assert cip_bit(-1, 31) is True and cip_bit(0x20, 5) is True and cip_bit(0x20, 4) is False
    assert cip_with_bit(DataType.DINT, 0, 31, True) == -(2**31)
    assert cip_with_bit(DataType.DINT, -1, 0, False) == -2
    assert cip_with_bit(DataType.UINT, 0, 15, True) == 0x8000
    assert cip_with_bit(DataType.INT, 0x7FFF, 15, True) == -1
    with pytest.raises(ValueError, match="0..31"):
        cip_with_bit(DataType.DINT, 0, 32, True)
    with pytest.raises(ValueError, match="integer"):
        cip_with_bit(DataType.REAL, 0, 1, True)


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
    with pytest.raises(ValueError, match="encode_string"):
        encode_registers(DataType.STRING, ByteOrder.ABCD, ["x"])
    with pytest.raises(ValueError, match="whole number of LREAL"):
        decode_registers(DataType.LREAL, ByteOrder.ABCD, [1, 2])
