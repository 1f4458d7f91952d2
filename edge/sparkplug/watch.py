"""The plant's side: every line (Sparkplug node) and station (device) as a host application sees them.

Owns `PlantState` (decodes each message, keeps each node's and device's live metrics, online or
dead, the node's bdSeq and seq with the gaps seen, and per station the `report_seq` numbers
received: counted once each, duplicates and the missing ones counted), `ReportCounter`,
`render_table`, and `PlantWatcher`, the MQTT client behind `discharge-edge plant watch`
(edge/sparkplug/cli.py): it subscribes to spBv1.0/# and, given a host id, is the primary host
application: it publishes `spBv1.0/STATE/<host>` online (retained, QoS 1) after subscribing, its
will says offline with the same timestamp, so edge nodes hold their data until it listens. A
node heard sending data without a birth this watcher saw (the watcher came up later) is sent
NCMD `Node Control/Rebirth` (at most every 5 s), so the plant learns every value, not only the
ones that change.

Rules kept (Sparkplug 3.0): NBIRTH makes a node online with its bdSeq and seq 0 and its devices
offline until their DBIRTH; NDEATH makes the node and its devices dead only when its bdSeq is
the birth's (an older session's will is counted stale and ignored); DDEATH makes a device dead;
a metric marked is_historical is counted but does not overwrite the live value. A DBIRTH whose
report_seq is under the highest seen means the line's process restarted and numbers from 1
again: the station's count starts anew, the earlier totals kept (`numbering_restarts`).
Tests: tests/edge/sparkplug/test_watch.py, test_store_forward.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from edge.sparkplug.metrics import REPORT_SEQ
from edge.sparkplug.payload import (BDSEQ, NAMESPACE, REBIRTH, SEQ_MODULO, DataType, Metric, decode_payload,
                                    encode_payload, now_ms, parse_topic, state_payload, state_topic, topic_of)
from edge.sparkplug.publisher import parse_broker_url

log = logging.getLogger(__name__)

REBIRTH_ASK_S = 5.0  # a node that sends data unborn is asked for a rebirth at most this often


class ReportCounter:
    """Distinct report numbers 1, 2, 3... received; memory stays small while they come in order."""

    def __init__(self) -> None:
        self.contiguous = 0  # every number 1..contiguous was received
        self.above: set[int] = set()
        self.duplicates = 0

    def add(self, n: int) -> bool:
        """Count `n`; False when it was already counted."""
        if n <= self.contiguous or n in self.above:
            self.duplicates += 1
            return False
        self.above.add(n)
        while self.contiguous + 1 in self.above:
            self.contiguous += 1
            self.above.discard(self.contiguous)
        return True

    @property
    def received(self) -> int:
        return self.contiguous + len(self.above)

    @property
    def highest(self) -> int:
        return max(self.above, default=self.contiguous)

    @property
    def missing(self) -> int:
        return self.highest - self.received


@dataclass
class DeviceState:
    online: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    reports: ReportCounter = field(default_factory=ReportCounter)
    births: int = 0
    deaths: int = 0
    numbering_restarts: int = 0  # a DBIRTH's report_seq under the highest seen: the line's process restarted
    earlier_received: int = 0  # reports counted before the last numbering restart
    earlier_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"online": self.online, "metrics": dict(self.metrics), "reports_received": self.reports.received,
                "reports_highest": self.reports.highest, "reports_missing": self.reports.missing,
                "reports_duplicate": self.reports.duplicates, "numbering_restarts": self.numbering_restarts,
                "earlier_reports_received": self.earlier_received, "earlier_reports_missing": self.earlier_missing,
                "births": self.births, "deaths": self.deaths}


@dataclass
class NodeState:
    group: str
    node: str
    online: bool = False
    bdseq: int | None = None
    seq: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    births: int = 0
    deaths: int = 0
    stale_deaths: int = 0
    seq_gaps: int = 0
    messages: int = 0
    historical_messages: int = 0
    last_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "node": self.node, "online": self.online, "bdseq": self.bdseq,
                "births": self.births, "deaths": self.deaths, "stale_deaths": self.stale_deaths,
                "seq_gaps": self.seq_gaps, "messages": self.messages,
                "historical_messages": self.historical_messages, "metrics": dict(self.metrics),
                "stations": {d: s.to_dict() for d, s in sorted(self.devices.items())}}


ReportHook = Callable[[str, str, int, bool, int], None]
"""(node, device, report_seq, historical, received_ns): called for each report received."""


class PlantState:
    """Thread-safe: the MQTT thread calls `handle`, the display reads `to_dict` / `render_table`."""

    def __init__(self, on_report: ReportHook | None = None):
        self._lock = threading.Lock()
        self.nodes: dict[tuple[str, str], NodeState] = {}
        self.messages = 0
        self.bad_messages = 0
        self._on_report = on_report

    def handle(self, topic: str, payload: bytes, received_ns: int | None = None) -> tuple[str, str] | None:
        """Take one message; returns (group, node) when the node sent data without a birth this
        watcher saw (it came up after the births): a host asks such a node to be born again."""
        t = parse_topic(topic)
        if t is None:
            return None
        received_ns = time.time_ns() if received_ns is None else received_ns
        try:
            decoded = decode_payload(payload)
        except ValueError:
            with self._lock:
                self.bad_messages += 1
            return None
        if t.message_type in ("NCMD", "DCMD"):
            return None
        with self._lock:
            self.messages += 1
            node = self.nodes.setdefault((t.group, t.node), NodeState(t.group, t.node))
            node.messages += 1
            node.last_ms = decoded.timestamp_ms
            values = {m.name: m.value for m in decoded.metrics if not m.historical}
            if any(m.historical for m in decoded.metrics):
                node.historical_messages += 1
            kind = t.message_type
            if kind == "NDEATH":
                bdseq = values.get(BDSEQ)
                if node.bdseq is None or bdseq == node.bdseq:
                    node.online = False
                    node.deaths += 1
                    for dev in node.devices.values():
                        dev.online = False
                else:
                    node.stale_deaths += 1
                return None
            if kind == "NBIRTH":
                node.online, node.bdseq, node.seq = True, values.get(BDSEQ), decoded.seq
                node.births += 1
                node.metrics = {k: v for k, v in values.items() if k not in (BDSEQ, REBIRTH)}
                for dev in node.devices.values():
                    dev.online = False
                return None
            self._check_seq(node, decoded.seq)
            unborn = (t.group, t.node) if node.births == 0 else None
            if kind == "NDATA":
                node.metrics.update(values)
                return unborn
            dev = node.devices.setdefault(t.device, DeviceState())
            if kind == "DDEATH":
                dev.online = False
                dev.deaths += 1
                return unborn
            if kind == "DBIRTH":
                dev.online = True
                dev.births += 1
                dev.metrics = dict(values)
                first = values.get(REPORT_SEQ)
                if first is not None and int(first) < dev.reports.highest:  # a new process numbers from 1
                    dev.earlier_received += dev.reports.received
                    dev.earlier_missing += dev.reports.missing
                    dev.numbering_restarts += 1
                    dev.reports = ReportCounter()
            else:
                dev.metrics.update(values)
            for m in decoded.metrics:
                if m.name == REPORT_SEQ and m.value is not None:
                    dev.reports.add(int(m.value))
                    if self._on_report is not None:
                        self._on_report(t.node, t.device, int(m.value), m.historical, received_ns)
            return unborn

    @staticmethod
    def _check_seq(node: NodeState, seq: int | None) -> None:
        if seq is None:
            return
        if node.seq is not None and seq != (node.seq + 1) % SEQ_MODULO:
            node.seq_gaps += 1
        node.seq = seq

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"messages": self.messages, "bad_messages": self.bad_messages,
                    "lines": [n.to_dict() for _, n in sorted(self.nodes.items())]}

    def node(self, group: str, node: str) -> NodeState | None:
        with self._lock:
            return self.nodes.get((group, node))


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def render_table(state: dict[str, Any]) -> str:
    """The plant as text: a line a node, then its stations."""
    out = [f"{'line':<24} {'state':<6} {'packml':<12} {'alarms':>6} {'batch':>11} {'stations':>8} {'msgs':>7} "
           f"{'gaps':>4}"]
    for line in state["lines"]:
        m = line["metrics"]
        stations = line["stations"]
        batch = f"{_fmt(m.get('batch/recorded_count'))}/{_fmt(m.get('batch/total_count'))}"
        up = sum(1 for s in stations.values() if s["online"])
        out.append(f"{line['group'] + '/' + line['node']:<24} {'up' if line['online'] else 'DEAD':<6} "
                   f"{_fmt(m.get('line/packml_state')):<12} {_fmt(m.get('alarms/active_count')):>6} {batch:>11} "
                   f"{f'{up}/{len(stations)}':>8} {line['messages']:>7} {line['seq_gaps']:>4}")
        for name, s in stations.items():
            v = s["metrics"]
            out.append(f"  {name:<12} {'up' if s['online'] else 'dead':<5} {_fmt(v.get('battery')):<10} "
                       f"tier {_fmt(v.get('tier')):<2} soc {_fmt(v.get('soc_pct')):>5} % "
                       f"{_fmt(v.get('temp_degc')):>5} degC {_fmt(v.get('current_a'), 2):>6} A "
                       f"{_fmt(v.get('state')):<12} isolated {_fmt(v.get('isolated')):<3} "
                       f"reports {s['reports_received']} missing {s['reports_missing']}")
    return "\n".join(out)


class PlantWatcher:
    """Subscribes to spBv1.0/# (one group or all) and feeds a PlantState; reconnects by itself."""

    def __init__(self, broker_url: str, *, group: str | None = None, host_id: str | None = None,
                 state: PlantState | None = None, keepalive_s: int = 5, rebirth: bool = True):
        self.host, self.port = parse_broker_url(broker_url)
        self.group = group
        self.host_id = host_id
        self.state = state or PlantState()
        self.connected = threading.Event()
        self.connects = 0
        self.rebirths_asked = 0
        self._rebirth = rebirth
        self._asked: dict[tuple[str, str], float] = {}  # when each unborn node was last asked
        self._state_ts = now_ms()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plant-watch-{host_id or id(self)}",
                                   protocol=mqtt.MQTTv311, clean_session=True)
        self._client.reconnect_delay_set(1, 2)
        self._keepalive_s = keepalive_s
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._set_will()

    def _set_will(self) -> None:
        if self.host_id is not None:
            self._state_ts = now_ms()
            self._client.will_set(state_topic(self.host_id), state_payload(False, self._state_ts), qos=1, retain=True)

    def start(self) -> PlantWatcher:
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive_s)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        if self.host_id is not None and self.connected.is_set():
            info = self._client.publish(state_topic(self.host_id), state_payload(False, self._state_ts), qos=1,
                                        retain=True)
            info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe(f"{NAMESPACE}/{self.group}/#" if self.group else f"{NAMESPACE}/#", qos=0)
        if self.host_id is not None:  # after the subscription: a node that hears "online" is heard
            client.publish(state_topic(self.host_id), state_payload(True, self._state_ts), qos=1, retain=True)
        self.connects += 1
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        self._set_will()  # the next session's will carries the next online's timestamp

    def _on_message(self, client, userdata, msg) -> None:
        unborn = self.state.handle(msg.topic, msg.payload)
        if unborn is not None and self._rebirth:
            now = time.monotonic()
            if now - self._asked.get(unborn, -REBIRTH_ASK_S) >= REBIRTH_ASK_S:
                self._asked[unborn] = now
                self.rebirths_asked += 1
                client.publish(topic_of(unborn[0], "NCMD", unborn[1]),
                               encode_payload([Metric(REBIRTH, DataType.BOOLEAN, True)], seq=None), qos=0)
