"""Studio 5000 (RSLogix 5000) tag exports to a draft map: the tag CSV and the L5X's tag section.

The CSV is Logix Designer's Tools > Export > Tags: `remark,...` lines, a format line (`0.3`),
then `TYPE,SCOPE,NAME,DESCRIPTION,DATATYPE,SPECIFIER,ATTRIBUTES` and a row per TAG, ALIAS (its
target in SPECIFIER) or COMMENT (a description of a member or bit, SPECIFIER the operand; used as
that map tag's description). SCOPE is empty for a controller tag, else the program. A DATATYPE
like `REAL[16]` or `DINT[4,5]` is an array; a UDT's members are not in a tag CSV, so a UDT tag is
reported (the L5X has them). Descriptions use Logix's `$` escapes ($Q, $$, $N, $L, $R, $T).

The L5X (an export of the controller) is read for Controller/DataTypes (UDT members, BIT members
on their host), Controller/Tags/Tag and Controller/Programs/Program/Tags/Tag (Name, TagType,
DataType, Dimensions, ExternalAccess, Constant, AliasFor, Description, and Comments: a member's or
bit's own comment, `Operand` after the tag's path, is that map tag's description, or is reported
when no map tag has that path). It is parsed by expat with
line numbers; a DOCTYPE or entity declaration is refused (no entity expansion). What becomes of
each tag: edge/tagmap/vendor/logix.py. Tests: tests/edge/tagmap/vendor/test_studio5000.py,
test_commissioning_vendor.py.
"""

from __future__ import annotations

import csv
import io
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from edge.tagmap.model import Protocol
from edge.tagmap.vendor.draft import DraftMap, ImportReport, read_vendor_text
from edge.tagmap.vendor.logix import LogixTag, LogixTags, LogixType, Member, map_name
from edge.tagmap.vendor.roles_guess import apply_roles

HEADER = ("TYPE", "SCOPE", "NAME", "DESCRIPTION", "DATATYPE", "SPECIFIER", "ATTRIBUTES")
DATATYPE_RE = re.compile(r"^\s*([A-Za-z_][\w:]*)\s*(?:\[\s*([\d\s,]+)\])?\s*$")
ESCAPES = {"$Q": '"', "$$": "$", "$N": "\n", "$L": "\n", "$R": "\r", "$T": "\t", "$'": "'", "$P": "\f"}


def read_studio5000(path: Path) -> DraftMap:
    """A Studio 5000 export, CSV or L5X (by its first non-blank character), as a draft map."""
    text = read_vendor_text(path)
    if text.lstrip().startswith("<"):
        return read_l5x(path, text)
    return read_studio_csv(path, text)


def read_studio_csv(path: Path, text: str | None = None) -> DraftMap:
    text = read_vendor_text(path) if text is None else text
    report = ImportReport(str(path))
    rows = csv.reader(io.StringIO(text, newline=""))
    header = None
    for row in rows:
        cells = [c.strip() for c in row]
        if not cells or cells[0].lower() == "remark":
            continue
        if cells[0].upper() == "TYPE":
            header = [c.upper() for c in cells]
            break
        if len(cells) == 1 and re.fullmatch(r"\d+(\.\d+)?", cells[0]):
            report.notes.append(f"export format {cells[0]}")
            continue
        raise ValueError(f"{path}:{rows.line_num}: no 'TYPE,SCOPE,NAME,DESCRIPTION,DATATYPE,SPECIFIER,ATTRIBUTES' "
                         "header; a Studio 5000 tag CSV has it after its remark lines")
    if header is None or not {"TYPE", "NAME", "DATATYPE"} <= set(header):
        raise ValueError(f"{path}:1: no 'TYPE,SCOPE,NAME,DESCRIPTION,DATATYPE,SPECIFIER,ATTRIBUTES' header")
    collector = LogixTags(report)
    comments = []
    for row in rows:
        if not any(c.strip() for c in row):
            continue
        record = dict(zip(header, (c.strip() for c in row)))
        origin = f"{path}:{rows.line_num}"
        for cell in (c.strip() for c in row[len(header):]):
            if cell:  # a cell beyond the header's columns: no column to carry it
                report.unmapped("(a cell beyond the header's columns)", cell)
        report.vendor_rows += 1
        kind = record.get("TYPE", "").upper()
        if kind == "COMMENT":
            comments.append((origin, record))
            continue
        if kind not in ("TAG", "ALIAS"):
            report.unmapped("TYPE", kind)
            report.skip(origin, record.get("NAME", ""), f"row type {kind!r}: only TAG, ALIAS and COMMENT rows are tags")
            continue
        attributes = _attributes(record.get("ATTRIBUTES", ""))
        datatype, dims = _datatype(record.get("DATATYPE", ""))
        if kind == "TAG" and datatype is None:
            report.skip(origin, record.get("NAME", ""), f"DATATYPE {record.get('DATATYPE')!r} is not a type")
            continue
        collector.add(LogixTag(
            name=record.get("NAME", ""), scope=record.get("SCOPE", ""), datatype=datatype or "", dims=dims,
            origin=origin, description=_unescape(record.get("DESCRIPTION", "")),
            access=attributes.get("ExternalAccess", "Read/Write"),
            constant=attributes.get("Constant", "false").lower() == "true",
            alias_for=record.get("SPECIFIER", "") if kind == "ALIAS" else "",
            kind="Alias" if kind == "ALIAS" else "Base"))
        for key, value in attributes.items():
            if key not in ("ExternalAccess", "Constant", "RADIX"):
                report.unmapped(f"ATTRIBUTES {key}", value)
    tags = collector.finish()
    by_address = {t.address: t for t in tags}
    for origin, record in comments:
        scope = record.get("SCOPE", "")
        operand = record.get("SPECIFIER", "")
        address = f"Program:{scope}.{operand}" if scope else operand
        target = by_address.get(address)
        if target is not None and not target.description:
            target.description = _unescape(record.get("DESCRIPTION", ""))
        else:
            report.unmapped("COMMENT (an operand not imported as its own tag)", operand)
    return _draft(path, Path(path).stem, tags, report)


