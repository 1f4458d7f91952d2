"""The Sparkplug B codec: payload round trips, null and signed values, topics, STATE."""

from __future__ import annotations

import pytest

from edge.sparkplug import sparkplug_b_pb2
from edge.sparkplug.payload import (DataType, Metric, decode_payload, encode_payload, parse_state, parse_topic,
                                    state_payload, state_topic, topic_of)

pytestmark = pytest.mark.unit


def test_a_payload_round_trips_every_type_with_seq_and_timestamps():
    metrics = [Metric("line/packml_state", DataType.STRING, "Execute", 1000),
               Metric("tier", DataType.INT32, -3, 1001), Metric("report_seq", DataType.UINT64, 2**40, 1002),
               Metric("soc_pct", DataType.DOUBLE, 42.5, 1003), Metric("isolated", DataType.BOOLEAN, True, 1004),
               Metric("alarms/active_count", DataType.UINT32, 7, 1005)]
    data = encode_payload(metrics, seq=257, timestamp_ms=5000)
    out = decode_payload(data)
    assert out.seq == 1  # modulo 256
    assert out.timestamp_ms == 5000
    assert [(m.name, m.datatype, m.value, m.timestamp_ms) for m in out.metrics] == [
        ("line/packml_state", DataType.STRING, "Execute", 1000), ("tier", DataType.INT32, -3, 1001),
        ("report_seq", DataType.UINT64, 2**40, 1002), ("soc_pct", DataType.DOUBLE, 42.5, 1003),
        ("isolated", DataType.BOOLEAN, True, 1004), ("alarms/active_count", DataType.UINT32, 7, 1005)]


def test_none_and_nan_are_sparkplug_nulls_and_historical_is_kept():
    data = encode_payload([Metric("temp_degc", DataType.DOUBLE, None), Metric("soc_pct", DataType.DOUBLE, float("nan"),
                                                                               historical=True)], seq=0)
    raw = sparkplug_b_pb2.Payload.FromString(data)
    assert [m.is_null for m in raw.metrics] == [True, True]
    assert raw.metrics[0].WhichOneof("value") is None
    out = decode_payload(data)
    assert [m.value for m in out.metrics] == [None, None]
    assert [m.historical for m in out.metrics] == [False, True]


def test_ndeath_carries_no_seq_and_garbage_is_refused():
    assert not sparkplug_b_pb2.Payload.FromString(encode_payload([], seq=None)).HasField("seq")
    with pytest.raises(ValueError, match="not a Sparkplug B payload"):
        decode_payload(b"\xff\xff\xff")


def test_topics_build_and_parse():
    assert topic_of("plant", "DDATA", "line-a", "station003") == "spBv1.0/plant/DDATA/line-a/station003"
    assert topic_of("plant", "NBIRTH", "line-a") == "spBv1.0/plant/NBIRTH/line-a"
    t = parse_topic("spBv1.0/plant/DBIRTH/line-a/station001")
    assert (t.group, t.message_type, t.node, t.device) == ("plant", "DBIRTH", "line-a", "station001")
    assert parse_topic("spBv1.0/STATE/host") is None
    assert parse_topic("spBv1.0/plant/DDATA/line-a") is None  # a device type without a device
    with pytest.raises(ValueError, match="needs a device"):
        topic_of("plant", "DDATA", "line-a")
    with pytest.raises(ValueError, match="without '/'"):
        topic_of("plant", "NBIRTH", "line/a")


def test_state_message():
    assert state_topic("plant-host") == "spBv1.0/STATE/plant-host"
    assert parse_state(state_payload(True, 1234)) == (True, 1234)
    assert parse_state(b"online") is None
