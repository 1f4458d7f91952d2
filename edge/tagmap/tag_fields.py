"""One tag entry of a tag map: every field checked, problems collected, a frozen `Tag` out.

The rules for each field are in plc_tags/README.md; the address spellings are parsed in
addresses.py. Types: BOOL, INT, UINT, DINT, UDINT, LINT, ULINT, REAL, LREAL, arrays of them
(`REAL[16]`), and STRING: on Logix the controller's STRING (82 characters), on Modbus
`STRING(N)`, N characters in N/2 registers. A BOOL may be a bit of a register
(`holding_register:20.3`, written with FC 22 mask write) or of a Logix integer (`Status.5`,
written with CIP Read-Modify-Write); either is a scalar.
Tests: tests/edge/tagmap/test_load.py, tests/edge/tagmap/test_types.py, test_commissioning.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from edge.tagmap.addresses import parse_logix_path, parse_modbus_address
from edge.tagmap.checker import Checker, Node
from edge.tagmap.model import (
    LOGIX_STRING_CHARS,
    MAX_MODBUS_STRING_CHARS,
    Access,
    ByteOrder,
    DataType,
    Limits,
    ModbusAddress,
    Owner,
    Protocol,
    Scaling,
    Tag,
)

TAG_KEYS = {
    "name", "address", "type", "access", "owner", "unit", "scaling", "limits",
    "byte_order", "safe_value", "scan_group", "description",
}
REQUIRED_KEYS = ("name", "address", "type", "access", "owner", "unit", "scan_group")
MAX_ARRAY = 1024
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPE_NAMES = tuple(t.value for t in DataType)
TYPE_RE = re.compile(rf"^({'|'.join(TYPE_NAMES)})(?:\[(\d+)\]|\((\d+)\))?$")
TYPES_ALLOWED = ("BOOL, INT, DINT, REAL, UINT, UDINT, LINT, ULINT, LREAL, an array like REAL[16], "
                 "or STRING (Logix) / STRING(N) (Modbus, N characters)")


def load_tag(check: Checker, entry: Any, protocol: Protocol | None, groups: set[str], list_line: int) -> Tag | None:
    """Check one entry of `tags:`; return the Tag, or None after recording its problems."""
    if not isinstance(entry, Node):
        check.fail(list_line, f"each entry of tags must be a mapping, got {entry!r}")
        return None
    line = entry.line
    name = entry.get("name")
    label = name if isinstance(name, str) else None
    before = len(check.problems)
    check.mapping(entry, line, "the tag", TAG_KEYS, label)  # unknown keys: reported, checks go on
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    for key in missing:
        check.fail(line, f"missing {key!r}", label)

    def at(key: str) -> int:
        return entry.key_lines.get(key, line)

    if missing:
        if "type" in entry and "address" in entry:  # named now, not once the missing keys are filled in
            data_type, count, _chars = _type(check, entry["type"], at("type"), protocol, label)
            access = check.enum(Access, entry["access"], at("access"), "access", label) if "access" in entry else None
            _address(check, entry["address"], at("address"), protocol, data_type, count, access, label)
        return None
    if not NAME_RE.match(str(name)):
        check.fail(line, "name must be an identifier (letters, digits, _; not starting with a digit)", label)

    data_type, count, chars = _type(check, entry.get("type"), at("type"), protocol, label)
    access = check.enum(Access, entry.get("access"), at("access"), "access", label)
    owner = check.enum(Owner, entry.get("owner"), at("owner"), "owner", label)
    unit = entry.get("unit")
    if not isinstance(unit, str):
        check.fail(at("unit"), "unit must be a string (\"\" for a dimensionless flag)", label)
    address = _address(check, entry.get("address"), at("address"), protocol, data_type, count, access, label)
    byte_order = _byte_order(check, entry, at("byte_order"), protocol, label)
    scaling = _scaling(check, entry.get("scaling"), at("scaling"), data_type, label)
    limits = _limits(check, entry.get("limits"), at("limits"), data_type, scaling, access, label)
    safe_value = _safe_value(check, entry, at("safe_value"), data_type, count, access, limits, label, chars)
    scan_group = entry.get("scan_group")
    if scan_group not in groups:
        check.fail(at("scan_group"), f"scan_group {scan_group!r} is not declared; declared: {', '.join(sorted(groups)) or 'none'}", label)
    description = entry.get("description", "")
    if len(check.problems) > before:
        return None
    return Tag(name, address, data_type, count, access, owner, unit, scaling, limits, byte_order,
               safe_value, scan_group, str(description), line, chars)


def _type(check: Checker, raw: Any, line: int, protocol: Protocol | None,
          tag: str | None) -> tuple[DataType | None, int, int]:
    """(type, element count, a STRING's characters or 0)."""
    match = TYPE_RE.match(str(raw))
    if not match:
        check.fail(line, f"type is {raw!r}; allowed: {TYPES_ALLOWED}", tag)
        return None, 1, 0
    data_type = DataType(match.group(1))
    count = int(match.group(2)) if match.group(2) else 1
    if match.group(2) and not 1 <= count <= MAX_ARRAY:
        check.fail(line, f"array length {count}; allowed: 1..{MAX_ARRAY}", tag)
    if data_type is not DataType.STRING:
        if match.group(3):
            check.fail(line, f"type {raw!r}: a length in ( ) is for STRING only; an array is {data_type.value}[N]", tag)
        return data_type, count, 0
    if match.group(2):
        check.fail(line, f"type {raw!r}: arrays of STRING are not supported; map each string as its own tag", tag)
        return None, 1, 0
    chars = int(match.group(3)) if match.group(3) else 0
    if protocol is Protocol.MODBUS:
        if not 1 <= chars <= MAX_MODBUS_STRING_CHARS:
            check.fail(line, f"type {raw!r}: a Modbus string is STRING(N), N characters 1..{MAX_MODBUS_STRING_CHARS} "
                             "(two a register)", tag)
            return None, 1, 0
        return data_type, 1, chars
    if protocol is Protocol.LOGIX and match.group(3):
        check.fail(line, f"type {raw!r}: a Logix STRING is the controller's STRING type ({LOGIX_STRING_CHARS} "
                         "characters); write STRING without a length", tag)
        return None, 1, 0
    return data_type, 1, LOGIX_STRING_CHARS


def _address(check, raw, line, protocol, data_type, count, access, tag):
    if protocol is Protocol.LOGIX:
        try:
            path = parse_logix_path(raw)
        except ValueError as exc:
            check.fail(line, str(exc), tag)
            return None
        if path.bit is not None and data_type is not None and (data_type is not DataType.BOOL or count != 1):
            check.fail(line, f"address {raw!r} is a bit of an integer: its type is BOOL (a scalar), not "
                             f"{data_type.value}{f'[{count}]' if count > 1 else ''}", tag)
        return raw
    if protocol is not Protocol.MODBUS:
        return None
    try:
        address = parse_modbus_address(raw)
    except ValueError as exc:
        check.fail(line, str(exc), tag)
        return None
    table = address.table
    if data_type is None:
        return None
    if address.bit is not None:
        if data_type is not DataType.BOOL or count != 1:
            check.fail(line, f"address {address} is a bit of a register: its type is BOOL (a scalar), not "
                             f"{data_type.value}{f'[{count}]' if count > 1 else ''}", tag)
    elif table.is_bits != (data_type is DataType.BOOL):
        check.fail(line, f"type {data_type.value} cannot live in {table.value}; BOOL goes in coil or discrete_input "
                         "or at a bit of a register ('holding_register:20.3'), every other type in "
                         "holding_register or input_register", tag)
    if access is Access.WRITE and not table.writable:
        check.fail(line, f"a write tag cannot live in {table.value} (read-only); use coil or holding_register", tag)
    return address


def _byte_order(check, entry, line, protocol, tag):
    if "byte_order" not in entry:
        return ByteOrder.ABCD
    if protocol is Protocol.LOGIX:
        check.fail(line, "byte_order applies to modbus tags only (Logix types have one layout)", tag)
        return ByteOrder.ABCD
    return check.enum(ByteOrder, entry["byte_order"], line, "byte_order", tag) or ByteOrder.ABCD


def _scaling(check, raw, line, data_type, tag) -> Scaling:
    if raw is None:
        return Scaling()
    if data_type in (DataType.BOOL, DataType.STRING):
        check.fail(line, f"a {data_type.value} tag takes no scaling", tag)
        return Scaling()
    if not isinstance(raw, dict) or not set(raw) <= {"gain", "offset"}:
        check.fail(line, f"scaling is {raw!r}; allowed: {{gain: G, offset: O}} meaning eu = raw * G + O", tag)
        return Scaling()
    gain = check.number(raw.get("gain", 1.0), line, "scaling.gain", tag)
    offset = check.number(raw.get("offset", 0.0), line, "scaling.offset", tag)
    if gain == 0:
        check.fail(line, "scaling.gain is 0; it must be non-zero so writes can be converted back to raw", tag)
    return Scaling(gain if gain else 1.0, offset if offset is not None else 0.0)


def _limits(check, raw, line, data_type, scaling, access, tag) -> Limits | None:
    if raw is None:
        if access is Access.WRITE and data_type not in (None, DataType.BOOL, DataType.STRING):
            check.fail(line, "a write tag needs limits: {min: .., max: ..} in its unit; writes outside them are refused", tag)
        return None
    if data_type in (DataType.BOOL, DataType.STRING):
        check.fail(line, f"a {data_type.value} tag takes no limits", tag)
        return None
    if not isinstance(raw, dict) or set(raw) != {"min", "max"}:
        check.fail(line, f"limits is {raw!r}; allowed: {{min: LOW, max: HIGH}} in the tag's unit", tag)
        return None
    low = _exact(raw["min"], check.number(raw["min"], line, "limits.min", tag))
    high = _exact(raw["max"], check.number(raw["max"], line, "limits.max", tag))
    if low is None or high is None:
        return None
    if low > high:
        check.fail(line, f"limits.min {low} is above limits.max {high}", tag)
        return None
    if data_type is not None:
        raw_low, raw_high = sorted((_to_raw(scaling, low), _to_raw(scaling, high)))
        type_low, type_high = data_type.raw_range
        if raw_low < type_low or raw_high > type_high:
            check.fail(line, f"limits {low}..{high} scale to raw {raw_low:g}..{raw_high:g}, outside what "
                             f"{data_type.value} holds ({type_low:g}..{type_high:g})", tag)
    return Limits(low, high)


def _exact(raw: Any, number: float | None) -> float | int | None:
    """A limit as written: an int stays an int (a 64-bit limit such as 2**64 - 1 is beyond float64)."""
    if number is not None and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return number


def _to_raw(scaling: Scaling, value: float | int) -> float | int:
    return value if isinstance(value, int) and scaling == Scaling() else scaling.to_raw(value)


def _safe_value(check, entry, line, data_type, count, access, limits, tag, chars=0):
    if "safe_value" not in entry:
        if access is Access.WRITE:
            check.fail(line, "a write tag needs safe_value: what the output goes to on any fault", tag)
        return None
    if access is not Access.WRITE:
        check.fail(line, "safe_value is for write tags only", tag)
        return None
    raw = entry["safe_value"]
    if data_type is DataType.STRING:
        if not isinstance(raw, str) or len(raw) > chars or not raw.isascii():
            check.fail(line, f"safe_value {raw!r} must be ASCII text of at most {chars} characters for this STRING", tag)
            return None
        return raw
    values = raw if isinstance(raw, list) else [raw] * count
    if len(values) != count:
        check.fail(line, f"safe_value has {len(values)} elements; the tag has {count} (or give one scalar)", tag)
        return None
    out = []
    for value in values:
        if data_type is DataType.BOOL:
            if not isinstance(value, bool):
                check.fail(line, f"safe_value {value!r} must be true or false for a BOOL tag", tag)
                return None
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            check.fail(line, f"safe_value {value!r} must be a finite number", tag)
            return None
        elif limits is not None and not limits.contains(value):
            check.fail(line, f"safe_value {value} is outside limits {limits.min}..{limits.max}", tag)
            return None
        elif data_type is not None and data_type.is_integer and value != int(value):
            check.fail(line, f"safe_value {value} must be whole for a {data_type.value} tag without scaling", tag)
            return None
        out.append(value)
    return tuple(out) if count > 1 else out[0]
