"""What an import knows of a map, written as the map's YAML, and what it could not know.

A vendor file gives some of a tag's fields (address, type, often access, unit, scan rate,
scaling) and never others (owner, safe value; roles). An importer fills a `DraftMap` of
`DraftTag`s, a field it does not know left None, and an `ImportReport` of everything it did not
carry over: vendor columns the map has no field for (counted, with their values), vendor types
with no map type (named), rows skipped and why, names changed to fit the map. `write_draft`
writes the YAML that `load_tag_map` reads (no placeholders: a field not known is absent) and
returns, per tag, the line of its entry and the fields missing there: the lines `tags check`
names for the same map. `read_vendor_text` reads a vendor file bounded: a regular file, at most
`MAX_VENDOR_BYTES`, UTF-8 (a byte-order mark allowed).
Tests: tests/edge/tagmap/vendor/test_draft.py, test_kepware.py, test_studio5000.py.
"""

from __future__ import annotations

import errno
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.tagmap.checker import FileTooLarge, NotARegularFile, read_regular_bytes
from edge.tagmap.model import Protocol

MAX_VENDOR_BYTES = 64 * 1024 * 1024
"""The largest vendor file an import reads (a controller's L5X with its logic stays well below)."""

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class DraftTag:
    """One map tag as far as the vendor file tells it; None is 'not known'."""

    name: str
    origin: str  # "FILE:LINE" of the vendor row (or element) it came from
    address: str | None = None
    type: str | None = None  # the map's type name: "REAL", "UINT", ...
    count: int = 1
    access: str | None = None  # "read" | "write"
    owner: str | None = None
    unit: str | None = None
    scaling: tuple[float, float] | None = None  # (gain, offset)
    limits: tuple[float, float] | None = None
    safe_value: object = None
    scan_group: str | None = None
    description: str = ""
    string_chars: int = 0  # a Modbus STRING(N)'s N; 0 for every other tag
    byte_order: str | None = None  # Modbus: written only when the vendor file says it

    @property
    def type_text(self) -> str | None:
        """The map's `type:` field: 'REAL[36]', 'STRING(20)', 'DINT'."""
        if self.type is None:
            return None
        if self.string_chars:
            return f"{self.type}({self.string_chars})"
        return f"{self.type}[{self.count}]" if self.count > 1 else self.type

    def missing(self) -> list[str]:
        """The map fields this tag still needs, in the loader's order."""
        out = [key for key in ("address", "type", "access", "owner", "unit", "scan_group")
               if getattr(self, key) is None]
        if self.access == "write":
            if self.type not in (None, "BOOL", "STRING") and self.limits is None:
                out.append("limits")
            if self.safe_value is None:
                out.append("safe_value")
        return out


@dataclass
class ImportReport:
    """What an import did not carry into the map, so that nothing goes silently."""

    source: str
    vendor_rows: int = 0
    unmapped_columns: dict = field(default_factory=dict)  # column -> Counter of values that say something
    unsupported_types: dict = field(default_factory=dict)  # vendor type -> [vendor names]
    skipped: list = field(default_factory=list)  # {"origin", "name", "reason"}
    renamed: list = field(default_factory=list)  # {"origin", "vendor_name", "name"}
    notes: list = field(default_factory=list)

    def unmapped(self, column: str, value: str) -> None:
        self.unmapped_columns.setdefault(column, Counter())[value] += 1

    def unsupported(self, vendor_type: str, name: str, origin: str, reason: str) -> None:
        self.unsupported_types.setdefault(vendor_type, []).append(name)
        self.skipped.append({"origin": origin, "name": name, "reason": reason})

    def skip(self, origin: str, name: str, reason: str) -> None:
        self.skipped.append({"origin": origin, "name": name, "reason": reason})

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "vendor_rows": self.vendor_rows,
            "unmapped_columns": {col: {"rows": sum(c.values()), "values": dict(c.most_common())}
                                 for col, c in self.unmapped_columns.items()},
            "unsupported_types": {t: {"count": len(names), "names": names}
                                  for t, names in self.unsupported_types.items()},
            "skipped": self.skipped,
            "renamed": self.renamed,
            "notes": self.notes,
        }


@dataclass
class DraftMap:
    name: str
    protocol: Protocol | None
    tags: list[DraftTag]
    report: ImportReport
    scan_groups: dict = field(default_factory=dict)  # name -> period_ms
    host: str | None = None
    port: int | None = None
    roles: dict = field(default_factory=dict)  # role -> tag name, when a tag's vendor name is the role's default
    fixture: dict | None = None  # the map's `fixture:` (edge/tagmap/roles.py); no vendor file has one
    unplayed_roles: list = field(default_factory=list)  # required roles no tag plays (roles_guess.unplayed_roles)


