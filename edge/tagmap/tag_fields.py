"""One tag entry of a tag map: every field checked, problems collected, a frozen `Tag` out.

The rules for each field are in plc_tags/README.md. Tests: tests/edge/tagmap/test_load.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from edge.tagmap.checker import Checker, Node
from edge.tagmap.model import (
    Access,
    ByteOrder,
    DataType,
    Limits,
    ModbusAddress,
    ModbusTable,
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
# Controller- or program-scoped Logix tag path: Program:Name.Tag.Member[3]
LOGIX_PATH_RE = re.compile(r"^(Program:[A-Za-z_]\w*\.)?[A-Za-z_]\w*(\[\d+\])?(\.[A-Za-z_]\w*(\[\d+\])?)*$")
TYPE_RE = re.compile(r"^(BOOL|INT|DINT|REAL)(?:\[(\d+)\])?$")
MODBUS_ADDRESS_RE = re.compile(r"^([a-z_]+):(\d+)$")


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
    if missing:
        return None
    if not NAME_RE.match(str(name)):
        check.fail(line, "name must be an identifier (letters, digits, _; not starting with a digit)", label)

    def at(key: str) -> int:
        return entry.key_lines.get(key, line)

    data_type, count = _type(check, entry.get("type"), at("type"), label)
    access = check.enum(Access, entry.get("access"), at("access"), "access", label)
    owner = check.enum(Owner, entry.get("owner"), at("owner"), "owner", label)
    unit = entry.get("unit")
    if not isinstance(unit, str):
        check.fail(at("unit"), "unit must be a string (\"\" for a dimensionless flag)", label)
    address = _address(check, entry.get("address"), at("address"), protocol, data_type, access, label)
    byte_order = _byte_order(check, entry, at("byte_order"), protocol, label)
    scaling = _scaling(check, entry.get("scaling"), at("scaling"), data_type, label)
    limits = _limits(check, entry.get("limits"), at("limits"), data_type, scaling, access, label)
    safe_value = _safe_value(check, entry, at("safe_value"), data_type, count, access, limits, label)
    scan_group = entry.get("scan_group")
    if scan_group not in groups:
        check.fail(at("scan_group"), f"scan_group {scan_group!r} is not declared; declared: {', '.join(sorted(groups)) or 'none'}", label)
    description = entry.get("description", "")
    if len(check.problems) > before:
        return None
    return Tag(name, address, data_type, count, access, owner, unit, scaling, limits, byte_order,
               safe_value, scan_group, str(description), line)


def _type(check: Checker, raw: Any, line: int, tag: str | None) -> tuple[DataType | None, int]:
    match = TYPE_RE.match(str(raw))
    if not match:
        check.fail(line, f"type is {raw!r}; allowed: BOOL, INT, DINT, REAL, or an array like REAL[16]", tag)
        return None, 1
    count = int(match.group(2)) if match.group(2) else 1
    if not 1 <= count <= MAX_ARRAY:
        check.fail(line, f"array length {count}; allowed: 1..{MAX_ARRAY}", tag)
    return DataType(match.group(1)), count


def _address(check, raw, line, protocol, data_type, access, tag):
    if protocol is Protocol.LOGIX:
        if not isinstance(raw, str) or not LOGIX_PATH_RE.match(raw):
            check.fail(line, f"address is {raw!r}; a Logix tag path is allowed, like "
                             "'ZoneTemp', 'Program:Discharge.Relief[2]' or 'Cell.Temp'", tag)
            return None
        return raw
    if protocol is not Protocol.MODBUS:
        return None
    if isinstance(raw, str) and MODBUS_ADDRESS_RE.match(raw):
        table_raw, number = MODBUS_ADDRESS_RE.match(raw).groups()
        raw = {"table": table_raw, "address": int(number)}
    if not isinstance(raw, dict) or set(raw) != {"table", "address"}:
        check.fail(line, f"address is {raw!r}; a Modbus address is allowed, like "
                         "{table: holding_register, address: 100} or 'holding_register:100'", tag)
        return None
    table = check.enum(ModbusTable, raw["table"], line, "address.table", tag)
    number = raw["address"]
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 65535:
        check.fail(line, f"address.address is {number!r}; allowed: 0..65535 (zero-based)", tag)
        return None
    if table is None or data_type is None:
        return None
    if table.is_bits != (data_type is DataType.BOOL):
        check.fail(line, f"type {data_type.value} cannot live in {table.value}; BOOL goes in coil or "
                         "discrete_input, INT/DINT/REAL in holding_register or input_register", tag)
    if access is Access.WRITE and not table.writable:
        check.fail(line, f"a write tag cannot live in {table.value} (read-only); use coil or holding_register", tag)
    return ModbusAddress(table, number)


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
    if data_type is DataType.BOOL:
        check.fail(line, "a BOOL tag takes no scaling", tag)
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
        if access is Access.WRITE and data_type not in (None, DataType.BOOL):
            check.fail(line, "a write tag needs limits: {min: .., max: ..} in its unit; writes outside them are refused", tag)
        return None
    if data_type is DataType.BOOL:
        check.fail(line, "a BOOL tag takes no limits", tag)
        return None
    if not isinstance(raw, dict) or set(raw) != {"min", "max"}:
        check.fail(line, f"limits is {raw!r}; allowed: {{min: LOW, max: HIGH}} in the tag's unit", tag)
        return None
    low = check.number(raw["min"], line, "limits.min", tag)
    high = check.number(raw["max"], line, "limits.max", tag)
    if low is None or high is None:
        return None
    if low > high:
        check.fail(line, f"limits.min {low} is above limits.max {high}", tag)
        return None
    if data_type is not None:
        raw_low, raw_high = sorted((scaling.to_raw(low), scaling.to_raw(high)))
        type_low, type_high = data_type.raw_range
        if raw_low < type_low or raw_high > type_high:
            check.fail(line, f"limits {low}..{high} scale to raw {raw_low:g}..{raw_high:g}, outside what "
                             f"{data_type.value} holds ({type_low:g}..{type_high:g})", tag)
    return Limits(low, high)


def _safe_value(check, entry, line, data_type, count, access, limits, tag):
    if "safe_value" not in entry:
        if access is Access.WRITE:
            check.fail(line, "a write tag needs safe_value: what the output goes to on any fault", tag)
        return None
    if access is not Access.WRITE:
        check.fail(line, "safe_value is for write tags only", tag)
        return None
    raw = entry["safe_value"]
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
        elif data_type in (DataType.INT, DataType.DINT) and value != int(value):
            check.fail(line, f"safe_value {value} must be whole for a {data_type.value} tag without scaling", tag)
            return None
        out.append(value)
    return tuple(out) if count > 1 else out[0]
