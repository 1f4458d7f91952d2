"""Kepware (KEPServerEX) tag CSV to a draft map, and a tag map back to that CSV.

The CSV is the one KEPServerEX exports per device or tag group: a header row with `Tag Name,
Address, Data Type, Respect Data Type, Client Access, Scan Rate, Scaling, Raw Low, Raw High,
Scaled Low, Scaled High, Scaled Data Type, Clamp Low, Clamp High, Eng Units, Description, Negate
Value`, one row a tag (comma- or, KEPServerEX's option, semicolon-separated); a group is a dotted
prefix of the tag name (`Station01.Temp`). Two
drivers' addresses are read: Modbus (`400001`, `40001`, `300010`, `000005`, `100001`, a bit
`400020.3`, an array `400001[10]` or `400001 [2][5]`; Kepware's default zero-based addressing, so
400001 is holding_register:0) and Allen-Bradley ControlLogix (Logix tag paths,
`Program:Main.Tag`, `Cell[3].Temp`, `Status.5`, an array `Temps {36}` or `Temps[4]{8}`).

How the columns land in the map (both directions): Tag Name -> name (`.` <-> `__`); Address ->
address; Data Type -> type (edge/tagmap/vendor/types.py); Client Access RO/R/W -> access
read/write; Scan Rate -> a scan group `scan_<ms>ms` of that period; Scaling Linear with Raw/Scaled
Low/High -> scaling gain and offset, the scaled range -> limits; Negate Value -> the sign of the
gain; Eng Units -> unit; Description -> description. Kepware-only columns (Respect Data Type 0,
Scaled Data Type, Clamp Low/High on) are counted by value in the report; a Square Root scaling
and types with no map type skip the tag, named. Map-only fields (owner, safe value, byte order:
Kepware's word order is a device property, the endpoint, the map's `roles:` and `fixture:`) are
listed by the export as not carried.
Tests: tests/edge/tagmap/vendor/test_kepware.py, test_commissioning_vendor.py.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from edge.tagmap.addresses import parse_logix_path
from edge.tagmap.model import ModbusAddress, ModbusTable, Protocol, TagMap
from edge.tagmap.vendor.draft import DraftMap, DraftTag, ImportReport, read_vendor_text, unique_name
from edge.tagmap.vendor.roles_guess import apply_roles
from edge.tagmap.vendor.types import KEPWARE_TO_MAP, MAP_TO_KEPWARE, NO_COUNTERPART, kepware_type, map_type

COLUMNS = ("Tag Name", "Address", "Data Type", "Respect Data Type", "Client Access", "Scan Rate", "Scaling",
           "Raw Low", "Raw High", "Scaled Low", "Scaled High", "Scaled Data Type", "Clamp Low", "Clamp High",
           "Eng Units", "Description", "Negate Value")
DEFAULT_SCAN_MS = 100  # Kepware's default scan rate: a blank Scan Rate imports as this
MIN_SCAN_MS, MAX_SCAN_MS = 10, 3_600_000  # the map's scan group periods
GROUP_SEP = "__"  # a Kepware group separator '.' in a map name

MODBUS_TABLES = {"0": ModbusTable.COIL, "1": ModbusTable.DISCRETE_INPUT, "3": ModbusTable.INPUT_REGISTER,
                 "4": ModbusTable.HOLDING_REGISTER}
TABLE_DIGIT = {table: digit for digit, table in MODBUS_TABLES.items()}
MODBUS_RE = re.compile(r"^([0134])(\d{1,5})(?:\.(\d{1,3})([HLhl])?)?\s*((?:\[\d+\]\s*){0,2})$")
LOGIX_RE = re.compile(r"^(?P<path>[A-Za-z_:][\w:.\[\],]*?)\s*(?:\{(?P<cols>\d+)\}(?:\{(?P<rows>\d+)\})?)?$")
DIMS_RE = re.compile(r"\[(\d+)\]")


def read_kepware(path: Path, protocol: Protocol | None = None) -> DraftMap:
    """A Kepware tag CSV as a draft map; ValueError naming file:line for a file that is no such CSV."""
    text = read_vendor_text(path)
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","  # KEPServerEX's CSV delimiter option
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise ValueError(f"{path}:1: empty file") from None
    if "Tag Name" not in header or "Address" not in header:
        raise ValueError(f"{path}:1: no 'Tag Name' column (or no 'Address'); a Kepware tag CSV starts with "
                         f"{','.join(COLUMNS[:6])},...")
    report = ImportReport(str(path))
    extra = [h for h in header if h not in COLUMNS]
    records = []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        record = dict(zip(header, (cell.strip() for cell in row)))
        records.append((rows.line_num, record))
        for cell in (c.strip() for c in row[len(header):]):
            if cell:  # a cell beyond the header's columns: no column to carry it
                report.unmapped("(a cell beyond the header's columns)", cell)
        for column in extra:
            if record.get(column):
                report.unmapped(column, record[column])
    report.vendor_rows = len(records)
    if protocol is None:
        modbus = sum(1 for _, r in records if MODBUS_RE.match(r.get("Address", "")))
        protocol = Protocol.MODBUS if records and modbus * 2 > len(records) else Protocol.LOGIX
        report.notes.append(f"protocol {protocol.value}: read from the addresses ({modbus} of {len(records)} Modbus)")
    if protocol is Protocol.MODBUS:
        report.notes.append("Modbus addresses read with Kepware's default zero-based addressing (400001 is "
                            "holding_register:0); Kepware's word order for 32/64-bit values is a device property, "
                            "not in the CSV: the map's byte_order is its default ABCD, check it")
    draft = DraftMap(Path(path).stem, protocol, [], report)
    taken: set[str] = set()
    leaves: dict[str, str] = {}
    for line, record in records:
        tag = _tag(f"{path}:{line}", record, protocol, report, taken)
        if tag is not None:
            draft.tags.append(tag)
            leaves[tag.name] = record["Tag Name"].rsplit(".", 1)[-1]
            if tag.scan_group is not None:
                draft.scan_groups[tag.scan_group] = int(tag.scan_group[len("scan_"):-len("ms")])
    draft.scan_groups = dict(sorted(draft.scan_groups.items(), key=lambda kv: kv[1]))
    modbus = sum(1 for _, r in records if MODBUS_RE.match(r.get("Address", "")))
    if records and not draft.tags and (modbus * 2 > len(records)) != (protocol is Protocol.MODBUS):
        other = Protocol.MODBUS if protocol is Protocol.LOGIX else Protocol.LOGIX
        report.notes.append(f"no row imported as {protocol.value}, and {modbus} of {len(records)} addresses are "
                            f"Modbus: the file is a {other.value} device's; import it with --protocol {other.value}")
    apply_roles(draft, leaves)
    return draft


def _tag(origin: str, record: dict, protocol: Protocol, report: ImportReport, taken: set[str]) -> DraftTag | None:
    vendor_name = record.get("Tag Name", "")
    if not vendor_name:
        report.skip(origin, "", "no Tag Name")
        return None
    wanted = vendor_name.replace(".", GROUP_SEP)
    if GROUP_SEP in vendor_name:
        report.notes.append(f"{origin}: {vendor_name!r} has {GROUP_SEP!r} in its name, which an export writes as a "
                            "group '.': rename it in the map to keep it")
    name = unique_name(wanted, taken)
    if name != wanted:
        report.renamed.append({"origin": origin, "vendor_name": vendor_name, "name": name})
    type_text = record.get("Data Type", "")
    base, is_array = kepware_type(type_text)
    address_text = record.get("Address", "")
    if protocol is Protocol.MODBUS:
        parsed = _modbus_address(address_text)
        if parsed is None:
            report.skip(origin, vendor_name, f"address {address_text!r} is not a Kepware Modbus address "
                                             "(like 400001, 300010.3, 000005, 400001[10])")
            return None
        table, item, bit, string_end, count = parsed
        if base in ("", "default"):
            base = "boolean" if table.is_bits or bit is not None else "word"  # the driver's defaults
    else:
        match = LOGIX_RE.match(address_text)
        if not match or not address_text:
            report.skip(origin, vendor_name, f"address {address_text!r} is not a Logix tag path")
            return None
        try:  # a path the map refuses (Grid[0,1].Val: one index an element) is named now, not after filling it in
            parse_logix_path(match["path"])
        except ValueError as exc:
            report.skip(origin, vendor_name, f"the map cannot address it: {exc}")
            return None
        count = int(match["cols"] or 1) * int(match["rows"] or 1)
        if base in ("", "default"):
            base = None
    if base in NO_COUNTERPART:
        report.unsupported(type_text, vendor_name, origin, NO_COUNTERPART[base])
        return None
    if base is not None and base not in KEPWARE_TO_MAP:
        report.unsupported(type_text, vendor_name, origin, f"Kepware type {type_text!r} is not one the import knows")
        return None
    type_name = KEPWARE_TO_MAP.get(base) if base is not None else None
    if type_name is not None and map_type(type_name) is None:
        report.unsupported(type_text, vendor_name, origin, f"this build's map has no type {type_name}")
        return None
    tag = DraftTag(name, origin, type=type_name, count=count, description=record.get("Description", ""))
    if type_name == "STRING" and (count > 1 or is_array):
        report.unsupported(type_text, vendor_name, origin, "an array of strings: the map has none; map each "
                                                           "string as its own tag")
        return None
    if protocol is Protocol.MODBUS:
        if (string_end is not None) != (type_name == "STRING"):
            report.skip(origin, vendor_name, f"address {address_text!r} with type {type_text!r}: a Modbus string "
                                             "is a String at 4xxxxx.nH or .nL (n characters)")
            return None
        if string_end is not None:
            tag.string_chars = string_end
            tag.byte_order = "BADC" if address_text.strip()[-1] in "Ll" else None  # L: low byte first
        if bit is not None and type_name != "BOOL":
            report.skip(origin, vendor_name, f"a bit address {address_text!r} with type {type_text!r}")
            return None
        tag.address = f"{table.value}:{item - 1}" + (f".{bit}" if bit is not None else "")
    else:
        tag.address = match["path"]
    if is_array and count == 1:
        report.notes.append(f"{origin}: {vendor_name!r} is a {type_text} of one element (no [n] or {{n}} in its address)")
    _access(tag, record, report)
    _scan_rate(tag, record, report, origin)
    if not _scaling(tag, record, report, origin, vendor_name):
        return None
    _unit(tag, record)
    respect = record.get("Respect Data Type", "")
    if respect not in ("", "1"):
        report.unmapped("Respect Data Type", respect)
    return tag


def _modbus_address(text: str):
    """'400020.3' -> (HOLDING_REGISTER, 20, 3, None, 1); a string '400001.20H' -> (..., None, 20, 1)."""
    match = MODBUS_RE.match(text.strip())
    if not match:
        return None
    digit, item_text, dot, string_order, dims = match.groups()
    item = int(item_text)
    if not 1 <= item <= 65536:
        return None
    count = 1
    for n in DIMS_RE.findall(dims or ""):
        count *= int(n)
    if dot is not None and string_order:
        return MODBUS_TABLES[digit], item, None, int(dot), count
    bit = int(dot) if dot is not None else None
    if bit is not None and not 0 <= bit <= 15:
        return None
    return MODBUS_TABLES[digit], item, bit, None, count


def _access(tag: DraftTag, record: dict, report: ImportReport) -> None:
    access = record.get("Client Access", "").upper().replace(" ", "")
    if access == "RO":
        tag.access = "read"
    elif access in ("R/W", "RW", "WO"):
        tag.access = "write"
        if access == "WO":
            report.unmapped("Client Access", "WO")
    elif access:  # another value is counted; none (no such column, a blank cell) leaves access missing
        report.unmapped("Client Access", record["Client Access"])


def _scan_rate(tag: DraftTag, record: dict, report: ImportReport, origin: str) -> None:
    text = record.get("Scan Rate", "")
    try:
        rate = int(float(text)) if text else DEFAULT_SCAN_MS
    except ValueError:
        report.unmapped("Scan Rate", text)
        return
    if MIN_SCAN_MS <= rate <= MAX_SCAN_MS:
        tag.scan_group = f"scan_{rate}ms"
    else:
        report.notes.append(f"{origin}: scan rate {rate} ms is outside the map's {MIN_SCAN_MS}..{MAX_SCAN_MS} ms")


def _number(record: dict, column: str) -> float | None:
    try:
        value = float(record.get(column, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _scaling(tag: DraftTag, record: dict, report: ImportReport, origin: str, vendor_name: str) -> bool:
    """Set the scaling and limits; False when the tag cannot be imported (a scaling the map lacks)."""
    mode = record.get("Scaling", "").strip().lower()
    negate = record.get("Negate Value", "") == "1"
    if mode in ("", "none", "0"):
        for column in ("Raw Low", "Raw High", "Scaled Low", "Scaled High", "Scaled Data Type", "Clamp Low", "Clamp High"):
            if record.get(column, "") not in ("", "0"):
                report.unmapped(f"{column} (no scaling)", record[column])
        if negate:
            if tag.type == "BOOL":
                report.unmapped("Negate Value (no scaling)", "1")
            else:
                tag.scaling = (-1.0, 0.0)
        return True
    if mode not in ("linear", "1"):
        report.skip(origin, vendor_name, f"scaling {record.get('Scaling')!r}: the map scales linearly only "
                                         "(value = raw x gain + offset)")
        return False
    raw_low, raw_high = _number(record, "Raw Low"), _number(record, "Raw High")
    scaled_low, scaled_high = _number(record, "Scaled Low"), _number(record, "Scaled High")
    if None in (raw_low, raw_high, scaled_low, scaled_high) or raw_high == raw_low or tag.type == "BOOL":
        report.skip(origin, vendor_name, "a Linear scaling without two distinct raw values and two scaled values")
        return False
    gain = (scaled_high - scaled_low) / (raw_high - raw_low)
    offset = scaled_low - raw_low * gain
    low, high = sorted((scaled_low, scaled_high))
    if negate:
        gain, offset, low, high = -gain, -offset, -high, -low
    tag.scaling = (gain, offset)
    tag.limits = (low, high)
    scaled_type = record.get("Scaled Data Type", "")
    if scaled_type:
        report.unmapped("Scaled Data Type", scaled_type)
    for column in ("Clamp Low", "Clamp High"):
        if record.get(column, "") == "1":
            report.unmapped(column, "1")
    return True


def _unit(tag: DraftTag, record: dict) -> None:
    unit = record.get("Eng Units", "")
    if unit:
        tag.unit = unit
    elif tag.type in ("BOOL", "STRING"):
        tag.unit = ""  # a flag or a text has no unit; a number's unit stays for the user to say


def write_kepware(tag_map: TagMap) -> tuple[str, dict]:
    """The Kepware tag CSV of `tag_map` and the report of the map fields it could not carry."""
    periods = {g.name: g.period_ms for g in tag_map.scan_groups}
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\r\n")
    lost: dict[str, list[str]] = {}
    for tag in tag_map.tags:
        row = _row(tag, periods[tag.scan_group], tag_map.protocol, lost)
        out.write(",".join(_quote(row[c]) if c in ("Tag Name", "Address", "Description") or _needs_quotes(row[c])
                           else row[c] for c in COLUMNS) + "\r\n")
    if tag_map.roles:  # a tag's role travels only in its name (a tag named as its role's default)
        lost["roles"] = [f"{role} = {name}" for role, name in tag_map.roles.items()]
    if tag_map.fixture is not None:
        lost["fixture"] = ["fixture"]
    connection = ["host", "port", "timeout_s"] + (["unit_id"] if tag_map.protocol is Protocol.MODBUS else ["route"])
    report = {
        "tags": len(tag_map.tags),
        "not_carried": {field: {"count": len(names), "names": names} for field, names in lost.items()},
        "connection_not_carried": connection,
        "notes": ["Kepware keeps the endpoint, the unit id or route, the timeout and the word order in the "
                  "channel and device, not in the tag CSV; the scan group names are kept as their periods"],
    }
    return out.getvalue(), report


def _row(tag, period_ms: int, protocol: Protocol, lost: dict) -> dict:
    def lose(field: str) -> None:
        lost.setdefault(field, []).append(tag.name)

    lose("owner")
    if tag.safe_value is not None:
        lose("safe_value")
    if (protocol is Protocol.MODBUS and tag.byte_order.value != "ABCD" and tag.data_type.value != "STRING"
            and (tag.data_type.registers >= 2 or tag.byte_order.value in ("BADC", "DCBA"))):
        lose("byte_order")  # a STRING's byte order is its address's H or L
    row = dict.fromkeys(COLUMNS, "")
    row["Tag Name"] = tag.name.replace(GROUP_SEP, ".")
    row["Address"] = _address_text(tag)
    row["Data Type"] = MAP_TO_KEPWARE[tag.data_type.value] + (" Array" if tag.is_array else "")
    row["Respect Data Type"] = "1"
    row["Client Access"] = "R/W" if tag.access.value == "write" else "RO"
    row["Scan Rate"] = str(period_ms)
    row["Eng Units"] = tag.unit
    row["Description"] = tag.description
    gain, offset = tag.scaling.gain, tag.scaling.offset
    limits = (tag.limits.min, tag.limits.max) if tag.limits is not None else None
    if (gain, offset) == (1.0, 0.0):
        if limits is not None:
            lose("limits")  # Kepware holds a range only with a scaling
        return row
    negate = gain < 0
    if negate:
        gain, offset = -gain, -offset
        limits = (-limits[1], -limits[0]) if limits is not None else None
    if limits is None:
        lose("limits (none: the type's whole range written as Kepware's scaled range)")
        raw_low, raw_high = tag.data_type.raw_range
        limits = tuple(sorted((raw_low * gain + offset, raw_high * gain + offset)))
    raw = sorted(((limits[0] - offset) / gain, (limits[1] - offset) / gain))
    row.update({"Scaling": "Linear", "Raw Low": _num(raw[0]), "Raw High": _num(raw[1]),
                "Scaled Low": _num(limits[0]), "Scaled High": _num(limits[1]), "Scaled Data Type": "Double",
                "Clamp Low": "0", "Clamp High": "0", "Negate Value": "1" if negate else "0"})
    return row


def _address_text(tag) -> str:
    if isinstance(tag.address, ModbusAddress):
        text = f"{TABLE_DIGIT[tag.address.table]}{tag.address.address + 1:05d}"
        if tag.data_type.value == "STRING":
            return text + f".{tag.string_chars}" + ("L" if tag.byte_order.value in ("BADC", "DCBA") else "H")
        bit = getattr(tag.address, "bit", None)
        if bit is not None:
            text += f".{bit}"
        return text + (f"[{tag.count}]" if tag.is_array else "")
    return tag.address + (f" {{{tag.count}}}" if tag.is_array else "")


def _num(value: float) -> str:
    """A number as Kepware shows it: 12 significant digits, no trailing '.0'."""
    text = f"{value:.12g}"
    return "0" if text == "-0" else text


def _needs_quotes(text: str) -> bool:
    return any(ch in text for ch in ',";\r\n')


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


__all__ = ["COLUMNS", "read_kepware", "write_kepware"]