@dataclass(frozen=True)
class Missing:
    """A place in the written map that needs the user: its line, tag (None: the connection) and fields."""

    line: int
    tag: str | None
    fields: tuple[str, ...]

    def text(self, path: Path | str) -> str:
        where = f"{path}:{self.line}"
        what = "missing " + ", ".join(self.fields)
        return f"{where}: tag {self.tag!r}: {what}" if self.tag else f"{where}: {what}"

    def as_dict(self) -> dict:
        return {"line": self.line, "tag": self.tag, "fields": list(self.fields)}


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted` made an identifier and unique among `taken` (then added to it)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", wanted) or "tag"
    if not NAME_RE.match(name):
        name = f"t_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def write_draft(draft: DraftMap, header: str = "") -> tuple[str, list[Missing]]:
    """The YAML text of `draft` and what it lacks, each with the line `load_tag_map` reports it on."""
    lines: list[str] = [f"# {line}" for line in header.splitlines()]
    missing: list[Missing] = []
    endpoint: dict = {}
    if draft.host:  # without a host, no port either: `endpoint: {}`, the line the loader names
        endpoint["host"] = draft.host
        if draft.port:
            endpoint["port"] = draft.port
    connection: dict = {"name": draft.name}
    if draft.protocol is not None:
        connection["protocol"] = draft.protocol.value
    connection["endpoint"] = endpoint
    connection_line = len(lines) + 1
    lines += _dump({"connection": connection})
    if draft.protocol is None:  # the loader names the connection's first line
        missing.append(Missing(connection_line + 1, None, ("connection.protocol",)))
    if not draft.host:
        endpoint_line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("endpoint:"))
        missing.append(Missing(endpoint_line, None, ("connection.endpoint.host",)))
    if draft.scan_groups:
        lines += _dump({"scan_groups": dict(draft.scan_groups)})
    else:
        missing.append(Missing(1, None, ("scan_groups",)))
    if draft.unplayed_roles:  # tags check names a role no tag plays on line 1
        missing.append(Missing(1, None, tuple(f"role {name}" for name in draft.unplayed_roles)))
    if draft.roles:
        lines += _dump({"roles": dict(draft.roles)})
    if draft.fixture:
        lines += _dump({"fixture": draft.fixture})
    lines.append("tags:")
    for tag in draft.tags:
        line = len(lines) + 1
        lines += _dump([_entry(tag)])
        if tag.missing():
            missing.append(Missing(line, tag.name, tuple(tag.missing())))
    return "\n".join(lines) + "\n", missing


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's emitter when PyYAML has it: 10x faster


def _dump(document) -> list[str]:
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1000).splitlines()


def _entry(tag: DraftTag) -> dict:
    entry: dict = {"name": tag.name}
    if tag.description:
        entry["description"] = tag.description
    for key in ("address", "type_text", "access", "owner", "unit"):
        value = getattr(tag, key)
        if value is not None:
            entry[key.removesuffix("_text")] = value
    if tag.scaling is not None and tag.scaling != (1.0, 0.0):
        entry["scaling"] = {"gain": tag.scaling[0], "offset": tag.scaling[1]}
    if tag.limits is not None:
        entry["limits"] = {"min": tag.limits[0], "max": tag.limits[1]}
    if tag.byte_order is not None:
        entry["byte_order"] = tag.byte_order
    if tag.safe_value is not None:
        entry["safe_value"] = tag.safe_value
    if tag.scan_group is not None:
        entry["scan_group"] = tag.scan_group
    return entry


def read_vendor_text(path: Path) -> str:
    """The text of a vendor file (`read_regular_bytes`: never blocks on a FIFO, never reads a
    device); OSError (not a regular file), ValueError (too big, empty) or UnicodeDecodeError."""
    try:
        data = read_regular_bytes(path, MAX_VENDOR_BYTES)
    except NotARegularFile as exc:
        if exc.kind == "a directory":
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path)) from None
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device?)", str(path)) from None
    except FileTooLarge as exc:
        raise ValueError(f"{path}: {exc.size_text} bytes; an import reads at most {MAX_VENDOR_BYTES}") from None
    if not data.strip():
        raise ValueError(f"{path}:1: empty file")
    return data.decode("utf-8-sig")
