"""The bench PLC over EtherNet/IP: a Logix-like tag server (cm-ethernetip) serving a tag map.

Why cm-ethernetip: it serves an unmodified pycomm3 `LogixDriver`, including the tag-list upload
the controller relies on, REAL arrays, DINT, INT, BOOL (cpppo serves Logix reads but not the
tag upload). It has no program scope, so bench maps use controller-scoped tag paths; a member
path (Tag.Member) is refused here with a clear error.

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
from dataclasses import replace

from ethernetip.cip.identity_info import IdentityInfo
from ethernetip.cip.service import CipServiceDefinition, CipServiceResponse
from ethernetip.cip.status import CipStatus
from ethernetip.logix import data_types as cip_types
from ethernetip.logix import tag_services
from ethernetip.logix.logix_dispatcher import LogixDispatcher
from ethernetip.logix.multi_service import SERVICE_CODE as _MULTIPLE_SERVICE
from ethernetip.logix.multi_service import handle_multi_service
from ethernetip.logix.tag_database import TagDatabase
from ethernetip.protocol.eip_adapter import EipAdapter

from edge.bus.base import plant_raw, raw_to_eu
from edge.tagmap import DataType, Protocol, TagMap
from edge.tagmap.model import Value
from tools.hil.server_common import BenchPlcServer

logging.getLogger("ethernetip").setLevel(logging.CRITICAL)

_CIP_TYPE = {DataType.BOOL: cip_types.BOOL, DataType.INT: cip_types.INT, DataType.DINT: cip_types.DINT, DataType.REAL: cip_types.REAL}
_BROWSE_SERVICE = 0x55
_FORMAT = {DataType.BOOL: "B", DataType.INT: "h", DataType.DINT: "i", DataType.REAL: "f"}  # CIP is little-endian
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
        reply = struct.pack("<H", tag.tag_type) + tag.get_data(start + offset, chunk)
        if offset + chunk < total:  # the rest follows in the next fragment
            return CipServiceResponse(service_code=service | 0x80, status=CipStatus.error(_PARTIAL), data=reply)
        return CipServiceResponse.success(service, reply)

    def write(self, tag, service: int, data: bytes, element: int, fragmented: bool) -> CipServiceResponse:
        head = 8 if fragmented else 4
        if len(data) < head:
            return CipServiceResponse.error(service, CipStatus.error(0x13))
        tag_type, count = struct.unpack_from("<HH", data, 0)
        offset = struct.unpack_from("<I", data, 4)[0] if fragmented else 0
        if tag_type != tag.tag_type:
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
    """cm-ethernetip's dispatcher with the tag services above on symbolic paths."""

    services: _TagServices

    def on_unhandled(self, service_code, path, data, default_status=None):
        if path.symbolic_name is not None and service_code in (0x4C, 0x4D, 0x52, 0x53):
            tag = self.tags.find_by_name(path.symbolic_name)
            if tag is None:
                return CipServiceResponse.error(service_code, CipStatus.error(0x05))
            return self.services.dispatch(tag, service_code, data, path.element_id or 0)
        return super().on_unhandled(service_code, path, data, default_status)


class LogixPlcServer(BenchPlcServer):
    protocol_name = "logix"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0, connection_size: int = 4000):
        if tag_map.protocol is not Protocol.LOGIX:
            raise ValueError(f"{tag_map.source}: a Logix bench server needs protocol: logix")
        self.database = TagDatabase()
        for tag in tag_map.tags:
            if not tag.address.replace("_", "").isalnum():
                raise ValueError(f"{tag_map.source}:{tag.source_line}: tag {tag.name!r}: the bench serves "
                                 f"controller-scoped tags only, not {tag.address!r}")
            self.database.add_tag(tag.address, _CIP_TYPE[tag.data_type], element_count=tag.count)
        self._identity = IdentityInfo(product_name="discharge-edge HIL bench")
        self.connection_size = connection_size
        self._adapter: EipAdapter | None = None
        self.packets = PacketStats()
        super().__init__(tag_map, host, port)

    def add_plc_tag(self, address: str, data_type: DataType, count: int = 1) -> None:
        """Add a tag to the PLC's program (a program download), to test tag-list refresh."""
        self.database.add_tag(address, _CIP_TYPE[data_type], element_count=count)

    def _dispatcher(self) -> LogixDispatcher:
        dispatcher = _BenchDispatcher(self.database, self._identity)
        packets, connection_bytes = self.packets, self.connection_size
        services = dispatcher.services = _TagServices(connection_bytes - _REPLY_OVERHEAD, packets)

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
        # cm-ethernetip 0.1.0 serves the tag-list browse (0x55) at class level only, and takes
        # its start instance as exclusive; pycomm3 asks for every page after the first at
        # instance N, meaning "from N on". Without this a tag list longer than one reply
        # (about 10 tags) fails to upload ("Service not supported"), or loses a tag a page.
        symbols = dispatcher._symbol_object

        def browse_from(instance, request):
            start = replace(request.path, instance_id=request.path.instance_id - 1)
            return symbols._handle_browse(instance, replace(request, path=start))

        symbols.cip_class.add_instance_service(
            CipServiceDefinition(_BROWSE_SERVICE, "Get_Instance_Attribute_List", browse_from))

        def tag_service(instance, request):  # a tag addressed by its symbol instance id
            tag = symbols._get_tag(instance)
            if tag is None:
                return CipServiceResponse.error(request.service_code, CipStatus.error(0x05))
            return services.dispatch(tag, request.service_code, request.data, request.path.element_id or 0)

        for code, name in ((0x4C, "Read_Tag"), (0x4D, "Write_Tag"), (0x52, "Read_Tag_Fragmented"),
                           (0x53, "Write_Tag_Fragmented")):
            symbols.cip_class.add_instance_service(CipServiceDefinition(code, name, tag_service))
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
        fmt = f"<{tag.count}{_FORMAT[tag.data_type]}"
        data = self.database.find_by_name(tag.address).get_data(0, struct.calcsize(fmt))
        raw = struct.unpack(fmt, data)
        return raw_to_eu(tag, raw if tag.is_array else raw[0])[0]

    def set(self, name: str, value: Value) -> None:
        tag = self.served_map.tag(name)
        raw = plant_raw(tag, value)
        elements = [int(e) if tag.data_type is DataType.BOOL else e for e in (raw if tag.is_array else (raw,))]
        data = struct.pack(f"<{tag.count}{_FORMAT[tag.data_type]}", *elements)
        self._loop.loop.call_soon_threadsafe(self.database.find_by_name(tag.address).set_data, data)
