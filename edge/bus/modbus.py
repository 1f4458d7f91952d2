"""Modbus TCP backend of the tag bus: the only file in edge/ that imports pymodbus.

Request planning (`_plan`), once per list of tags (`plan_read`/`plan_write` at a cyclic
caller's start; a plain read or write takes it from a cache by tag list): the tags of each table are laid
out in address order and cut into requests within the protocol's limits: reads at most 125
registers (FC 3/4) or 2000 bits (FC 1/2), merging neighbours across holes of up to MERGE_GAP;
writes at most 123 registers (FC 16) or 1968 coils (FC 15), merging only neighbours with no
hole. A tag larger than a request is split across requests on value boundaries (a REAL, DINT or
64-bit value, or a STRING, never straddles two requests) and reassembled before decoding with our
own codec (codec.py). A BOOL at a bit of a register is read with its register (bits of one
register share it); it is written with FC 22 (mask write register), one request a register
carrying every bit written to it, never inside an FC 16 write: the device changes only those
bits, so bits the PLC sets in the same register are not overwritten with a stale copy. A device
without FC 22 answers exception 1 and the tag reads BAD_DEVICE; nothing else is sent in its place.
Register requests and answers are packed and unpacked in one `struct` call each (pymodbus
does it a register at a time: a quarter of a 125-register round trip).
Every response is checked to answer its request (function code, count; a write's echoed address
and count); an exception response makes that request's tags BAD_DEVICE. A timeout drops the connection
(a late answer must never be taken for the next request's) and raises BusTimeout; the base
class rebuilds it at the next call (a loopback or LAN connect takes about a millisecond), with
backoff only when connecting fails. Tests: tests/edge/bus/test_contract.py, test_request_plan.py,
test_types_modbus.py, test_types_bench.py.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu.register_message import (ReadHoldingRegistersResponse, ReadInputRegistersResponse,
                                           WriteMultipleRegistersRequest)

from edge.bus.base import BusError, BusTimeout, ConnectionLost, Quality, TagBus
from edge.bus.codec import decode_tag, encode_tag, mask_write_masks
from edge.tagmap import DataType, ModbusTable, Owner, Tag, TagMap
from edge.tagmap.model import Value

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every timeout at ERROR; we report them

MAX_READ_REGISTERS = 125  # FC 3/4: the protocol's limit per request (a 250-byte answer)
MAX_READ_BITS = 2000  # FC 1/2
MAX_WRITE_REGISTERS = 123  # FC 16
MAX_WRITE_BITS = 1968  # FC 15
MERGE_GAP = 8
"""Read across a hole of up to this many registers (or bits) between two tags of one table
rather than send another request: 8 unused registers cost 16 bytes on the wire, a request a
round trip. Writes never merge across a hole (it would overwrite registers the map does not
give us); neighbours with no hole between them share a write request."""


class _HoldingAnswer(ReadHoldingRegistersResponse):
    """pymodbus's FC 3 answer, unpacked in one call (it unpacks a register at a time)."""

    def decode(self, data: bytes) -> None:
        if (size := int(data[0])) >= len(data):
            raise ModbusIOException(f"byte_count {size} > length of packet {len(data)}", function_code=self.function_code)
        self.registers = list(struct.unpack_from(f">{size // 2}H", data, 1))


class _InputAnswer(ReadInputRegistersResponse):
    decode = _HoldingAnswer.decode


class _WriteRegisters(WriteMultipleRegistersRequest):
    """pymodbus's FC 16 request, packed in one call."""

    def encode(self) -> bytes:
        return struct.pack(f">HHB{self.count}H", self.address, self.count, 2 * self.count, *self.registers)


@dataclass(frozen=True)
class _Request:
    table: ModbusTable
    start: int
    count: int
    tags: tuple[Tag, ...]  # tags whose data lies (partly) in this request
    mask: bool = False  # FC 22: bits of one holding register, written with an and/or mask


@dataclass(frozen=True)
class _Plan:
    """Requests for one list of tags, and where each tag's registers lie in their answers."""

    requests: tuple[_Request, ...]
    pieces: dict  # tag name -> ((request index, offset in the request, count), ...) in address order


def _element(tag: Tag) -> tuple[int, int]:
    """(width of one value in registers or bits, values): a value is never split over requests."""
    if tag.address.table.is_bits:
        return 1, tag.count
    if tag.register_bit is not None:
        return 1, 1
    if tag.data_type is DataType.STRING:
        return tag.register_count, 1
    return tag.data_type.registers, tag.count


