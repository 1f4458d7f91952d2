"""The tag map as frozen dataclasses: one `TagMap` per PLC connection, one `Tag` per PLC tag.

What a tag is (its address, type, owner, access, unit, scaling, limits, byte order, safe value,
scan group) is fixed here; reading YAML into it and every check on it is `load.py`.
Tests: tests/edge/tagmap/.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

Scalar = Union[bool, int, float, str]  # str: a STRING tag's text
Value = Union[Scalar, tuple]  # a scalar, or a tuple of scalars for an array tag

LOGIX_STRING_CHARS = 82  # the Logix STRING type: LEN (DINT) + DATA (SINT[82])
MAX_MODBUS_STRING_CHARS = 246  # a Modbus STRING(N): N characters, 2 a register, at most one FC 16 write (123)


class Protocol(enum.Enum):
    LOGIX = "logix"  # Allen-Bradley ControlLogix/CompactLogix over EtherNet/IP (CIP)
    MODBUS = "modbus"  # Modbus TCP


class Access(enum.Enum):
    READ = "read"  # the controller reads it; writing it is refused
    WRITE = "write"  # the controller writes it (and may read it back)


class Owner(enum.Enum):
    RTCORE = "rtcore"  # the real-time process
    SUPERVISOR = "supervisor"  # the supervisor process


class DataType(enum.Enum):
    """PLC data types (IEC 61131-3 / Logix names); `registers` is the width on Modbus.

    On Modbus a 16-bit value takes one register, 32-bit two, 64-bit four; BOOL is a bit (a coil,
    a discrete input, or a bit of a register) and a STRING(N) takes N/2 registers, rounded up.
    """

    BOOL = "BOOL"
    INT = "INT"  # 16-bit signed
    UINT = "UINT"  # 16-bit unsigned
    DINT = "DINT"  # 32-bit signed
    UDINT = "UDINT"  # 32-bit unsigned
    LINT = "LINT"  # 64-bit signed
    ULINT = "ULINT"  # 64-bit unsigned
    REAL = "REAL"  # IEEE 754 single
    LREAL = "LREAL"  # IEEE 754 double
    STRING = "STRING"  # text: Logix STRING (82 characters); Modbus STRING(N), N characters

    @property
    def registers(self) -> int:
        """16-bit registers one value takes on Modbus (0: a bit; a STRING's width is its tag's)."""
        return _REGISTERS[self.value]

    @property
    def is_integer(self) -> bool:
        return self.value in _INTEGER_RANGES

    @property
    def is_float(self) -> bool:
        return self in (DataType.REAL, DataType.LREAL)

    @property
    def is_numeric(self) -> bool:
        return self.is_integer or self.is_float

    @property
    def raw_range(self) -> tuple[float, float]:
        """The values the PLC type can hold (REAL, LREAL: the finite range). Not for STRING."""
        if self is DataType.STRING:
            raise ValueError("a STRING has no numeric range")
        if self is DataType.BOOL:
            return (0, 1)
        if self is DataType.REAL:
            return (-3.4028234663852886e38, 3.4028234663852886e38)
        if self is DataType.LREAL:
            return (-1.7976931348623157e308, 1.7976931348623157e308)
        return _INTEGER_RANGES[self.value]


_REGISTERS = {"BOOL": 0, "INT": 1, "UINT": 1, "DINT": 2, "UDINT": 2, "REAL": 2, "LINT": 4, "ULINT": 4,
              "LREAL": 4, "STRING": 0}
_INTEGER_RANGES = {
    "INT": (-(2**15), 2**15 - 1), "UINT": (0, 2**16 - 1),
    "DINT": (-(2**31), 2**31 - 1), "UDINT": (0, 2**32 - 1),
    "LINT": (-(2**63), 2**63 - 1), "ULINT": (0, 2**64 - 1),
}


class ModbusTable(enum.Enum):
    COIL = "coil"  # read/write bits (FC 1, 5, 15)
    DISCRETE_INPUT = "discrete_input"  # read-only bits (FC 2)
    HOLDING_REGISTER = "holding_register"  # read/write registers (FC 3, 6, 16)
    INPUT_REGISTER = "input_register"  # read-only registers (FC 4)

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.HOLDING_REGISTER)


class ByteOrder(enum.Enum):
    """Order of the bytes of a value across Modbus registers, named for a 32-bit value, A the most
    significant byte.

    ABCD: big-endian words, high word first (the Modbus convention). CDAB: low word first.
    BADC: bytes swapped inside each word. DCBA: little-endian. The same two rules for every width:
    the word order (high word first: ABCD, BADC; low word first: CDAB, DCBA) and the byte order
    inside a word (AB: ABCD, CDAB; BA: BADC, DCBA). So a 16-bit INT/UINT is AB or BA, and a
    64-bit LINT/ULINT/LREAL (bytes A..H) with CDAB is GH EF CD AB. A STRING(N) keeps its
    registers in text order; AB puts its first character in the high byte, BA in the low byte.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


