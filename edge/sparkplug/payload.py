"""Sparkplug B on the wire: topics, data types and the protobuf payload (Sparkplug 3.0, ch. 4 and 6).

Owns `DataType` (the specification's numbers), `Metric` (a name, a type, a value or None, a
timestamp, historical or live), `encode_payload` / `decode_payload` over the generated
`sparkplug_b_pb2` (from `sparkplug_b.proto`, its generator command in that file), `Topic` with
`topic_of` / `parse_topic`, and the primary host's STATE message (`state_payload`,
`parse_state`). Pure codecs, no I/O. Tests: tests/edge/sparkplug/test_payload.py.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from edge.sparkplug import sparkplug_b_pb2

NAMESPACE = "spBv1.0"
NODE_TYPES = ("NBIRTH", "NDEATH", "NDATA", "NCMD")
DEVICE_TYPES = ("DBIRTH", "DDEATH", "DDATA", "DCMD")
SEQ_MODULO = 256  # a node's message numbers run 0..255, then 0 again
BDSEQ = "bdSeq"  # the birth/death session number, in NBIRTH and in NDEATH (the MQTT will)
REBIRTH = "Node Control/Rebirth"  # NBIRTH declares it; an NCMD setting it true asks for new births
_ID = re.compile(r"^[^/+#]+$")  # a group, node or device id: no '/', '+' or '#' (spec 4.1.1)


class DataType(enum.IntEnum):
    """The Sparkplug B data types this package writes (spec 6.4.16)."""

    INT32 = 3
    INT64 = 4
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14


_INT_FIELD = {DataType.INT32: "int_value", DataType.UINT32: "int_value", DataType.INT64: "long_value",
              DataType.UINT64: "long_value", DataType.DATETIME: "long_value"}


@dataclass(frozen=True)
class Metric:
    """One metric: `value` None is Sparkplug's is_null; `timestamp_ms` when it was taken."""

    name: str
    datatype: DataType
    value: Any
    timestamp_ms: int | None = None
    historical: bool = False


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _set_value(m: Any, datatype: DataType, value: Any) -> None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        m.is_null = True
    elif datatype in _INT_FIELD:
        v = int(value)
        if v < 0 and datatype in (DataType.UINT32, DataType.UINT64, DataType.DATETIME):
            raise ValueError(f"metric {m.name!r}: {v} is negative; its type {datatype.name} is unsigned")
        if datatype is DataType.INT32:  # two's complement in the uint32 field (spec 6.4.16)
            v &= 0xFFFFFFFF
        elif datatype is DataType.INT64:
            v &= 0xFFFFFFFFFFFFFFFF
        setattr(m, _INT_FIELD[datatype], v)
    elif datatype is DataType.FLOAT:
        m.float_value = float(value)
    elif datatype is DataType.DOUBLE:
        m.double_value = float(value)
    elif datatype is DataType.BOOLEAN:
        m.boolean_value = bool(value)
    elif datatype in (DataType.STRING, DataType.TEXT):
        m.string_value = str(value)
    else:  # pragma: no cover - DataType lists only the types above
        raise ValueError(f"metric {m.name!r}: data type {datatype!r} is not written by this package")


def _get_value(m: Any) -> Any:
    if m.is_null:
        return None
    kind = m.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(m, kind)
    if m.datatype == DataType.INT32 and value >= 1 << 31:
        value -= 1 << 32
    elif m.datatype == DataType.INT64 and value >= 1 << 63:
        value -= 1 << 64
    return value


def build_payload(metrics: list[Metric], *, seq: int | None, timestamp_ms: int | None = None) -> Any:
    """The protobuf `Payload` (seq None: an NDEATH, which carries none)."""
    p = sparkplug_b_pb2.Payload()
    p.timestamp = now_ms() if timestamp_ms is None else timestamp_ms
    if seq is not None:
        p.seq = seq % SEQ_MODULO
    for metric in metrics:
        m = p.metrics.add()
        m.name = metric.name
        m.datatype = int(metric.datatype)
        m.timestamp = p.timestamp if metric.timestamp_ms is None else metric.timestamp_ms
        if metric.historical:
            m.is_historical = True
        _set_value(m, metric.datatype, metric.value)
    return p


def encode_payload(metrics: list[Metric], *, seq: int | None, timestamp_ms: int | None = None) -> bytes:
    return build_payload(metrics, seq=seq, timestamp_ms=timestamp_ms).SerializeToString()


@dataclass(frozen=True)
class Decoded:
    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[Metric, ...]


def decode_payload(data: bytes) -> Decoded:
    """A payload's metrics (a metric of an unknown type keeps its raw value and number).
    Raises ValueError on bytes that are not a Sparkplug B payload."""
    p = sparkplug_b_pb2.Payload()
    try:
        p.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise ValueError(f"not a Sparkplug B payload ({len(data)} bytes): {exc}") from exc
    metrics = []
    for m in p.metrics:
        try:
            datatype: Any = DataType(m.datatype)
        except ValueError:
            datatype = m.datatype
        metrics.append(Metric(m.name, datatype, _get_value(m), m.timestamp if m.HasField("timestamp") else None,
                              m.is_historical))
    return Decoded(p.timestamp if p.HasField("timestamp") else None, p.seq if p.HasField("seq") else None,
                   tuple(metrics))


# -- topics ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Topic:
    group: str
    message_type: str
    node: str
    device: str | None = None

    def __str__(self) -> str:
        return topic_of(self.group, self.message_type, self.node, self.device)


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value or ""):
        raise ValueError(f"Sparkplug {kind} id {value!r}: must be non-empty without '/', '+' or '#'")
    return value


def topic_of(group: str, message_type: str, node: str, device: str | None = None) -> str:
    """spBv1.0/GROUP/TYPE/NODE[/DEVICE]; a device type needs a device, a node type none."""
    if message_type in DEVICE_TYPES:
        if device is None:
            raise ValueError(f"{message_type} needs a device id")
        return f"{NAMESPACE}/{check_id('group', group)}/{message_type}/{check_id('node', node)}/{check_id('device', device)}"
    if message_type not in NODE_TYPES:
        raise ValueError(f"message type {message_type!r}: one of {NODE_TYPES + DEVICE_TYPES}")
    return f"{NAMESPACE}/{check_id('group', group)}/{message_type}/{check_id('node', node)}"


def parse_topic(topic: str) -> Topic | None:
    """The parts of a Sparkplug B edge topic; None for STATE and anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != NAMESPACE:
        return None
    if parts[2] in NODE_TYPES and len(parts) == 4:
        return Topic(parts[1], parts[2], parts[3])
    if parts[2] in DEVICE_TYPES and len(parts) == 5:
        return Topic(parts[1], parts[2], parts[3], parts[4])
    return None


# -- the primary host application's STATE (spec 3.0, 5.x) ---------------------------------------------
def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{check_id('host', host_id)}"


def state_payload(online: bool, timestamp_ms: int | None = None) -> bytes:
    return json.dumps({"online": online, "timestamp": now_ms() if timestamp_ms is None else timestamp_ms}).encode()


def parse_state(data: bytes) -> tuple[bool, int] | None:
    """(online, timestamp_ms) of a STATE message; None for anything else."""
    try:
        obj = json.loads(data.decode())
        return bool(obj["online"]), int(obj["timestamp"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