def _plan(tags: list[Tag], limit_registers: int, limit_bits: int, gap: int, write: bool = False) -> _Plan:
    """Cut the tags of each table into requests of at most the limit, merging neighbours across
    holes of up to `gap`, and never splitting a value: a REAL or DINT (2 registers), a 64-bit value
    (4) or a STRING lies whole in one request, so its byte order is decoded as if it had been read
    in one piece. Written bits of registers go to FC 22 requests of their own (`mask`), after."""
    requests: list[_Request] = []
    pieces: dict[str, list] = {t.name: [] for t in tags}
    masked = [t for t in tags if t.register_bit is not None] if write else []
    for table in ModbusTable:
        in_table = sorted((t for t in tags if t.address.table is table and not (write and t.register_bit is not None)),
                          key=lambda t: t.address.address)
        limit = limit_bits if table.is_bits else limit_registers
        current: list = []  # [start, end, tags]

        def close():
            if current:
                requests.append(_Request(table, current[0], current[1] - current[0], tuple(current[2])))
                current.clear()

        for tag in in_table:
            width, values = _element(tag)
            if width > limit:
                raise ValueError(f"{tag.name}: a value of {width} registers does not fit a request of {limit}")
            address = tag.address.address
            for element in range(values):
                first = address + element * width
                if current and (first - current[1] > gap or first + width - current[0] > limit):
                    close()
                if not current:
                    current.extend([first, first, []])
                current[1] = max(current[1], first + width)
                index = len(requests)
                if not current[2] or current[2][-1] is not tag:
                    current[2].append(tag)
                    pieces[tag.name].append([index, first - current[0], 0])
                pieces[tag.name][-1][2] += width
        close()
    by_register: dict = {}
    for tag in masked:
        by_register.setdefault((tag.address.table, tag.address.address), []).append(tag)
    for (table, address), bit_tags in sorted(by_register.items(), key=lambda item: (item[0][0].value, item[0][1])):
        for tag in bit_tags:
            pieces[tag.name].append([len(requests), 0, 1])
        requests.append(_Request(table, address, 1, tuple(bit_tags), mask=True))
    return _Plan(tuple(requests), {name: tuple(tuple(p) for p in parts) for name, parts in pieces.items()})


def plan_reads(tags: list[Tag]) -> list[_Request]:
    """Group tags into as few read requests as the protocol's limits and MERGE_GAP allow."""
    return list(_plan(tags, MAX_READ_REGISTERS, MAX_READ_BITS, MERGE_GAP).requests)


def plan_writes(tags: list[Tag]) -> list[_Request]:
    """Write requests: adjacent tags share one, split at 123 registers / 1968 coils; bits of a
    register one FC 22 request a register."""
    return list(_plan(tags, MAX_WRITE_REGISTERS, MAX_WRITE_BITS, 0, write=True).requests)