def _draft(path, name, tags, report) -> DraftMap:
    draft = DraftMap(map_name(name) or "logix", Protocol.LOGIX, tags, report)
    leaves = {t.name: re.split(r"[.\]]", t.address)[-1] for t in tags}
    apply_roles(draft, leaves)
    return draft


def _datatype(text: str) -> tuple[str | None, tuple[int, ...]]:
    match = DATATYPE_RE.match(text)
    if not match:
        return None, ()
    dims = tuple(int(n) for n in re.split(r"[\s,]+", match[2].strip())) if match[2] else ()
    return match[1], dims


def _attributes(text: str) -> dict[str, str]:
    inner = text.strip().removeprefix("(").removesuffix(")")
    out = {}
    for part in inner.split(","):
        if ":=" in part:
            key, value = part.split(":=", 1)
            out[key.strip()] = value.strip()
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\$[QNLRTP$']", lambda m: ESCAPES[m.group(0)], text, flags=re.IGNORECASE).strip()


@dataclass
class _Node:
    tag: str
    attrib: dict
    line: int
    children: list = field(default_factory=list)
    text: str = ""

    def find(self, name: str):
        return next((c for c in self.children if c.tag == name), None)

    def all(self, name: str):
        return [c for c in self.children if c.tag == name]


def _parse_xml(path: Path, text: str) -> _Node:
    parser = xml.parsers.expat.ParserCreate()
    root = _Node("", {}, 0)
    stack = [root]

    def start(tag, attrib):
        node = _Node(tag, attrib, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def chars(data):
        stack[-1].text += data

    def refuse(*_args):
        raise ValueError(f"{path}:{parser.CurrentLineNumber}: a DOCTYPE or entity declaration; an L5X has none "
                         "(entities are not expanded)")

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, chars
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not well-formed XML ({xml.parsers.expat.ErrorString(exc.code)})") from None
    return root


def _description(node: _Node) -> str:
    desc = node.find("Description")
    if desc is None:
        return ""
    localized = desc.find("LocalizedDescription")
    return " ".join(((localized or desc).text or "").split())


def read_l5x(path: Path, text: str | None = None) -> DraftMap:
    text = read_vendor_text(path) if text is None else text
    root = _parse_xml(path, text)
    content = root.find("RSLogix5000Content")
    controller = content.find("Controller") if content is not None else None
    if controller is None:
        raise ValueError(f"{path}:1: no RSLogix5000Content/Controller element; not an L5X export of a controller")
    report = ImportReport(str(path))
    types = {}
    for node in (controller.find("DataTypes") or _Node("", {}, 0)).all("DataType"):
        members = [Member(m.attrib.get("Name", ""), m.attrib.get("DataType", ""),
                          _dims(m.attrib.get("Dimension", "0")), m.attrib.get("Hidden", "false") == "true",
                          m.attrib.get("ExternalAccess", "Read/Write"), _description(m))
                   for m in (node.find("Members") or _Node("", {}, 0)).all("Member")]
        name = node.attrib.get("Name", "")
        types[name] = LogixType(name, members, string=node.attrib.get("Family") == "StringFamily")
    collector = LogixTags(report, types)
    scopes = [("", controller)] + [(p.attrib.get("Name", ""), p)
                                   for p in (controller.find("Programs") or _Node("", {}, 0)).all("Program")]
    comments = []  # (tag path + operand, text): a member's or bit's own comment
    for scope, owner in scopes:
        for node in (owner.find("Tags") or _Node("", {}, 0)).all("Tag"):
            report.vendor_rows += 1
            a = node.attrib
            origin = f"{path}:{node.line}"
            if a.get("Usage") == "InOut":
                report.skip(origin, a.get("Name", ""), "an InOut program parameter holds a reference, no data")
                continue
            tag = LogixTag(
                name=a.get("Name", ""), scope=scope, datatype=a.get("DataType", ""), dims=_dims(a.get("Dimensions", "")),
                origin=origin, description=_description(node), access=a.get("ExternalAccess", "Read/Write"),
                constant=a.get("Constant", "false") == "true", alias_for=a.get("AliasFor", ""),
                kind=a.get("TagType", "Base"))
            collector.add(tag)
            for comment in (node.find("Comments") or _Node("", {}, 0)).all("Comment"):
                comments.append((tag.path + comment.attrib.get("Operand", ""), " ".join((comment.text or "").split())))
    tags = collector.finish()
    by_address = {t.address.lower(): t for t in tags}
    for address, text in comments:  # as Logix Designer shows it: the instance's comment before the type's
        target = by_address.get(address.lower())
        if target is not None and text:
            target.description = text
        elif text:
            report.unmapped("Comment (an operand not imported as its own tag)", address)
    name = controller.attrib.get("Name") or Path(path).stem
    return _draft(path, name, tags, report)


def _dims(text: str) -> tuple[int, ...]:
    dims = tuple(int(n) for n in re.split(r"[\s,]+", text.strip()) if n)
    return () if dims in ((), (0,)) else dims
