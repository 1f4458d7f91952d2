"""The bench PLC over EtherNet/IP: a Logix-like tag server (cm-ethernetip) serving a tag map.

Why cm-ethernetip: it serves an unmodified pycomm3 `LogixDriver`, including the tag-list upload
the controller relies on (cpppo serves Logix reads but not the tag upload). Its symbol table and
template object are not enough for a real map (controller scope only, no members; its Template
Read takes offset and size the other way round from pycomm3), so the bench keeps its own
(`_Symbols`): every map tag's path is parsed with edge.tagmap.addresses.parse_logix_path and the
controller is built as one would hold it: controller- and program-scoped symbols
(`Program:Discharge.Relief`), structures from the members the map addresses (`Cell[3].Temp`:
a UDT array of 4 with a member Temp; `PackTags.Command.CntrlCmd`: nested UDTs; `Local:3:I.Ch0Data`
the same way), arrays as long as the map's highest element, a BOOL at a bit of an integer
(`Status.5`) held in a DINT. pycomm3 uploads the controller's tag list with one `Program:NAME`
entry a program, then each program's, and each UDT's template (Get_Attribute_List and
Template_Read on class 0x6C, served here); every tag service (Read/Write Tag, fragmented,
Read-Modify-Write for bits) is answered on the bytes the path names, by name or symbol instance,
elements and members. Values are the controller's own codec's (edge/bus/codec.py
`encode_cip`/`decode_cip`: BOOL, INT, UINT, DINT, UDINT, LINT, ULINT, REAL, LREAL, and the Logix
STRING, a structure at its predefined template 0x0FCE (LEN DINT, DATA SINT[82]) whose reads and
writes carry 0x02A0 and its handle, as a tag or a UDT's member; one STRING a tag). A path the map cannot hold (a tag that is both a
structure and a value, or two types) is refused naming the file and line. Tests:
tests/tools/hil/test_server_logix_scopes.py, test_served_types.py.

Packet size, as a Logix controller does it: replies fit the connection size (`connection_size`,
4000 bytes by default as after a Large Forward Open; at most 511 the Large Forward Open is
refused and pycomm3 falls back to a 500-byte connection). A Read Tag whose data does not fit
answers 0x06 "Insufficient Packet Space" with what fits; the client then reads in fragments
(Read/Write Tag Fragmented, 0x52/0x53, with a byte offset, on element boundaries, from the
element the path names), and packs many small tags into a Multiple Service Packet (0x0A)
within the connection size. cm-ethernetip 0.1.0 caps every reply at 480 bytes whatever size
was granted (so pycomm3, trusting the granted 4000, got 0x06 for a REAL[128]), reads fragments
from element 0 whatever the path says, and writes fragments without a bounds check: the tag
services below replace its own. A Multiple Service Packet whose reply would not fit the
connection is answered 0x11 "Reply data too large", as a controller does, where cm-ethernetip
sends it whole. The server counts every service it serves by code (`services`: 0x0A, 0x4C,
0x52, ...) and keeps the largest request and reply of a connected tag service or packet
(`packets`: PacketStats), so a test can show the client fragmented and
packed within the connection. Tests: tests/tools/hil/test_server_logix_packets.py,
tests/edge/bus/test_contract.py, tests/edge/bus/test_request_plan.py.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter

from ethernetip.cip.identity_info import IdentityInfo
from ethernetip.cip.service import CipServiceDefinition, CipServiceResponse
from ethernetip.cip.status import CipStatus
from ethernetip.logix import tag_services
from ethernetip.logix.logix_dispatcher import LogixDispatcher
from ethernetip.logix.multi_service import SERVICE_CODE as _MULTIPLE_SERVICE
from ethernetip.logix.multi_service import handle_multi_service
from ethernetip.logix.tag_database import TagDatabase, TemplateDefinition, TemplateMember, TemplateMemberInfo
from ethernetip.protocol.eip_adapter import EipAdapter

from edge.bus.base import plant_raw, raw_to_eu
from edge.bus.codec import CIP_TYPE_CODE, cip_bit, cip_size, cip_with_bit, decode_cip, encode_cip
from edge.tagmap.addresses import parse_logix_path
from edge.tagmap.model import LOGIX_STRING_CHARS
from edge.tagmap import DataType, Protocol, TagMap
from edge.tagmap.model import Value
from tools.hil.server_common import BenchPlcServer

logging.getLogger("ethernetip").setLevel(logging.CRITICAL)

_BROWSE_SERVICE = 0x55
_LARGE_FORWARD_OPEN = 0x5B
_CONNECTION_MANAGER = 0x06
# A connected reply's bytes around the tag data: sequence count (2), reply service, reserved,
# status and its size (4), the data type (2); and a little room for a multiple-service entry.
_REPLY_OVERHEAD = 12
_PARTIAL = 0x06  # "Insufficient Packet Space" to pycomm3: more data follows (a fragment)
_BAD_SIZE = (0xFF, 0x2105)  # beyond the end of the tag
_BAD_TYPE = (0xFF, 0x2107)
_REPLY_TOO_LARGE = 0x11
_MESSAGE_ROUTER = 0x02
_REPLY_HEADER = 6  # a connected reply's bytes before its data: sequence count (2), service, reserved, status, size
_REQUEST_HEADER = 4  # a connected request's bytes before its path: sequence count (2), service, path size


class PacketStats:
    """What the bench's tag services saw: services by code, the largest request (its header and
    data, not its path) and reply (header and data) of a tag service or a Multiple Service Packet."""

    def __init__(self) -> None:
        self.services: Counter = Counter()
        self.largest_request_bytes = 0
        self.largest_reply_bytes = 0
        self.too_large = 0  # packets answered 0x11

    def saw(self, request_bytes: int, reply_bytes: int) -> None:
        self.largest_request_bytes = max(self.largest_request_bytes, request_bytes)
        self.largest_reply_bytes = max(self.largest_reply_bytes, reply_bytes)


class _TagServices:
    """Read/Write Tag (0x4C/0x4D) and their fragmented forms (0x52/0x53) within a reply size."""

    def __init__(self, reply_bytes: int, stats: PacketStats):
        self.reply_bytes = reply_bytes  # data bytes (after the type word) one reply may carry
        self.stats = stats

    def dispatch(self, tag, service: int, data: bytes, element: int) -> CipServiceResponse:
        response = self._dispatch(tag, service, data, element)
        self.stats.services[service] += 1
        self.stats.saw(len(data) + _REQUEST_HEADER, len(response.data) + _REPLY_HEADER)
        return response

    def _dispatch(self, tag, service: int, data: bytes, element: int) -> CipServiceResponse:
        if service == 0x4C:
            return self.read(tag, service, data, element, fragmented=False)
        if service == 0x52:
            return self.read(tag, service, data, element, fragmented=True)
        if service == 0x4D:
            return self.write(tag, service, data, element, fragmented=False)
        if service == 0x53:
            return self.write(tag, service, data, element, fragmented=True)
        return tag_services.handle_read_modify_write(tag, service, data) if service == 0x4E else \
            CipServiceResponse.error(service, CipStatus.error(0x08))  # service not supported

    def read(self, tag, service: int, data: bytes, element: int, fragmented: bool) -> CipServiceResponse:
        if len(data) < (6 if fragmented else 2):
            return CipServiceResponse.error(service, CipStatus.error(0x13))
        count = struct.unpack_from("<H", data, 0)[0]
        offset = struct.unpack_from("<I", data, 2)[0] if fragmented else 0
        start, total = element * tag.element_size, count * tag.element_size
        if start + total > tag.data_size or offset > total or (fragmented and offset == total and total):
            return CipServiceResponse.error(service, CipStatus.error(*_BAD_SIZE))
        fits = self.reply_bytes - self.reply_bytes % tag.element_size  # whole elements only
        chunk = min(total - offset, fits)
        reply = _type_bytes(tag) + tag.get_data(start + offset, chunk)
        if offset + chunk < total:  # the rest follows in the next fragment
            return CipServiceResponse(service_code=service | 0x80, status=CipStatus.error(_PARTIAL), data=reply)
        return CipServiceResponse.success(service, reply)

    def write(self, tag, service: int, data: bytes, element: int, fragmented: bool) -> CipServiceResponse:
        type_bytes = _type_bytes(tag)  # a structure's (the STRING's) is 0x02A0 and its handle
        head = (8 if fragmented else 4) + len(type_bytes) - 2
        if len(data) < head:
            return CipServiceResponse.error(service, CipStatus.error(0x13))
        tag_type, count = data[:len(type_bytes)], struct.unpack_from("<H", data, len(type_bytes))[0]
        offset = struct.unpack_from("<I", data, len(type_bytes) + 2)[0] if fragmented else 0
        if tag_type != type_bytes:
            return CipServiceResponse.error(service, CipStatus.error(*_BAD_TYPE))
        payload = data[head:]
        start, total = element * tag.element_size, count * tag.element_size
        if not fragmented:  # cm-ethernetip hands a single request's data with bytes after it
            if len(payload) < total:
                return CipServiceResponse.error(service, CipStatus.error(0x13))
            payload = payload[:total]
        # pycomm3 cuts write fragments by bytes, not elements; a fragment may end inside a value
        if start + total > tag.data_size or offset + len(payload) > total:
            return CipServiceResponse.error(service, CipStatus.error(*_BAD_SIZE))
        tag.set_data(payload, start + offset)
        return CipServiceResponse.success(service)


class _BenchDispatcher(LogixDispatcher):
    """cm-ethernetip's dispatcher, with the bench's symbol table (`_Symbols`) answering every tag
    path (controller or program scope, by name or symbol instance, elements and members) and the
    tag-list browse; the rest (identity, connections, templates) is cm-ethernetip's."""

    services: _TagServices
    symbols: "_Symbols"

    def dispatch(self, service_code, path, data):
        if path.symbolic_name is not None or path.class_id == _SYMBOL_CLASS:
            return self.symbols.dispatch(self.services, service_code, path, data)
        if path.class_id == _TEMPLATE_CLASS and path.instance_id:
            return self.symbols.template_service(service_code, path.instance_id, data, self.services.reply_bytes)
        return super().dispatch(service_code, path, data)