class ModbusBus(TagBus):
    def __init__(self, tag_map: TagMap, owner: Owner, **kwargs):
        super().__init__(tag_map, owner, **kwargs)
        self._client: ModbusTcpClient | None = None
        self._plans: dict[tuple[str, ...], _Plan] = {}  # read plans by the tags asked
        self._write_plans: dict[tuple[str, ...], _Plan] = {}

    def _connect(self, deadline: float) -> None:
        endpoint = self.tag_map.endpoint
        timeout_s = max(0.01, deadline - time.monotonic())
        client = ModbusTcpClient(endpoint.host, port=endpoint.port, timeout=timeout_s, retries=0,
                                 reconnect_delay=0, reconnect_delay_max=0)
        if not client.connect():
            client.close()
            raise ConnectionLost(f"{self.tag_map.name}: cannot connect to {endpoint.host}:{endpoint.port}")
        client.register(_HoldingAnswer)  # register answers unpacked in one call (this client's decoder only)
        client.register(_InputAnswer)
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

    def _write_registers(self, address: int, registers: list, device_id: int):
        """FC 16 with the request packed in one call (the client's write_registers, faster)."""
        request = _WriteRegisters(address=address, registers=registers, dev_id=device_id)
        return self._client.execute(False, request)

    def _plan_requests(self, tags: list[Tag], write: bool) -> _Plan:
        return self._plan_for(self._write_plans if write else self._plans, tags, write)

    def _plan_for(self, cache: dict, tags: list[Tag], write: bool) -> _Plan:
        """The plan for this list of tags: computed once, then taken from the cache."""
        key = tuple(t.name for t in tags)
        plan = cache.get(key)
        if plan is None:
            plan = cache[key] = (_plan(tags, MAX_WRITE_REGISTERS, MAX_WRITE_BITS, 0, write=True) if write
                                 else _plan(tags, MAX_READ_REGISTERS, MAX_READ_BITS, MERGE_GAP))
        return plan

    def _read_raw(self, tags: list[Tag], plan: _Plan | None, deadline: float) -> dict[str, Value | Quality]:
        plan = plan or self._plan_for(self._plans, tags, write=False)
        client = self._client
        readers = {
            ModbusTable.COIL: client.read_coils,
            ModbusTable.DISCRETE_INPUT: client.read_discrete_inputs,
            ModbusTable.HOLDING_REGISTER: client.read_holding_registers,
            ModbusTable.INPUT_REGISTER: client.read_input_registers,
        }
        answers: list = []
        for request in plan.requests:
            response = self._execute(readers[request.table], deadline, request.start, count=request.count)
            problem = _check_response(response, request)
            if problem:
                log.warning("%s: %s", self.tag_map.name, problem)
                answers.append(None)
            else:
                answers.append(response.bits if request.table.is_bits else response.registers)
        out: dict[str, Value | Quality] = {}
        for tag in tags:
            data: list = []
            for index, offset, count in plan.pieces[tag.name]:  # a split tag reassembled in order
                answer = answers[index]
                if answer is None:
                    break
                data.extend(answer[offset:offset + count])
            else:
                out[tag.name] = decode_tag(tag, data)
                continue
            out[tag.name] = Quality.BAD_DEVICE
        return out

    def _write_raw(self, items: list[tuple[Tag, Value]], plan: _Plan | None, deadline: float) -> dict[str, Quality]:
        tags = [tag for tag, _ in items]
        plan = plan or self._plan_for(self._write_plans, tags, write=True)
        payloads: dict[int, list] = {}  # request index -> registers or bits, in address order
        bits: dict[int, dict] = {}  # FC 22 request index -> {bit: value}
        for tag, raw in items:
            if tag.register_bit is not None:
                bits.setdefault(plan.pieces[tag.name][0][0], {})[tag.register_bit] = bool(raw)
                continue
            data = encode_tag(tag, raw)
            position = 0
            for index, offset, count in plan.pieces[tag.name]:
                payload = payloads.setdefault(index, [None] * plan.requests[index].count)
                payload[offset:offset + count] = data[position:position + count]
                position += count
        out: dict[str, Quality] = {tag.name: Quality.GOOD for tag in tags}
        for index, request in enumerate(plan.requests):
            if request.mask:
                and_mask, or_mask = mask_write_masks(bits[index])
                response = self._execute(self._client.mask_write_register, deadline, address=request.start,
                                         and_mask=and_mask, or_mask=or_mask)
                problem = _check_mask_response(response, request, and_mask, or_mask)
                if problem:
                    log.warning("%s: write %s refused by the device: %s", self.tag_map.name,
                                ", ".join(t.name for t in request.tags), problem)
                    out.update((t.name, Quality.BAD_DEVICE) for t in request.tags)
                continue
            if request.table.is_bits:
                response = self._execute(self._client.write_coils, deadline, request.start, payloads[index])
                code = 15
            else:
                response = self._execute(self._write_registers, deadline, request.start, payloads[index])
                code = 16
            problem = _check_write_response(response, request, code)
            if problem:  # a tag split over requests may be written in part: it reads BAD_DEVICE
                log.warning("%s: write %s refused by the device: %s", self.tag_map.name,
                            ", ".join(t.name for t in request.tags), problem)
                out.update((t.name, Quality.BAD_DEVICE) for t in request.tags)
        return out


def _check_write_response(response, request: _Request, code: int) -> str:
    """Why a write `response` does not answer `request`, or '' if it does."""
    if response.isError():
        return f"exception {getattr(response, 'exception_code', '?')} for {request.table.value} {request.start}+{request.count}"
    if response.function_code != code:
        return f"answer has function code {response.function_code}, asked {code}"
    address, count = getattr(response, "address", request.start), getattr(response, "count", request.count)
    if (address, count) != (request.start, request.count):
        return f"answer confirms {address}+{count}, asked {request.start}+{request.count}"
    return ""


def _check_mask_response(response, request: _Request, and_mask: int, or_mask: int) -> str:
    """Why an FC 22 `response` does not echo its request, or '' if it does."""
    if response.isError():
        return (f"exception {getattr(response, 'exception_code', '?')} for mask write (FC 22) of "
                f"{request.table.value} {request.start}")
    if response.function_code != 22:
        return f"answer has function code {response.function_code}, asked 22"
    echoed = (getattr(response, "address", None), getattr(response, "and_mask", None), getattr(response, "or_mask", None))
    if echoed != (request.start, and_mask, or_mask):
        return f"answer echoes {echoed}, asked {(request.start, and_mask, or_mask)}"
    return ""


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


__all__ = ["ModbusBus", "plan_reads", "plan_writes", "MERGE_GAP", "BusError"]
