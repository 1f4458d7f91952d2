"""PLC addresses: their spellings parsed, and the check that no two tags of a map share PLC data.

Modbus (`parse_modbus_address`): `table:N` or `table:N.B` (N zero-based 0..65535, B a bit of a
register 0..15, 0 the least significant), and the register-number notation as another spelling of
the same zero-based address: five digits `4xxxx` (holding), `3xxxx` (input register), `1xxxx`
(discrete input), `0xxxx` (coil), numbered from 1 (40001 = holding_register:0, 49999 =
holding_register:9998), or six digits (400001 = holding_register:0 .. 465536 =
holding_register:65535); a bit after a dot (`40021.3` = holding_register:20.3). A tag's last register
or bit must be inside 0..65535 too (`REAL[5]` at 465535 is refused).

Logix (`parse_logix_path`): a controller-scoped or program-scoped tag (`Program:Main.Tag`), an I/O
module tag (`Local:3:I.Ch0Data`, `Rack1:1:O.Data[2]`), members of a structure or UDT
(`Cell[3].Temp`), array elements (`Arr[4]`, one index), and a bit of an integer at the end
(`Status.5`, `DL4.In.Status.5`). Logix names are case-insensitive, so the overlap check is too.

Overlaps (`check_address_overlaps`): Modbus tags whose registers or bits overlap (two bits of one
register do not; a bit and a word on one register do); Logix tags on the same PLC data: the same
path, one an element, member or bit of the other, or array ranges that meet. Each is refused on
the later tag's line, naming the earlier tag and its line.
Tests: tests/edge/tagmap/test_types.py, tests/edge/tagmap/test_load.py, tests/edge/tagmap/test_commissioning.py.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from edge.tagmap.checker import Checker
from edge.tagmap.model import ModbusAddress, ModbusTable, Protocol, Tag

MODBUS_TABLE_DIGIT = {"0": ModbusTable.COIL, "1": ModbusTable.DISCRETE_INPUT,
                      "3": ModbusTable.INPUT_REGISTER, "4": ModbusTable.HOLDING_REGISTER}
_MODBUS_TABLE_RE = re.compile(r"^([a-z_]+):(\d+)(?:\.(\d+))?$")
_MODBUS_NUMBER_RE = re.compile(r"^(\d{5,6})(?:\.(\d+))?$")
MODBUS_SPELLINGS = ("'holding_register:100', 'holding_register:20.3', {table: input_register, address: 5}, "
                    "or a register number: 40001 = holding_register:0, 300001 = input_register:0, "
                    "'00001' = coil:0 (quote a number with a leading 0 or a bit: '40021.3')")


def parse_modbus_address(raw: object) -> ModbusAddress:
    """A Modbus address in any of its spellings -> ModbusAddress; ValueError saying what is allowed.

    `raw` is a string, an int (a register number such as 40001) or a mapping {table, address[, bit]}.
    The table name is checked here; whether the tag's type may live there is the caller's check."""
    if isinstance(raw, dict):
        if not {"table", "address"} <= set(raw) or not set(raw) <= {"table", "address", "bit"}:
            raise ValueError(f"address is {raw!r}; allowed: {MODBUS_SPELLINGS}")
        table = _table(raw["table"])
        number, bit = raw["address"], raw.get("bit")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 65535:
            raise ValueError(f"address.address is {number!r}; allowed: 0..65535 (zero-based)")
        if bit is not None and (isinstance(bit, bool) or not isinstance(bit, int)):
            raise ValueError(f"address.bit is {bit!r}; allowed: 0..15")
        return _with_bit(table, number, bit)
    if isinstance(raw, float):
        raise ValueError(f"address is {raw!r}, a number with a fraction; quote a register bit, like '40021.3'")
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError(f"address is {raw!r}; allowed: {MODBUS_SPELLINGS}")
    text = str(raw).strip()
    match = _MODBUS_TABLE_RE.match(text)
    if match:
        table_raw, number_raw, bit_raw = match.groups()
        number = int(number_raw)
        if number > 65535:
            raise ValueError(f"address {text!r}: {number} is outside what is allowed: 0..65535 (zero-based)")
        return _with_bit(_table(table_raw), number, None if bit_raw is None else int(bit_raw))
    match = _MODBUS_NUMBER_RE.match(text)
    if not match:
        if isinstance(raw, int) and 1 <= raw <= 9999:
            written = int(f"{raw:o}")  # YAML reads an unquoted 01001 as the octal number 513
            octal = (f"; written {written:05d} unquoted, YAML read it as an octal number: quote it, "
                     f"'{written:05d}' = coil:{written - 1}") if raw >= 8 and 1 <= written <= 9999 else ""
            raise ValueError(f"address is {raw}: a coil number needs its leading zeros, quoted: "
                             f"'{raw:05d}' = coil:{raw - 1}{octal}")
        raise ValueError(f"address is {raw!r}; allowed: {MODBUS_SPELLINGS}")
    digits, bit_raw = match.groups()
    table = MODBUS_TABLE_DIGIT.get(digits[0])
    if table is None:
        raise ValueError(f"address {text!r}: a register number starts with 0 (coil), 1 (discrete input), "
                         "3 (input register) or 4 (holding register)")
    number = int(digits[1:])
    highest = 9999 if len(digits) == 5 else 65536
    if not 1 <= number <= highest:
        raise ValueError(f"address {text!r}: the number after the table digit is {number}; allowed: "
                         f"1..{highest} (numbered from 1: {digits[0]}{'0' * (len(digits) - 2)}1 = {table.value}:0)")
    return _with_bit(table, number - 1, None if bit_raw is None else int(bit_raw))


def _table(raw: object) -> ModbusTable:
    try:
        return ModbusTable(raw)
    except ValueError:
        raise ValueError(f"address.table is {raw!r}; allowed: {', '.join(t.value for t in ModbusTable)}") from None


def _with_bit(table: ModbusTable, number: int, bit: int | None) -> ModbusAddress:
    if bit is not None:
        if table.is_bits:
            raise ValueError(f"a bit index (.{bit}) applies to holding_register and input_register; "
                             f"a {table.value} is a bit already")
        if not 0 <= bit <= 15:
            raise ValueError(f"bit {bit} of a 16-bit register; allowed: 0..15")
    return ModbusAddress(table, number, bit)


# -- Logix ------------------------------------------------------------------------------------------
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PROGRAM_RE = re.compile(rf"^Program:({_IDENT})\.", re.IGNORECASE)
_MODULE_RE = re.compile(rf"^{_IDENT}:\d+:[IOCS]$")
_SEGMENT_RE = re.compile(rf"^({_IDENT})(?:\[(\d+)\])?$")
MAX_LOGIX_BIT = 31
LOGIX_SPELLINGS = ("'ZoneTemp', 'Arr[4]', 'Cell[3].Temp', 'Program:Main.Relief[2]', 'Local:3:I.Ch0Data', "
                   "'Rack1:1:O.Data[2]', 'Status.5'")


@dataclass(frozen=True)
class LogixPath:
    """A parsed Logix tag path. `base` is the PLC tag as the controller's tag list names it
    (`Program:Main.Tag`, `Tag`, `Local:3:I`); `segments` (name, index or None) from the base on;
    `bit` the bit of an integer at the end, or None."""

    text: str
    program: str | None
    segments: tuple[tuple[str, int | None], ...]
    bit: int | None

    @property
    def base(self) -> str:
        name = self.segments[0][0]
        return f"Program:{self.program}.{name}" if self.program else name

    @property
    def base_index(self) -> int | None:
        return self.segments[0][1]

    @property
    def is_member(self) -> bool:
        """A member of a structure (a UDT, a module's I/O) rather than the base tag or its element."""
        return len(self.segments) > 1

    @property
    def is_module(self) -> bool:
        return bool(_MODULE_RE.match(self.segments[0][0]))

    def span(self, count: int) -> tuple:
        """What the path covers, for the overlap check: (scope, ((name, first, end), ...)) with
        names lower-cased; the last segment covers `count` elements from its index; a bit is a
        last segment of its own."""
        parts = []
        for i, (name, index) in enumerate(self.segments):
            first = index or 0
            last = i == len(self.segments) - 1 and self.bit is None
            parts.append((name.lower(), first, first + (count if last else 1)))
        if self.bit is not None:
            parts.append(("#bit", self.bit, self.bit + 1))
        return (self.program or "").lower(), tuple(parts)


def parse_logix_path(text: object) -> LogixPath:
    """A Logix tag path -> LogixPath; ValueError saying what is wrong and what is allowed."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise ValueError(f"address is {text!r}; a Logix tag path is allowed, like {LOGIX_SPELLINGS}")
    rest, program = text, None
    match = _PROGRAM_RE.match(text)
    if match:
        program, rest = match.group(1), text[match.end():]
        if not text.startswith("Program:"):
            raise ValueError(f"address {text!r}: write the scope as 'Program:{program}.'")
    elif text.lower().startswith("program:"):
        raise ValueError(f"address {text!r}: a program-scoped tag is 'Program:<program>.<tag>', like 'Program:Main.Relief'")
    parts = rest.split(".")
    bit = None
    if len(parts) > 1 and parts[-1].isdigit():
        bit = int(parts.pop())
        if bit > MAX_LOGIX_BIT:
            raise ValueError(f"address {text!r}: bit {bit} of an integer; allowed: 0..{MAX_LOGIX_BIT} (a bit of a SINT, INT or DINT)")
    segments = []
    for i, part in enumerate(parts):
        if i == 0 and _MODULE_RE.match(part):
            if program:
                raise ValueError(f"address {text!r}: an I/O module tag ({part}) is controller-scoped; drop 'Program:{program}.'")
            segments.append((part, None))
            continue
        seg = _SEGMENT_RE.match(part)
        if not seg:
            hint = " (a bit comes last, after an integer: 'Status.5')" if part.isdigit() else ""
            raise ValueError(f"address {text!r}: {part!r} is not a tag, member or element{hint}; "
                             f"a Logix tag path is allowed, like {LOGIX_SPELLINGS}")
        segments.append((seg.group(1), None if seg.group(2) is None else int(seg.group(2))))
    path = LogixPath(text, program, tuple(segments), bit)
    if path.is_module and len(segments) == 1:
        raise ValueError(f"address {text!r}: a module's whole I/O structure is not one value; name a member, "
                         f"like '{parts[0]}.Data[0]' or '{parts[0]}.Ch0Data'")
    return path


# -- overlaps ---------------------------------------------------------------------------------------
MODBUS_ADDRESSES = 65536
"""Addresses in each Modbus table (0..65535): a tag's last register or bit is inside them."""


def check_address_overlaps(check: Checker, tags: list[Tag], protocol: Protocol | None) -> None:
    """Record a problem for every tag whose data overlaps an earlier tag's (in map order)."""
    if protocol is Protocol.MODBUS:
        _check_modbus_overlaps(check, tags)
    elif protocol is Protocol.LOGIX:
        _check_logix_overlaps(check, tags)


def _check_modbus_overlaps(check: Checker, tags: list[Tag]) -> None:
    by_table: dict = defaultdict(list)
    for order, tag in enumerate(tags):
        if isinstance(tag.address, ModbusAddress):
            start = tag.address.address
            end = start + tag.register_count
            if end > MODBUS_ADDRESSES:
                unit = "bits" if tag.address.table.is_bits else "registers"
                check.fail(tag.source_line, f"address {tag.address} with {tag.register_count} {unit} ends at "
                                            f"{tag.address.table.value}:{end - 1}, past the last address 65535; "
                                            f"allowed: a start of at most {MODBUS_ADDRESSES - tag.register_count}",
                           tag.name)
                continue
            by_table[tag.address.table].append((start, end, order, tag))
    reported: set[str] = set()
    for table, spans in by_table.items():
        spans.sort(key=lambda s: s[:3])
        active: list = []  # spans that may still overlap the next one
        for start, end, order, tag in spans:
            active = [a for a in active if a[1] > start]
            for a in active:
                if _bits_apart(a[3], tag):
                    continue
                first, later = (a[3], tag) if a[2] < order else (tag, a[3])
                if later.name not in reported:
                    reported.add(later.name)
                    unit = "bits" if table.is_bits else "registers"
                    check.fail(later.source_line, f"address {later.address} overlaps tag {first.name!r} (line "
                                                  f"{first.source_line}, {first.address} spans "
                                                  f"{first.register_count} {unit})", later.name)
            active.append((start, end, order, tag))


def _bits_apart(a: Tag, b: Tag) -> bool:
    """Two bits of one register, at different bits: no overlap."""
    return a.register_bit is not None and b.register_bit is not None and a.register_bit != b.register_bit


def _check_logix_overlaps(check: Checker, tags: list[Tag]) -> None:
    """Each tag against the earlier ones through a tree of their spans (`_SpanNode`): a lookup per
    segment, not a comparison with every earlier tag of the same PLC tag (8000 members of one UDT
    array took 27 s to check that way)."""
    roots: dict = {}  # scope -> _SpanNode
    for order, tag in enumerate(tags):
        try:
            scope, parts = parse_logix_path(tag.address).span(tag.count)
        except ValueError:
            continue  # refused on its own line already
        root = roots.setdefault(scope, _SpanNode())
        earlier = root.first_meeting(parts)
        if earlier is not None:
            check.fail(tag.source_line, f"address {tag.address!r} is the same PLC data as tag {earlier[1].name!r} "
                                        f"(line {earlier[1].source_line}, {earlier[1].address!r}): one tag a PLC "
                                        "tag, its elements, members or bits", tag.name)
        root.insert(parts, (order, tag))


class _SpanNode:
    """Spans of earlier tags below one path prefix: `ends` the tags whose span ends here (they cover
    everything below), `first` the earliest tag anywhere below, `units` the next segments of one
    element by (name, index), `wides` those of a range by name: [(first, end, node)]."""

    __slots__ = ("ends", "first", "units", "wides")

    def __init__(self) -> None:
        self.ends: list = []
        self.first = None
        self.units: dict = {}
        self.wides: dict = {}

    def insert(self, parts: tuple, entry: tuple) -> None:
        node = self
        for name, first, end in parts:
            if node.first is None:
                node.first = entry
            if end - first == 1:
                node = node.units.setdefault((name, first), _SpanNode())
            else:
                ranges = node.wides.setdefault(name, [])
                child = next((n for f, e, n in ranges if (f, e) == (first, end)), None)
                if child is None:
                    child = _SpanNode()
                    ranges.append((first, end, child))
                node = child
        if node.first is None:
            node.first = entry
        node.ends.append(entry)

    def first_meeting(self, parts: tuple):
        """The earliest (order, tag) whose span meets `parts` (`_logix_meet`), or None."""
        found = [self.ends[0]] if self.ends else []
        if not parts:
            if self.first is not None:
                found.append(self.first)  # this span covers every earlier one below it
            return min(found, key=lambda e: e[0]) if found else None
        (name, first, end), rest = parts[0], parts[1:]
        children = []
        if end - first <= len(self.units):
            children += [self.units[(name, i)] for i in range(first, end) if (name, i) in self.units]
        else:
            children += [n for (n_name, i), n in self.units.items() if n_name == name and first <= i < end]
        children += [n for f, e, n in self.wides.get(name, ()) if f < end and first < e]
        for child in children:
            hit = child.first_meeting(rest)
            if hit is not None:
                found.append(hit)
        return min(found, key=lambda e: e[0]) if found else None


def _logix_meet(a: tuple, b: tuple) -> bool:
    """The rule `_SpanNode.first_meeting` applies to each earlier span (tests compare the two). Two spans meet when every segment they both have names the same thing with ranges that meet:
    the same data, or one inside the other (an element, a member, a bit)."""
    for (name_a, first_a, end_a), (name_b, first_b, end_b) in zip(a, b):
        if name_a != name_b or first_a >= end_b or first_b >= end_a:
            return False
    return True