# -- the symbol table: controller and program scope, UDT members -----------------------------
_SYMBOL_CLASS = 0x6B
_TEMPLATE_CLASS = 0x6C
_GET_ATTRIBUTE_LIST = 0x03
_TEMPLATE_READ = 0x4C
_PROGRAM_SYMBOL_TYPE = 0x1068  # a program's entry in the controller's tag list (system bit set)
_NO_TAG = 0x05  # "path destination unknown": no such tag, member or element
_SERVED_TYPES = tuple(CIP_TYPE_CODE)
"""The types the bench's Logix server holds (edge/bus/codec.py's wire forms), the STRING included."""
_STRING_ID = CIP_TYPE_CODE[DataType.STRING]  # the STRING's template instance and structure handle, 0x0FCE
_STRUCT_REPLY = 0x02A0  # a structure's type in a reply or a write: 0x02A0, then its handle


def _string_template() -> TemplateDefinition:
    """The Logix STRING as a controller defines it: LEN DINT, DATA SINT[82], 88 bytes."""
    return TemplateDefinition(
        instance_id=_STRING_ID, name="ASCIISTRING82;n", struct_handle=_STRING_ID, member_count=2,
        structure_size=cip_size(DataType.STRING),
        members=[TemplateMemberInfo("LEN", CIP_TYPE_CODE[DataType.DINT], 1, 0, 4, 0),
                 TemplateMemberInfo("DATA", 0xC2, LOGIX_STRING_CHARS, 4, 1, LOGIX_STRING_CHARS)])


