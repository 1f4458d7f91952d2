"""Modbus TCP backend of the tag bus: the only file in edge/ that imports pymodbus.

Reads are planned once per list of tags: the registers (or bits) of each table are merged into
spans and cut into requests of at most 120 registers / 1968 bits, then decoded per tag with our
own codec (codec.py). Every response is checked to answer its request (function code, count);
an exception response makes that request's tags BAD_DEVICE. A timeout drops the connection
(a late answer must never be taken for the next request's) and raises BusTimeout; the base
class rebuilds it at the next call (a loopback or LAN connect takes about a millisecond), with
backoff only when connecting fails. Tests: tests/edge/bus/test_contract.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from edge.bus.base import BusError, BusTimeout, ConnectionLost, Quality, TagBus
from edge.bus.codec import decode_registers, encode_registers
from edge.tagmap import DataType, ModbusTable, Owner, Tag, TagMap
from edge.tagmap.model import Value

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every timeout at ERROR; we report them

MAX_REGISTERS = 120
MAX_BITS = 1968
MERGE_GAP = 8  # read across a hole of up to this many registers rather than send another request


@dataclass(frozen=True)
class _Request:
    table: ModbusTable
    start: int
    count: int
    tags: tuple[Tag, ...]  # tags whose data lies (partly) in this request


def plan_reads(tags: list[Tag]) -> list[_Request]:
    """Group tags into as few requests as the per-request limits allow."""
    requests: list[_Request] = []
    for table in ModbusTable:
        in_table = sorted((t for t in tags if t.address.table is table), key=lambda t: t.address.address)
        limit = MAX_BITS if table.is_bits else MAX_REGISTERS
        spans: list[list] = []  # [start, end, tags]
        for tag in in_table:
            start, end = tag.address.address, tag.address.address + tag.register_count
            if spans and start <= spans[-1][1] + MERGE_GAP:
                spans[-1][1] = max(spans[-1][1], end)
                spans[-1][2].append(tag)
            else:
                spans.append([start, end, [tag]])
        for start, end, span_tags in spans:
            for chunk in range(start, end, limit):
                count = min(limit, end - chunk)
                inside = tuple(t for t in span_tags if t.address.address < chunk + count
                               and t.address.address + t.register_count > chunk)
                requests.append(_Request(table, chunk, count, inside))
    return requests


class ModbusBus(TagBus):
    def __init__(self, tag_map: TagMap, owner: Owner, **kwargs):
        super().__init__(tag_map, owner, **kwargs)
        self._client: ModbusTcpClient | None = None
        self._plans: dict[tuple[str, ...], list[_Request]] = {}

    def _connect(self, deadline: float) -> None:
        endpoint = self.tag_map.endpoint
        timeout_s = max(0.01, deadline - time.monotonic())
        client = ModbusTcpClient(endpoint.host, port=endpoint.port, timeout=timeout_s, retries=0,
                                 reconnect_delay=0, reconnect_delay_max=0)
        if not client.connect():
            client.close()
            raise ConnectionLost(f"{self.tag_map.name}: cannot connect to {endpoint.host}:{endpoint.port}")
        self._client = client

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _execute(self, method, deadline: float, *args, **kwargs):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BusTimeout(f"{self.tag_map.name}: deadline passed before the request was sent")
        self._client.comm_params.timeout_connect = remaining
        try:
            return method(*args, device_id=self.tag_map.endpoint.unit_id, **kwargs)
        except ModbusIOException as exc:
            raise BusTimeout(f"{self.tag_map.name}: no answer within {remaining:.3f} s") from exc
        except ConnectionException as exc:
            raise ConnectionLost(f"{self.tag_map.name}: connection lost: {exc}") from exc
        except ModbusException as exc:
            raise ConnectionLost(f"{self.tag_map.name}: protocol failure: {exc}") from exc
        except OSError as exc:
            raise ConnectionLost(f"{self.tag_map.name}: socket error: {exc}") from exc

    def _read_raw(self, tags: list[Tag], deadline: float) -> dict[str, Value | Quality]:
        key = tuple(t.name for t in tags)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = plan_reads(tags)
        words: dict[tuple[ModbusTable, int], int | bool] = {}
        bad: dict[str, Quality] = {}
        client = self._client
        readers = {
            ModbusTable.COIL: client.read_coils,
            ModbusTable.DISCRETE_INPUT: client.read_discrete_inputs,
            ModbusTable.HOLDING_REGISTER: client.read_holding_registers,
            ModbusTable.INPUT_REGISTER: client.read_input_registers,
        }
        for request in plan:
            response = self._execute(readers[request.table], deadline, request.start, count=request.count)
            problem = _check_response(response, request)
            if problem:
                log.warning("%s: %s", self.tag_map.name, problem)
                bad.update((t.name, Quality.BAD_DEVICE) for t in request.tags)
                continue
            data = response.bits if request.table.is_bits else response.registers
            words.update(((request.table, request.start + i), data[i]) for i in range(request.count))
        out: dict[str, Value | Quality] = {}
        for tag in tags:
            if tag.name in bad:
                out[tag.name] = bad[tag.name]
                continue
            table, first = tag.address.table, tag.address.address
            data = [words[(table, first + i)] for i in range(tag.register_count)]
            if tag.data_type is DataType.BOOL:
                values = tuple(bool(b) for b in data)
            else:
                values = decode_registers(tag.data_type, tag.byte_order, data)
            out[tag.name] = values if tag.is_array else values[0]
        return out

    def _write_raw(self, items: list[tuple[Tag, Value]], deadline: float) -> dict[str, Quality]:
        out: dict[str, Quality] = {}
        for tag, raw in items:
            values = list(raw) if tag.is_array else [raw]
            if tag.data_type is DataType.BOOL:
                method, payload, code = self._client.write_coils, [bool(v) for v in values], 15
            else:
                method, payload, code = self._client.write_registers, encode_registers(tag.data_type, tag.byte_order, values), 16
            response = self._execute(method, deadline, tag.address.address, payload)
            if response.isError() or response.function_code != code:
                log.warning("%s: write %s refused by the device: %s", self.tag_map.name, tag.name, response)
                out[tag.name] = Quality.BAD_DEVICE
            else:
                out[tag.name] = Quality.GOOD
        return out


def _check_response(response, request: _Request) -> str:
    """Why `response` does not answer `request`, or '' if it does."""
    codes = {ModbusTable.COIL: 1, ModbusTable.DISCRETE_INPUT: 2, ModbusTable.HOLDING_REGISTER: 3, ModbusTable.INPUT_REGISTER: 4}
    if response.isError():
        return f"exception {getattr(response, 'exception_code', '?')} for {request.table.value} {request.start}+{request.count}"
    if response.function_code != codes[request.table]:
        return f"answer has function code {response.function_code}, asked {codes[request.table]}"
    got = len(response.bits) if request.table.is_bits else len(response.registers)
    if got < request.count or (not request.table.is_bits and got != request.count):
        return f"answer has {got} values for {request.table.value} {request.start}+{request.count}"
    return ""


__all__ = ["ModbusBus", "plan_reads", "BusError"]
