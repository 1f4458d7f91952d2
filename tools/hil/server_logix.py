"""The bench PLC over EtherNet/IP: a Logix-like tag server (cm-ethernetip) serving a tag map.

Why cm-ethernetip: it serves an unmodified pycomm3 `LogixDriver`, including the tag-list upload
the controller relies on, REAL arrays, DINT, INT, BOOL and fragmented reads (cpppo serves
Logix reads but not the tag upload). It has no program scope, so bench maps use
controller-scoped tag paths; a member path (Tag.Member) is refused here with a clear error.
Tests: tests/tools/hil/test_servers.py, tests/edge/bus/test_contract.py.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import replace

from ethernetip.cip.identity_info import IdentityInfo
from ethernetip.cip.service import CipServiceDefinition
from ethernetip.logix import data_types as cip_types
from ethernetip.logix.logix_dispatcher import LogixDispatcher
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


class LogixPlcServer(BenchPlcServer):
    protocol_name = "logix"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0):
        if tag_map.protocol is not Protocol.LOGIX:
            raise ValueError(f"{tag_map.source}: a Logix bench server needs protocol: logix")
        self.database = TagDatabase()
        for tag in tag_map.tags:
            if not tag.address.replace("_", "").isalnum():
                raise ValueError(f"{tag_map.source}:{tag.source_line}: tag {tag.name!r}: the bench serves "
                                 f"controller-scoped tags only, not {tag.address!r}")
            self.database.add_tag(tag.address, _CIP_TYPE[tag.data_type], element_count=tag.count)
        self._identity = IdentityInfo(product_name="discharge-edge HIL bench")
        self._adapter: EipAdapter | None = None
        super().__init__(tag_map, host, port)

    def add_plc_tag(self, address: str, data_type: DataType, count: int = 1) -> None:
        """Add a tag to the PLC's program (a program download), to test tag-list refresh."""
        self.database.add_tag(address, _CIP_TYPE[data_type], element_count=count)

    def _dispatcher(self) -> LogixDispatcher:
        dispatcher = LogixDispatcher(self.database, self._identity)
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