def _type_bytes(tag) -> bytes:
    """The type word(s) of a read reply or a write request for `tag` (a view, or cm's Tag)."""
    return getattr(tag, "type_bytes", None) or struct.pack("<H", tag.tag_type)


class _Node:
    """A symbol or a member: atomic (`data_type`) or a structure (`members`), `count` elements."""

    def __init__(self, name: str):
        self.name = name
        self.data_type: DataType | None = None  # an atomic node's type
        self.members: dict[str, _Node] | None = None
        self.count = 1
        self.indexed = False  # addressed with [i]: an array even of one element
        self.template = None  # cm-ethernetip TemplateDefinition of a structure
        self.where = ""  # file:line of the map tag that made it
        self.offset = 0  # a member's byte offset in its structure

    @property
    def element_size(self) -> int:
        return self.template.structure_size if self.members is not None else cip_size(self.data_type)

    @property
    def type_code(self) -> int:
        return CIP_TYPE_CODE[self.data_type] if self.members is None else self.template.struct_handle

    @property
    def symbol_type(self) -> int:
        dims = 1 if (self.count > 1 or self.indexed) else 0
        if self.data_type is DataType.STRING:
            return 0x8000 | _STRING_ID | dims << 13
        if self.members is not None:
            return 0x8000 | (self.template.instance_id & 0x0FFF) | dims << 13
        return (CIP_TYPE_CODE[self.data_type] & 0xFF) | dims << 13


