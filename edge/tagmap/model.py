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

Scalar = Union[bool, int, float]
Value = Union[Scalar, tuple]  # a scalar, or a tuple of scalars for an array tag


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
    """PLC data types; `registers` is the width on Modbus (16-bit registers, 0 for a bit)."""

    BOOL = "BOOL"
    INT = "INT"  # 16-bit signed
    DINT = "DINT"  # 32-bit signed
    REAL = "REAL"  # IEEE 754 single

    @property
    def registers(self) -> int:
        return {"BOOL": 0, "INT": 1, "DINT": 2, "REAL": 2}[self.value]

    @property
    def raw_range(self) -> tuple[float, float]:
        """The values the PLC type can hold (REAL: the finite float32 range)."""
        return {
            "BOOL": (0, 1),
            "INT": (-(2**15), 2**15 - 1),
            "DINT": (-(2**31), 2**31 - 1),
            "REAL": (-3.4028234663852886e38, 3.4028234663852886e38),
        }[self.value]


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
    """Order of the bytes of a 32-bit value across two Modbus registers, A the most significant.

    ABCD: big-endian words, high word first (the Modbus convention). CDAB: low word first.
    BADC: bytes swapped inside each word. DCBA: little-endian. A 16-bit INT uses the first two
    letters' rule: AB (ABCD, CDAB) or BA (BADC, DCBA).
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


@dataclass(frozen=True)
class ModbusAddress:
    table: ModbusTable
    address: int  # zero-based protocol address (register 40001 is holding_register 0)

    def __str__(self) -> str:
        return f"{self.table.value}:{self.address}"


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

    @property
    def is_array(self) -> bool:
        return self.count > 1

    @property
    def register_count(self) -> int:
        """Modbus registers this tag spans (bits for BOOL tags: `count`)."""
        return self.count if self.data_type is DataType.BOOL else self.count * self.data_type.registers


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
