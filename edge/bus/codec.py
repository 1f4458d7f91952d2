"""Pure codec between raw PLC values and their wire forms: Modbus registers and bits, CIP data.

No I/O. The one place the controller (modbus.py) and the bench's PLC servers (tools/hil/) turn
values into wire data and back, so a byte-order mistake in a map shows the same on both sides.

Modbus registers (`encode_registers`, `decode_registers`): a value of W registers (16-bit INT,
UINT: 1; 32-bit DINT, UDINT, REAL: 2; 64-bit LINT, ULINT, LREAL: 4) goes on the wire in the order
the tag's `ByteOrder` names: high word first (ABCD, BADC) or low word first (CDAB, DCBA), and
the two bytes of each word AB (ABCD, CDAB) or BA (BADC, DCBA). A STRING(N) (`encode_string`,
`decode_string`) is ASCII, two characters a register in text order, the first in the high byte
(AB) or the low byte (BA), padded with NUL; it reads up to its first NUL.
A BOOL at a bit of a register: `register_bit` reads it; a write is Modbus FC 22 (mask write
register: the device sets only the masked bits, in one step, so bits the PLC owns in the same
register are never written back stale), its masks from `mask_write_masks` and the device's rule
in `apply_mask_write`.
`encode_tag` / `decode_tag`: a tag's whole wire data (registers, or bits for coils and discrete
inputs), what a server's datastore holds at the tag's address.

CIP (EtherNet/IP, Logix): `CIP_TYPE_CODE`, and `encode_cip` / `decode_cip` for the little-endian
data of atomic types and of the Logix STRING structure (LEN DINT, DATA SINT[82], 2 pad bytes:
88 bytes, structure handle 0x0FCE); `cip_bit` / `cip_with_bit` for a bit of an integer.
Golden vectors: tests/edge/bus/test_codec.py.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from edge.tagmap import ByteOrder, DataType, Tag
from edge.tagmap.model import LOGIX_STRING_CHARS

_STRUCT = {DataType.INT: "h", DataType.UINT: "H", DataType.DINT: "i", DataType.UDINT: "I", DataType.REAL: "f",
           DataType.LINT: "q", DataType.ULINT: "Q", DataType.LREAL: "d"}
_WORDS_REVERSED = {ByteOrder.ABCD: False, ByteOrder.BADC: False, ByteOrder.CDAB: True, ByteOrder.DCBA: True}
_BYTES_SWAPPED = {ByteOrder.ABCD: False, ByteOrder.CDAB: False, ByteOrder.BADC: True, ByteOrder.DCBA: True}


def encode_registers(data_type: DataType, byte_order: ByteOrder, values: Sequence[float | int]) -> list[int]:
    """Raw values -> registers (unsigned 16-bit ints) in wire order."""
    packed = struct.pack(f">{len(values)}{_format(data_type)}", *values)
    return _reorder(data_type, byte_order, packed)


def decode_registers(data_type: DataType, byte_order: ByteOrder, registers: Sequence[int]) -> tuple:
    """Registers in wire order -> raw values (ints, or floats for REAL and LREAL)."""
    code = _format(data_type)
    width = data_type.registers
    if len(registers) % width:
        raise ValueError(f"{len(registers)} registers is not a whole number of {data_type.value} values")
    wire = struct.pack(f">{len(registers)}H", *registers)
    ordered = _reorder(data_type, byte_order, wire)  # every permutation here is its own inverse
    big_endian = struct.pack(f">{len(ordered)}H", *ordered)
    return struct.unpack(f">{len(registers) // width}{code}", big_endian)


def _format(data_type: DataType) -> str:
    if data_type is DataType.BOOL:
        raise ValueError("BOOL tags live in coils or discrete inputs, or at a bit of a register (register_bit)")
    if data_type is DataType.STRING:
        raise ValueError("a STRING is encoded with encode_string / decode_string")
    return _STRUCT[data_type]


def _reorder(data_type: DataType, byte_order: ByteOrder, data: bytes) -> list[int]:
    words = np.frombuffer(data, dtype=np.uint8).reshape(-1, data_type.registers, 2)
    if _WORDS_REVERSED[byte_order]:
        words = words[:, ::-1, :]
    if _BYTES_SWAPPED[byte_order]:
        words = words[:, :, ::-1]
    return np.frombuffer(words.tobytes(), dtype=">u2").astype(int).tolist()


# -- strings -----------------------------------------------------------------------------------------
def encode_string(text: str, chars: int, byte_order: ByteOrder = ByteOrder.ABCD) -> list[int]:
    """ASCII text of at most `chars` characters -> (chars + 1) // 2 registers, NUL-padded."""
    data = _ascii(text, chars).ljust(2 * ((chars + 1) // 2), b"\0")
    return _string_words(data, byte_order)


def decode_string(registers: Sequence[int], byte_order: ByteOrder = ByteOrder.ABCD) -> str:
    """Registers -> the text up to the first NUL (bytes above 0x7F read as Latin-1, never refused)."""
    data = bytes(_string_words(struct.pack(f">{len(registers)}H", *registers), byte_order, to_bytes=True))
    return data.split(b"\0", 1)[0].decode("latin-1")


def _string_words(data: bytes, byte_order: ByteOrder, to_bytes: bool = False):
    pairs = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2)
    if _BYTES_SWAPPED[byte_order]:
        pairs = pairs[:, ::-1]
    raw = pairs.tobytes()
    return raw if to_bytes else np.frombuffer(raw, dtype=">u2").astype(int).tolist()


def _ascii(text: str, chars: int) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not text")
    if not text.isascii() or "\0" in text:
        raise ValueError(f"{text!r} is not ASCII text without NUL")
    if len(text) > chars:
        raise ValueError(f"{len(text)} characters; the STRING holds {chars}")
    return text.encode("ascii")


# -- bits of a register ------------------------------------------------------------------------------
def register_bit(register: int, bit: int) -> bool:
    """Bit `bit` (0 = least significant) of a 16-bit register."""
    return bool((register >> bit) & 1)


def mask_write_masks(bits: Mapping[int, bool]) -> tuple[int, int]:
    """The (and_mask, or_mask) of one FC 22 request that sets `bits` (bit -> value) of a register
    and leaves every other bit as the device has it."""
    touched = sum(1 << bit for bit in bits)
    or_mask = sum(1 << bit for bit, value in bits.items() if value)
    return 0xFFFF & ~touched, or_mask


def apply_mask_write(register: int, and_mask: int, or_mask: int) -> int:
    """FC 22 as the device applies it (Modbus Application Protocol 1.1b3, 6.16):
    (current AND and_mask) OR (or_mask AND NOT and_mask)."""
    return (register & and_mask) | (or_mask & ~and_mask & 0xFFFF)


# -- a whole tag ---------------------------------------------------------------------------------------
def decode_tag(tag: Tag, data: Sequence) -> object:
    """A Modbus tag's wire data (its `register_count` registers, or bits) -> its raw value."""
    if tag.register_bit is not None:
        return register_bit(data[0], tag.register_bit)
    if tag.data_type is DataType.BOOL:
        values = tuple(bool(b) for b in data[:tag.count])
    elif tag.data_type is DataType.STRING:
        return decode_string(data, tag.byte_order)
    else:
        values = decode_registers(tag.data_type, tag.byte_order, data)
    return values if tag.is_array else values[0]


def encode_tag(tag: Tag, raw: object, current: Sequence[int] | None = None) -> list:
    """A Modbus tag's raw value -> its wire data (registers, or bits for coils and discrete
    inputs). A bit of a register needs the register as it is (`current`, one register): the bit
    is set in it, the other 15 kept (a PLC's own update; the controller writes with FC 22)."""
    if tag.register_bit is not None:
        if current is None or len(current) != 1:
            raise ValueError(f"{tag.name}: a bit of a register is set in the register as it is; pass current=[register]")
        and_mask, or_mask = mask_write_masks({tag.register_bit: bool(raw)})
        return [apply_mask_write(current[0], and_mask, or_mask)]
    elements = list(raw) if tag.is_array else [raw]
    if tag.data_type is DataType.BOOL:
        return [bool(e) for e in elements]
    if tag.data_type is DataType.STRING:
        return encode_string(raw, tag.string_chars, tag.byte_order)
    return encode_registers(tag.data_type, tag.byte_order, elements)


# -- CIP (Logix) ---------------------------------------------------------------------------------------
CIP_TYPE_CODE = {
    DataType.BOOL: 0xC1, DataType.INT: 0xC3, DataType.DINT: 0xC4, DataType.LINT: 0xC5, DataType.UINT: 0xC7,
    DataType.UDINT: 0xC8, DataType.ULINT: 0xC9, DataType.REAL: 0xCA, DataType.LREAL: 0xCB,
    DataType.STRING: 0x0FCE,  # the structure handle of the Logix STRING (its read reply: 0x02A0 then this)
}
_CIP_STRUCT = {**_STRUCT, DataType.BOOL: "B"}  # the same C types, little-endian on the wire
CIP_STRING_BYTES = 4 + LOGIX_STRING_CHARS + 2  # LEN DINT, DATA SINT[82], padded to 4 bytes: 88
_CIP_BITS = {DataType.INT: 16, DataType.UINT: 16, DataType.DINT: 32, DataType.UDINT: 32,
             DataType.LINT: 64, DataType.ULINT: 64}


def cip_size(data_type: DataType) -> int:
    """Bytes of one element on the wire (a BOOL: 1 byte; a STRING: 88)."""
    return CIP_STRING_BYTES if data_type is DataType.STRING else struct.calcsize(f"<{_CIP_STRUCT[data_type]}")


def encode_cip(data_type: DataType, values: Sequence) -> bytes:
    """Raw values -> CIP data, little-endian (a BOOL a byte, 0 or 1; a STRING its 88-byte structure)."""
    if data_type is DataType.STRING:
        out = b""
        for text in values:
            data = _ascii(text, LOGIX_STRING_CHARS)
            out += struct.pack("<i", len(data)) + data.ljust(LOGIX_STRING_CHARS + 2, b"\0")
        return out
    if data_type is DataType.BOOL:
        values = [1 if v else 0 for v in values]
    return struct.pack(f"<{len(values)}{_CIP_STRUCT[data_type]}", *values)


def decode_cip(data_type: DataType, data: bytes) -> tuple:
    """CIP data -> raw values (bools, ints, floats, or strs)."""
    size = cip_size(data_type)
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {data_type.value} values ({size} bytes each)")
    if data_type is DataType.STRING:
        out = []
        for at in range(0, len(data), size):
            length = struct.unpack_from("<i", data, at)[0]
            if not 0 <= length <= LOGIX_STRING_CHARS:
                raise ValueError(f"a STRING's LEN is {length}; allowed: 0..{LOGIX_STRING_CHARS}")
            out.append(data[at + 4:at + 4 + length].decode("latin-1"))
        return tuple(out)
    values = struct.unpack(f"<{len(data) // size}{_CIP_STRUCT[data_type]}", data)
    return tuple(bool(v) for v in values) if data_type is DataType.BOOL else values


def cip_bit(value: int, bit: int) -> bool:
    """Bit `bit` of a Logix integer (two's complement: bit 31 of a negative DINT is 1)."""
    return bool((value >> bit) & 1)


def cip_with_bit(data_type: DataType, value: int, bit: int, on: bool) -> int:
    """The integer `value` of `data_type` with bit `bit` set or cleared, kept in the type's range
    (what the PLC does for a CIP Read-Modify-Write of one bit)."""
    width = _CIP_BITS.get(data_type)
    if width is None or not 0 <= bit < width:
        raise ValueError(f"bit {bit} of a {data_type.value}; allowed: a bit 0..{(width or 0) - 1} of an integer")
    unsigned = (value & ((1 << width) - 1) & ~(1 << bit)) | ((1 << bit) if on else 0)
    low, _ = data_type.raw_range
    return unsigned - (1 << width) if low < 0 and unsigned >> (width - 1) else unsigned