class _Symbol:
    """A top-level tag: its node, its instance id, its bytes."""

    def __init__(self, instance_id: int, scope: str | None, node: _Node):
        self.instance_id, self.scope, self.node = instance_id, scope, node
        self.data = bytearray(node.element_size * node.count)


class _View:
    """The bytes a tag path names inside a symbol: what the tag services read and write."""

    def __init__(self, symbol: _Symbol, offset: int, node: _Node, elements: int):
        self.symbol, self.offset = symbol, offset
        self.tag_type, self.element_size = node.type_code, node.element_size
        self.type_bytes = (struct.pack("<HH", _STRUCT_REPLY, _STRING_ID) if node.data_type is DataType.STRING
                           else struct.pack("<H", node.type_code))
        self.data_size = elements * node.element_size

    def get_data(self, offset: int = 0, length: int | None = None) -> bytes:
        length = self.data_size - offset if length is None else length
        start = self.offset + offset
        return bytes(self.symbol.data[start:start + length])

    def set_data(self, source, byte_offset: int = 0) -> None:
        n = min(len(source), self.data_size - byte_offset)
        start = self.offset + byte_offset
        self.symbol.data[start:start + n] = bytes(source[:n])


def _segments(raw: bytes) -> list[tuple[str, object]]:
    """A request's EPATH as ('sym', name) / ('class' | 'instance' | 'element', value) segments."""
    out, i = [], 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0x91:
            n = raw[i + 1]
            out.append(("sym", bytes(raw[i + 2:i + 2 + n]).decode("ascii", "replace")))
            i += 2 + n + (n % 2)
            continue
        if kind & 0xE0 != 0x20:
            break
        logical, fmt = kind & 0x1C, kind & 0x03
        if fmt == 0:
            value, i = raw[i + 1], i + 2
        elif fmt == 1:
            value, i = struct.unpack_from("<H", raw, i + 2)[0], i + 4
        elif fmt == 2:
            value, i = struct.unpack_from("<I", raw, i + 2)[0], i + 6
        else:
            break
        out.append(({0x00: "class", 0x04: "instance", 0x08: "element"}.get(logical, "other"), value))
    return out


