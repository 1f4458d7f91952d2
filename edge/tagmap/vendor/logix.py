"""Logix tags (a Studio 5000 CSV row, an L5X Tag element) as map tags: UDTs, arrays, bits, aliases.

A map tag is one atomic Logix value or array of them. `LogixTags.add` turns one controller or
program tag into map tags: an atomic tag or array of an atomic type is one map tag (a
multi-dimensional array read flat, element count the product); a UDT (from the L5X's
DataTypes), or TIMER/COUNTER/CONTROL, is expanded into a map tag per visible member (a BIT member
is a BOOL at `Tag.Member`), an array of structures into one per element and member
(`Cells[3].Temp`; an array of structures of 2 or 3 dimensions is skipped, named: a map's Logix
path takes one index); a type with no map type (SINT, module-defined, Add-On Instruction, a UDT a CSV
does not define) is reported and skipped, named. Program tags live at `Program:<Program>.<Tag>`
and are named `<Program>_<Tag>`. An alias is imported at its own path; its type comes from its
target when the target is a known tag (a `Tag.5` bit of an integer: BOOL); else the type is left
for the user. ExternalAccess Read Only (or a constant) is access `read`; Read/Write says only that
a client may write, so access is left for the user; None cannot be reached and is skipped.
Tests: tests/edge/tagmap/vendor/test_studio5000.py, test_commissioning_vendor.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from edge.tagmap.addresses import parse_logix_path
from edge.tagmap.vendor.draft import DraftTag, ImportReport, unique_name
from edge.tagmap.vendor.types import LOGIX_BUILTIN_MEMBERS, LOGIX_TO_MAP, NO_COUNTERPART, map_type

MAX_ELEMENTS_EXPANDED = 4096
"""An array of structures is expanded element by element up to this many map tags per Logix tag."""
MAX_IMPORTED_TAGS = 20_000
"""Map tags an import writes at most; a Logix tag that would pass it is skipped, named (60 tags of
a UDT of 64 x 64 members, a 16 kB L5X, made 245 760 map tags: 14 s, 580 MB, a 13.5 MB map that
no loader reads). A map is at most 2 MiB (edge/tagmap/checker.py): about 8000 tags."""

INTEGER_TYPES = {"SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT"}


@dataclass
class Member:
    name: str
    datatype: str
    dims: tuple[int, ...] = ()
    hidden: bool = False
    access: str = "Read/Write"  # ExternalAccess
    description: str = ""


@dataclass
class LogixType:
    name: str
    members: list[Member]
    string: bool = False  # a string type (STRING or a user string of the string family)


@dataclass
class LogixTag:
    """A controller or program tag as the vendor file lists it."""

    name: str
    scope: str  # "" for the controller, else the program's name
    datatype: str  # "" for an alias
    dims: tuple[int, ...]
    origin: str
    description: str = ""
    access: str = "Read/Write"
    constant: bool = False
    alias_for: str = ""
    kind: str = "Base"  # Base, Alias, Produced, Consumed

    @property
    def path(self) -> str:
        return f"Program:{self.scope}.{self.name}" if self.scope else self.name


def map_name(path: str) -> str:
    """'Program:Main.Cells[3].Temp' -> 'Main_Cells_3_Temp'."""
    text = path[len("Program:"):] if path.startswith("Program:") else path
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", text)).strip("_")


@dataclass
class LogixTags:
    """Collects map tags from Logix tags; `types` are the file's UDTs (empty for a CSV)."""

    report: ImportReport
    types: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    taken: set = field(default_factory=set)
    known: dict = field(default_factory=dict)  # path -> LogixTag, for aliases
    hidden_members: int = 0
    leaf_counts: dict = field(default_factory=dict)  # UDT name -> map tags one element expands to
    leaf_counting: set = field(default_factory=set)  # UDTs being counted (a cycle)

    def add(self, tag: LogixTag) -> None:
        builtin = tag.datatype.upper()
        if builtin != tag.datatype and (builtin in LOGIX_TO_MAP or builtin in LOGIX_BUILTIN_MEMBERS
                                        or builtin in NO_COUNTERPART):
            tag.datatype = builtin  # Logix type names are case-insensitive: 'dint' is DINT
        self.known[tag.path] = tag
        if tag.kind == "Alias":
            return  # after every base tag is known: `add_aliases`
        if tag.access == "None":
            self.report.skip(tag.origin, tag.path, "ExternalAccess None: no client can reach it")
            return
        access = "read" if tag.access == "Read Only" or tag.constant or tag.kind == "Consumed" else None
        self._expand(tag.path, tag.datatype, tag.dims, tag.description, access, tag.origin, tag.path)

    def add_aliases(self) -> None:
        for tag in self.known.values():
            if tag.kind != "Alias":
                continue
            type_name, count = self.resolve(tag.alias_for, tag.scope)
            access = "read" if tag.access == "Read Only" else None
            draft = self._draft(tag.path, type_name, count, tag.description, access, tag.origin)
            if draft is not None and type_name is None:
                self.report.notes.append(f"{tag.origin}: alias {tag.path} -> {tag.alias_for}: the target's type "
                                         "is not in the file (an I/O module's?); the type is left for you")

    def resolve(self, target: str, scope: str) -> tuple[str | None, int]:
        """The map type and element count of an alias target like 'Cells[2].Temp', 'Status.5'."""
        parts = target.split(".")
        first = parts[0]
        if first.startswith("Program:") and len(parts) > 1:
            first, parts = f"{first}.{parts[1]}", parts[1:]
        base = re.sub(r"\[.*\]$", "", first)
        tag = self.known.get(f"Program:{scope}.{base}") if scope else None
        tag = tag or self.known.get(base)
        if tag is None or tag.kind == "Alias":
            return None, 1
        datatype, dims = tag.datatype, tag.dims
        indexed = first.endswith("]")
        for part in parts[1:]:
            if part.isdigit() and datatype in INTEGER_TYPES and (indexed or not dims):
                return "BOOL", 1
            members = self._members(datatype)
            member = next((m for m in members or () if m.name == re.sub(r"\[.*\]$", "", part)), None)
            if member is None:
                return None, 1
            datatype, dims, indexed = member.datatype, member.dims, part.endswith("]")
        type_name = self._atomic(datatype)
        if type_name is None:
            return None, 1
        return type_name, 1 if indexed or not dims else math.prod(dims)

    def _atomic(self, datatype: str) -> str | None:
        if datatype in LOGIX_TO_MAP:
            return LOGIX_TO_MAP[datatype]
        known = self.types.get(datatype)
        return "STRING" if known is not None and known.string else None

    def _members(self, datatype: str):
        if datatype in LOGIX_BUILTIN_MEMBERS:
            return [Member(n, t) for n, t in LOGIX_BUILTIN_MEMBERS[datatype]]
        known = self.types.get(datatype)
        return known.members if known is not None and not known.string else None

    def _expand(self, path, datatype, dims, description, access, origin, top) -> None:
        if path == top and self._leaves(datatype, dims) <= MAX_ELEMENTS_EXPANDED \
                and len(self.tags) + self._leaves(datatype, dims) > MAX_IMPORTED_TAGS:
            self.report.skip(origin, path, f"{self._leaves(datatype, dims)} map tags more would pass "
                                           f"{MAX_IMPORTED_TAGS} in all (a map is at most 2 MiB, about 8000 tags); "
                                           "import one program's tags, or map the members you need by hand")
            return
        type_name = self._atomic(datatype)
        if type_name is not None:
            self._typed(path, datatype, type_name, math.prod(dims) if dims else 1, description, access, origin)
            return
        members = self._members(datatype)
        if members is None:
            reason = NO_COUNTERPART.get(datatype) or (
                f"data type {datatype!r} is not defined in this file (a UDT of a tag CSV, whose definitions "
                "only the L5X holds; a module-defined or Add-On Instruction type)")
            self.report.unsupported(datatype, path, origin, reason)
            return
        if len(dims) > 1:  # Grid[0,1].Val: the map's Logix paths take one index (edge/tagmap/addresses.py)
            self.report.skip(origin, path, f"an array of {datatype} of {len(dims)} dimensions "
                                           f"({' x '.join(map(str, dims))}): a map addresses an element by one "
                                           "index, so its members cannot be mapped; make it one-dimensional in "
                                           "the controller, or alias the members you need")
            return
        elements = [""] if not dims else [f"[{i}]" for i in range(dims[0])]
        visible = [m for m in members if not m.hidden]
        self.hidden_members += (len(members) - len(visible)) * len(elements)
        if path == top and self._leaves(datatype, dims) > MAX_ELEMENTS_EXPANDED:
            self.report.skip(origin, path, f"{len(elements)} elements of {datatype}: "
                                           f"{self._leaves(datatype, dims)} map tags, more than "
                                           f"{MAX_ELEMENTS_EXPANDED}; map the members you need by hand")
            return
        for element in elements:
            for member in visible:
                member_path = f"{path}{element}.{member.name}"
                if member.access == "None":
                    self.report.skip(origin, member_path, "member ExternalAccess None: no client can reach it")
                    continue
                member_access = "read" if member.access == "Read Only" else access
                text = " - ".join(t for t in (description, member.description) if t)
                self._expand(member_path, member.datatype, member.dims, text, member_access, origin, top)

    def _leaves(self, datatype: str, dims: tuple[int, ...], depth: int = 0) -> int:
        """How many map tags `datatype[dims]` expands to (a cycle of types, or nesting deeper than
        16, counts as too many: MAX_ELEMENTS_EXPANDED + 1). Each type is counted once
        (`leaf_counts`): counting member by member took members^depth steps (10 UDTs of 10
        members each, nested, a 9 kB L5X: minutes)."""
        if self._atomic(datatype) is not None:
            return 1
        members = self._members(datatype)
        if members is None:
            return 1
        if datatype not in self.leaf_counts:
            if depth > 16 or datatype in self.leaf_counting:
                return MAX_ELEMENTS_EXPANDED + 1
            self.leaf_counting.add(datatype)
            total = sum(self._leaves(m.datatype, m.dims, depth + 1) for m in members if not m.hidden)
            self.leaf_counting.discard(datatype)
            self.leaf_counts[datatype] = total
        return (math.prod(dims) if dims else 1) * self.leaf_counts[datatype]

    def _typed(self, path, datatype, type_name, count, description, access, origin) -> None:
        if map_type(type_name) is None:
            self.report.unsupported(datatype, path, origin, f"this build's map has no type {type_name}")
            return
        self._draft(path, type_name, count, description, access, origin)

    def _draft(self, path, type_name, count, description, access, origin) -> DraftTag | None:
        try:  # the map's Logix path rules (edge/tagmap/addresses.py): named now, not after filling it in
            parse_logix_path(path)
        except ValueError as exc:
            self.report.skip(origin, path, f"the map cannot address it: {exc}")
            return None
        wanted = map_name(path)
        name = unique_name(wanted, self.taken)
        if name != wanted:
            self.report.renamed.append({"origin": origin, "vendor_name": path, "name": name})
        tag = DraftTag(name, origin, address=path, type=type_name, count=count, access=access,
                       description=description)
        if type_name in ("BOOL", "STRING"):
            tag.unit = ""
        self.tags.append(tag)
        return tag

    def finish(self) -> list[DraftTag]:
        self.add_aliases()
        if self.hidden_members:
            self.report.notes.append(f"{self.hidden_members} hidden UDT members (the host bytes of BOOL members) "
                                     "not imported: their BOOL members are")
        return self.tags