@dataclass(frozen=True)
class ModbusAddress:
    table: ModbusTable
    address: int  # zero-based protocol address (register 40001 is holding_register 0)
    bit: int | None = None  # a BOOL at a bit of a register (0 = least significant), else None

    def __str__(self) -> str:
        text = f"{self.table.value}:{self.address}"
        return text if self.bit is None else f"{text}.{self.bit}"


@dataclass(frozen=True)
class Scaling:
    """Linear scaling raw -> engineering unit: eu = raw * gain + offset."""

    gain: float = 1.0
    offset: float = 0.0

    def to_eu(self, raw: float) -> float:
        return raw * self.gain + self.offset

    def to_raw(self, eu: float) -> float:
        return (eu - self.offset) / self.gain


@dataclass(frozen=True)
class Limits:
    """Engineering-unit range: a write outside it is refused; a read outside it is UNCERTAIN."""

    min: float
    max: float

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


@dataclass(frozen=True)
class Tag:
    name: str
    address: str | ModbusAddress  # Logix tag path, or Modbus table + address
    data_type: DataType
    count: int  # 1 for a scalar, N for an array of N elements
    access: Access
    owner: Owner
    unit: str  # engineering unit, e.g. "degC", "kPa", "pct", "L/min", "" for a flag
    scaling: Scaling
    limits: Limits | None
    byte_order: ByteOrder  # Modbus only; ABCD for Logix (unused)
    safe_value: Value | None  # required for every write tag: what the outputs go to on a fault
    scan_group: str
    description: str = ""
    source_line: int = 0  # line of the tag's entry in its YAML file
    string_chars: int = 0  # a STRING tag's characters (Logix: 82; Modbus: the N of STRING(N)), else 0

    @property
    def is_array(self) -> bool:
        return self.count > 1

    @property
    def register_bit(self) -> int | None:
        """The bit of a register a Modbus BOOL tag lives at, or None."""
        return self.address.bit if isinstance(self.address, ModbusAddress) else None

    @property
    def register_count(self) -> int:
        """Modbus registers this tag spans (bits for a BOOL in coils or discrete inputs: `count`;
        1 for a bit of a register)."""
        if self.register_bit is not None:
            return 1
        if self.data_type is DataType.BOOL:
            return self.count
        if self.data_type is DataType.STRING:
            return (self.string_chars + 1) // 2
        return self.count * self.data_type.registers

    @property
    def type_text(self) -> str:
        """The type as a map spells it: `REAL[4]`, `BOOL`, `STRING(20)` (Modbus), `STRING` (Logix)."""
        if self.data_type is DataType.STRING:
            return "STRING" if not isinstance(self.address, ModbusAddress) else f"STRING({self.string_chars})"
        return f"{self.data_type.value}[{self.count}]" if self.is_array else self.data_type.value


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    unit_id: int = 1  # Modbus device id
    route: str = ""  # Logix backplane route after the IP, e.g. "1/0" for slot 0

    @property
    def logix_path(self) -> str:
        path = f"{self.host}:{self.port}"
        return f"{path}/{self.route}" if self.route else path


@dataclass(frozen=True)
class ScanGroup:
    name: str
    period_ms: int


@dataclass(frozen=True)
class TagMap:
    """One PLC connection and its tags, as loaded from one YAML file."""

    name: str
    protocol: Protocol
    endpoint: Endpoint
    timeout_s: float
    scan_groups: tuple[ScanGroup, ...]
    tags: tuple[Tag, ...]
    source: Path
    roles: dict = field(default_factory=dict, compare=False)  # role -> tag name, from the file's `roles:`
    fixture: object = None  # the station fixture from the file's `fixture:` (edge.tagmap.roles), or None
    _by_name: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.tags})

    def tag(self, name: str) -> Tag | None:
        return self._by_name.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def outputs(self, owner: Owner) -> tuple[Tag, ...]:
        """The write tags that `owner` drives, in map order."""
        return tuple(t for t in self.tags if t.access is Access.WRITE and t.owner is owner)

    def with_endpoint(self, host: str, port: int) -> "TagMap":
        """The same map aimed at another endpoint (a loopback bench on a free port)."""
        endpoint = Endpoint(host, port, self.endpoint.unit_id, self.endpoint.route)
        return dataclasses.replace(self, endpoint=endpoint)