class _Symbols:
    """The served map as a Logix controller holds it: controller- and program-scoped symbols,
    structures (a UDT per structured tag, from the members the map addresses), their bytes."""

    def __init__(self, tag_map: TagMap, templates: TagDatabase):
        self.source = tag_map.source
        self.templates = templates
        # the predefined STRING at its own instance (0x0FCE), where a structure's member finds its size
        templates._templates[_STRING_ID] = _string_template()
        self.roots: dict[tuple[str | None, str], _Node] = {}  # (program or None, lower name) -> node
        self.program_names: dict[str, str] = {}  # lower -> as the map spells it
        self.leaves: dict[str, tuple] = {}  # map tag name -> (root key, segments, bit, node)
        for tag in tag_map.tags:
            self._add_tag(tag)
        self.by_key: dict[tuple[str | None, str], _Symbol] = {}
        self.by_id: dict[int, _Symbol] = {}
        self._next_id = 0
        for key, node in self.roots.items():
            self._define(node)
            self._new_symbol(key, node)

    def _new_symbol(self, key, node: _Node) -> _Symbol:
        self._next_id += 1
        symbol = self.by_key[key] = self.by_id[self._next_id] = _Symbol(self._next_id, key[0], node)
        return symbol

    def _add_tag(self, tag) -> None:
        where = f"{self.source}:{tag.source_line}: tag {tag.name!r}"
        if tag.data_type not in _SERVED_TYPES:
            raise ValueError(f"{where}: the bench's Logix server does not serve {tag.data_type.value} yet")
        try:
            path = parse_logix_path(tag.address)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        program, segments, bit = path.program, list(path.segments), path.bit
        if tag.data_type is DataType.STRING and tag.count != 1:
            raise ValueError(f"{where}: the bench serves one STRING a tag")
        if bit is not None and (tag.data_type is not DataType.BOOL or tag.count != 1):
            raise ValueError(f"{where}: a bit ({tag.address!r}) is one BOOL")
        leaf_type = DataType.DINT if bit is not None else tag.data_type  # the bench holds a bit in a DINT
        key = (program.lower() if program else None, segments[0][0].lower())
        if program:
            self.program_names.setdefault(program.lower(), program)
        node = self.roots.setdefault(key, _Node(segments[0][0]))
        for depth, (name, index) in enumerate(segments):
            if depth:
                if node.data_type is not None:
                    raise ValueError(f"{where}: {node.name} is {node.data_type.value} ({node.where}), not a structure")
                node.members = node.members if node.members is not None else {}
                node = node.members.setdefault(name.lower(), _Node(name))
            last = depth == len(segments) - 1
            node.count = max(node.count, (index or 0) + (tag.count if last and bit is None else 1))
            node.indexed = node.indexed or index is not None
            if last:
                if node.members is not None or (node.data_type not in (None, leaf_type)):
                    raise ValueError(f"{where}: {tag.address!r} is {leaf_type.value}; the same PLC tag is "
                                     f"{node.data_type.value if node.data_type else 'a structure'} at {node.where}")
                node.data_type = leaf_type
            node.where = node.where or f"line {tag.source_line}"
        self.leaves[tag.name] = (key, segments, bit, tag)

    def _define(self, node: _Node) -> None:
        """The UDT of a structured node (its members' first), in the template object."""
        if node.members is None:
            return
        members = []
        for member in node.members.values():
            self._define(member)
            if member.members is not None:
                code = 0x8000 | member.template.instance_id
                members.append(TemplateMember(member.name, code, member.count, template_id=member.template.instance_id))
            else:
                members.append(TemplateMember(member.name, 0x8000 | _STRING_ID, member.count, template_id=_STRING_ID)
                               if member.data_type is DataType.STRING else
                               TemplateMember(member.name, CIP_TYPE_CODE[member.data_type], member.count))
        # pycomm3 takes the template's name up to ';' (Logix's "NAME;n..." form)
        node.template = self.templates.add_template(f"BENCH_{node.name.upper().replace(':', '_')};n", *members)
        offsets = {m.name: m.byte_offset for m in node.template.members}
        for member in node.members.values():
            member.offset = offsets[member.name]

    def add_atomic(self, address: str, data_type: DataType, count: int) -> None:
        node = _Node(address)
        node.data_type, node.count = data_type, count
        self._new_symbol((None, address.lower()), node)

    # -- plant side ---------------------------------------------------------------------------
    def view_of(self, name: str) -> tuple[_View, int | None]:
        key, segments, bit, _tag = self.leaves[name]
        path = []
        for member, index in segments[1:]:
            path += [("sym", member)] + ([("element", index)] if index is not None else [])
        return self._resolve(self.by_key[key], path, first_index=segments[0][1]), bit

    # -- protocol side ------------------------------------------------------------------------
    def dispatch(self, services: _TagServices, service: int, path, data: bytes) -> CipServiceResponse:
        segments = _segments(path.raw_path or b"")
        program = None
        if segments and segments[0][0] == "sym" and str(segments[0][1]).startswith("Program:"):
            program = str(segments.pop(0)[1])[len("Program:"):].lower()
        if service == _BROWSE_SERVICE:
            start = next((v for k, v in segments if k == "instance"), 0)
            return self.browse(service, program, int(start), data, services.reply_bytes)
        if not segments:
            return CipServiceResponse.error(service, CipStatus.error(_NO_TAG))
        kind, value = segments.pop(0)
        if kind == "class" and value == _SYMBOL_CLASS and segments and segments[0][0] == "instance":
            symbol = self.by_id.get(segments.pop(0)[1])
        elif kind == "sym":
            symbol = self.by_key.get((program, str(value).lower()))
        else:
            symbol = None
        first = None
        if segments and segments[0][0] == "element":
            first = segments.pop(0)[1]
        view = self._resolve(symbol, segments, first) if symbol is not None else None
        if view is None:
            return CipServiceResponse.error(service, CipStatus.error(_NO_TAG))
        if service == 0x4E:
            return tag_services.handle_read_modify_write(view, service, data)
        return services.dispatch(view, service, data, 0)

    def _resolve(self, symbol: _Symbol, segments: list, first_index: int | None) -> _View | None:
        node, offset = symbol.node, 0
        index = first_index
        for kind, value in [*segments, ("end", None)]:
            if kind == "element":
                index = value
                continue
            if index is not None and not (node.count > 1 or node.indexed) and index != 0:
                return None
            if index is not None and index >= node.count:
                return None
            if kind == "end":
                if node.members is not None:
                    return None  # a whole structure: not served
                start = index or 0
                return _View(symbol, offset + start * node.element_size, node, node.count - start)
            if kind != "sym" or node.members is None:
                return None
            member = node.members.get(str(value).lower())
            if member is None:
                return None
            offset += (index or 0) * node.element_size + member.offset
            node, index = member, None
        return None

    def browse(self, service: int, program: str | None, start: int, data: bytes, reply_bytes: int) -> CipServiceResponse:
        """Get_Instance_Attribute_List: the scope's symbols from instance `start` on (and, in the
        controller scope, one 'Program:NAME' entry a program), as pycomm3 parses them."""
        if len(data) < 2:
            return CipServiceResponse.error(service, CipStatus.error(0x13))
        count = struct.unpack_from("<H", data, 0)[0]
        attributes = struct.unpack_from(f"<{count}H", data, 2) if len(data) >= 2 + 2 * count else None
        if attributes is None:
            return CipServiceResponse.error(service, CipStatus.error(0x13))
        entries = [(s.instance_id, s.node.name, s.node.symbol_type, s.node.count if s.node.count > 1 or s.node.indexed else 0)
                   for s in self.by_id.values() if s.scope == program]
        if program is None:
            programs = sorted({s.scope for s in self.by_id.values() if s.scope is not None})
            names = {s.scope: s for s in self.by_id.values() if s.scope is not None}
            entries += [(100_000 + i, f"Program:{self._program_name(names[p])}", _PROGRAM_SYMBOL_TYPE, 0)
                        for i, p in enumerate(programs)]
        entries = sorted(e for e in entries if e[0] >= start)
        budget, out, sent = min(reply_bytes, 480), bytearray(), 0
        for instance_id, name, symbol_type, dims in entries:
            entry = bytearray(struct.pack("<I", instance_id))
            for attribute in attributes:
                if attribute == 1:
                    entry += struct.pack("<H", len(name)) + name.encode("ascii")
                elif attribute == 2:
                    entry += struct.pack("<H", symbol_type)
                elif attribute in (3, 5):
                    entry += struct.pack("<I", 0)
                elif attribute == 6:
                    entry += struct.pack("<I", _BASE_TAG)
                elif attribute == 8:
                    entry += struct.pack("<III", dims, 0, 0)
                elif attribute == 10:
                    entry += b"\x03"  # external access read/write
            if sent and len(out) + len(entry) > budget:
                return CipServiceResponse(service_code=service | 0x80, status=CipStatus.error(_PARTIAL), data=bytes(out))
            out += entry
            sent += 1
        return CipServiceResponse.success(service, bytes(out))

    def template_service(self, service: int, instance_id: int, data: bytes, reply_bytes: int) -> CipServiceResponse:
        """The Template object (0x6C) as pycomm3 reads a UDT: Get_Attribute_List of its handle,
        member count, definition size (32-bit words, 21 bytes above the definition pycomm3 asks
        for) and structure size; Template_Read (UDINT offset, UINT bytes) of the definition: per
        member its info (array size; a BOOL's bit), type and offset, then 'NAME;n' and the
        members' names. cm-ethernetip reads the request's offset and size the other way round."""
        template = self.templates.find_template(instance_id)
        if template is None:
            return CipServiceResponse.error(service, CipStatus.error(_NO_TAG))
        definition = bytearray()
        for m in template.members:
            definition += struct.pack("<HHI", m.info & 0xFFFF, m.data_type, m.byte_offset)
        definition += template.name.encode("ascii") + b"\x00"
        for m in template.members:
            definition += m.name.encode("ascii") + b"\x00"
        if service == _GET_ATTRIBUTE_LIST:
            values = {1: struct.pack("<H", template.struct_handle), 2: struct.pack("<H", template.member_count),
                      4: struct.pack("<I", (len(definition) + 21 + 3) // 4), 5: struct.pack("<I", template.structure_size)}
            count = struct.unpack_from("<H", data, 0)[0] if len(data) >= 2 else 0
            asked = struct.unpack_from(f"<{count}H", data, 2) if len(data) >= 2 + 2 * count else ()
            reply = bytearray(struct.pack("<H", len(asked)))
            for attribute in asked:
                value = values.get(attribute)
                reply += struct.pack("<HH", attribute, 0 if value else 0x14) + (value or b"")
            return CipServiceResponse.success(service, bytes(reply))
        if service == _TEMPLATE_READ:
            if len(data) < 6:
                return CipServiceResponse.error(service, CipStatus.error(0x13))
            offset, size = struct.unpack_from("<IH", data, 0)
            if offset >= len(definition):
                return CipServiceResponse.error(service, CipStatus.error(*_BAD_SIZE))
            chunk = definition[offset:offset + min(size, reply_bytes - reply_bytes % 4)]
            if offset + len(chunk) < len(definition) and len(chunk) < size:
                return CipServiceResponse(service_code=service | 0x80, status=CipStatus.error(_PARTIAL), data=bytes(chunk))
            return CipServiceResponse.success(service, bytes(chunk))
        return CipServiceResponse.error(service, CipStatus.error(0x08))

    def _program_name(self, symbol: _Symbol) -> str:
        return self.program_names[symbol.scope]


_BASE_TAG = 1 << 26  # software control: a base tag, not an alias (pycomm3's BASE_TAG_BIT)


class LogixPlcServer(BenchPlcServer):
    protocol_name = "logix"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0, connection_size: int = 4000):
        if tag_map.protocol is not Protocol.LOGIX:
            raise ValueError(f"{tag_map.source}: a Logix bench server needs protocol: logix")
        self.database = TagDatabase()  # the structures' templates (the tags are `symbols`')
        self.symbols = _Symbols(tag_map, self.database)
        self._views = {t.name: self.symbols.view_of(t.name) for t in tag_map.tags}
        self._identity = IdentityInfo(product_name="discharge-edge HIL bench")
        self.connection_size = connection_size
        self._adapter: EipAdapter | None = None
        self.packets = PacketStats()
        super().__init__(tag_map, host, port)

    def add_plc_tag(self, address: str, data_type: DataType, count: int = 1) -> None:
        """Add a controller-scoped tag to the PLC's program (a program download), to test tag-list refresh."""
        async def add() -> None:
            self.symbols.add_atomic(address, data_type, count)

        self._loop.call(add())

    def _dispatcher(self) -> LogixDispatcher:
        dispatcher = _BenchDispatcher(self.database, self._identity)
        dispatcher.symbols = self.symbols
        packets, connection_bytes = self.packets, self.connection_size
        dispatcher.services = _TagServices(connection_bytes - _REPLY_OVERHEAD, packets)

        def multiple_service(_instance, request):  # the whole reply must fit the connection
            response = handle_multi_service(dispatcher, request)
            packets.services[_MULTIPLE_SERVICE] += 1
            reply_bytes = len(response.data) + _REPLY_HEADER
            packets.saw(len(request.data) + _REQUEST_HEADER, reply_bytes)
            if reply_bytes > connection_bytes:
                packets.too_large += 1
                return CipServiceResponse.error(_MULTIPLE_SERVICE, CipStatus.error(_REPLY_TOO_LARGE))
            return response

        dispatcher.get_class(_MESSAGE_ROUTER).add_instance_service(
            CipServiceDefinition(_MULTIPLE_SERVICE, "Multiple_Service_Packet", multiple_service))
        if self.connection_size < 512:  # no Large Forward Open: the client falls back to 500 bytes
            dispatcher.get_class(_CONNECTION_MANAGER)._instance_services.pop(_LARGE_FORWARD_OPEN, None)
        return dispatcher

    async def _start_inner(self, port: int = 0) -> None:
        self._adapter = EipAdapter(self._dispatcher(), self._identity)
        await self._adapter.listen(self.host, port)
        self._inner_port = self._adapter._server.sockets[0].getsockname()[1]

    async def _stop_inner(self) -> None:
        if self._adapter is not None:
            await self._adapter.close()
            self._adapter = None

    def get(self, name: str) -> Value:
        tag = self.served_map.tag(name)
        view, bit = self._views[name]
        if bit is not None:
            raw = cip_bit(decode_cip(DataType.DINT, view.get_data(0, 4))[0], bit)
        else:
            raw = decode_cip(tag.data_type, view.get_data(0, tag.count * cip_size(tag.data_type)))
            raw = raw if tag.is_array else raw[0]
        return raw_to_eu(tag, raw)[0]

    def set(self, name: str, value: Value) -> None:
        tag = self.served_map.tag(name)
        view, bit = self._views[name]
        raw = plant_raw(tag, value)
        if bit is not None:  # the PLC's own update of one bit: the rest of the DINT kept
            def set_bit():
                word = decode_cip(DataType.DINT, view.get_data(0, 4))[0]
                view.set_data(encode_cip(DataType.DINT, [cip_with_bit(DataType.DINT, word, bit, bool(raw))]))

            self._loop.loop.call_soon_threadsafe(set_bit)
            return
        data = encode_cip(tag.data_type, list(raw) if tag.is_array else [raw])
        self._loop.loop.call_soon_threadsafe(view.set_data, data)
