"""Pure codec between raw PLC values and 16-bit Modbus registers, for every byte and word order.

No I/O. A 32-bit value (DINT, REAL) spans two registers; its bytes A B C D (A most significant)
go on the wire in the order the tag's `ByteOrder` names. A 16-bit INT uses AB (ABCD, CDAB) or
BA (BADC, DCBA). Golden vectors: tests/edge/bus/test_codec.py.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from edge.tagmap import ByteOrder, DataType

# Position in the big-endian bytes A B C D of each byte on the wire.
_PERMUTATION_32 = {
    ByteOrder.ABCD: (0, 1, 2, 3),
    ByteOrder.CDAB: (2, 3, 0, 1),
    ByteOrder.BADC: (1, 0, 3, 2),
    ByteOrder.DCBA: (3, 2, 1, 0),
}
_SWAP_16 = {ByteOrder.ABCD: False, ByteOrder.CDAB: False, ByteOrder.BADC: True, ByteOrder.DCBA: True}
_STRUCT = {DataType.INT: "h", DataType.DINT: "i", DataType.REAL: "f"}


def encode_registers(data_type: DataType, byte_order: ByteOrder, values: Sequence[float | int]) -> list[int]:
    """Raw values -> registers (unsigned 16-bit ints) in wire order."""
    if data_type is DataType.BOOL:
        raise ValueError("BOOL tags live in coils or discrete inputs, not registers")
    packed = struct.pack(f">{len(values)}{_STRUCT[data_type]}", *values)
    return _reorder(data_type, byte_order, packed)


def decode_registers(data_type: DataType, byte_order: ByteOrder, registers: Sequence[int]) -> tuple:
    """Registers in wire order -> raw values (ints, or floats for REAL)."""
    if data_type is DataType.BOOL:
        raise ValueError("BOOL tags live in coils or discrete inputs, not registers")
    width = data_type.registers
    if len(registers) % width:
        raise ValueError(f"{len(registers)} registers is not a whole number of {data_type.value} values")
    wire = struct.pack(f">{len(registers)}H", *registers)
    ordered = _reorder(data_type, byte_order, wire)  # every permutation here is its own inverse
    big_endian = struct.pack(f">{len(ordered)}H", *ordered)
    return struct.unpack(f">{len(registers) // width}{_STRUCT[data_type]}", big_endian)


def _reorder(data_type: DataType, byte_order: ByteOrder, data: bytes) -> list[int]:
    raw = np.frombuffer(data, dtype=np.uint8)
    if data_type.registers == 2:
        raw = raw.reshape(-1, 4)[:, _PERMUTATION_32[byte_order]]
    elif _SWAP_16[byte_order]:
        raw = raw.reshape(-1, 2)[:, ::-1]
    return np.frombuffer(raw.tobytes(), dtype=">u2").astype(int).tolist()
