"""A line as a Sparkplug B edge node: births, report by exception, store-and-forward, reconnect.

Owns `SparkplugPublisher` (one MQTT session at a time over paho-mqtt, its own thread),
`PublisherSettings`, `parse_broker_url` and `start_sparkplug(hub, broker_url, group, node)`,
which feeds a publisher from a `LineHub` subscription (edge/lineview/model.py).

The session (Sparkplug 3.0):
- Each connect takes the next `bdSeq` (0..255) and sets the MQTT will to NDEATH carrying it
  (QoS 1, not retained; kept in `bdseq_path` when given, so a restarted process goes on from
  it); NBIRTH carries the same bdSeq, `Node Control/Rebirth` and every line
  metric, with `seq` 0; a DBIRTH per station follows, then DATA; `seq` counts every message of
  the node 0..255 and round again. A clean stop publishes NDEATH and disconnects.
- With a primary host (`primary_host`), the node births only while the host's retained
  `spBv1.0/STATE/<host>` says online; a STATE offline newer than the last online makes the node
  publish NDEATH and disconnect, then connect again and wait (the spec's store-and-forward
  trigger). Without one the node births as soon as it is connected.
- An NCMD setting `Node Control/Rebirth` true gets NBIRTH and every DBIRTH again (seq from 0).
- Report by exception (edge/sparkplug/metrics.py): NDATA and DDATA carry only what changed.

Store-and-forward: while the node is not born (no broker, or no host), each NDATA/DDATA goes to
a `StoreBuffer` (edge/sparkplug/buffer.py; default bound 20 000 messages and 8 MiB of payload,
the oldest dropped and counted when full). After the next births they are sent in their order
with every metric `is_historical`, then live data resumes. MQTT QoS 0 (which the spec asks for
DATA) cannot tell what the broker forwarded before it went away, so the messages sent in the last
`resend_window_s` before a session ended (default 1.5 keep-alives + 1 s: the longest a dead
broker can go unnoticed) are forwarded again too, as historical: a consumer counts each station's
reports by `report_seq` and ignores the ones it already has. Reconnect waits 0.2 s, doubling to
5 s. Tests: tests/edge/sparkplug/test_publisher.py, test_store_forward.py.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from edge.sparkplug.buffer import MAX_BYTES, MAX_MESSAGES, StoreBuffer, Stored
from edge.sparkplug.metrics import (DEVICE_METRICS, NODE_METRICS, REPORT_SEQ, changed, device_id, node_values,
                                    station_values)
from edge.sparkplug.payload import (BDSEQ, REBIRTH, SEQ_MODULO, DataType, Metric, check_id, decode_payload,
                                    encode_payload, now_ms, parse_state, state_topic, topic_of)

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883


def parse_broker_url(url: str) -> tuple[str, int]:
    """(host, port) of mqtt://HOST[:PORT] (1883 by default); ValueError naming the URL otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"broker URL {url!r}: expected mqtt://HOST[:PORT] (plain MQTT; TLS is not supported here)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"broker URL {url!r}: {exc}") from exc
    return parts.hostname, port


def node_id_of(line_name: str) -> str:
    """A Sparkplug node id from a line's name ('/', '+', '#' become '_')."""
    return re.sub(r"[/+#]", "_", line_name.strip()) or "line"


def read_bdseq(path: str | None) -> int:
    """The last bdSeq a previous process used (-1: none, or no file), so the next session's is new:
    a late NDEATH of the old session must not match the new birth."""
    if path is None:
        return -1
    try:
        return int(Path(path).read_text().strip()) % SEQ_MODULO
    except (OSError, ValueError):
        return -1


def write_bdseq(path: str | None, bdseq: int) -> None:
    if path is None:
        return
    tmp = Path(f"{path}.tmp")
    try:
        tmp.write_text(f"{bdseq}\n")
        os.replace(tmp, path)
    except OSError as exc:  # a full or read-only disk costs the restart's bdSeq, not the session
        log.warning("sparkplug: cannot keep bdSeq in %s: %s", path, exc)


@dataclass(frozen=True)
class PublisherSettings:
    broker_url: str
    group: str
    node: str
    primary_host: str | None = None
    keepalive_s: float = 5.0
    buffer_max_messages: int = MAX_MESSAGES
    buffer_max_bytes: int = MAX_BYTES
    resend_window_s: float | None = None  # None: 1.5 x keepalive_s + 1 s
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 5.0
    connect_timeout_s: float = 5.0
    bdseq_path: str | None = None  # keeps the last bdSeq across restarts (e.g. <state dir>/sparkplug.bdseq)

    def __post_init__(self) -> None:
        parse_broker_url(self.broker_url)
        check_id("group", self.group)
        check_id("node", self.node)
        if self.primary_host is not None:
            check_id("host", self.primary_host)
        for name in ("keepalive_s", "reconnect_min_s", "reconnect_max_s", "connect_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Sparkplug publisher: {name} must be > 0, not {getattr(self, name)!r}")

    @property
    def resend_s(self) -> float:
        return 1.5 * self.keepalive_s + 1.0 if self.resend_window_s is None else float(self.resend_window_s)


class SparkplugPublisher:
    """`offer(snapshot)` from any thread; `start()` runs the MQTT session thread; `stop()` ends it."""

    def __init__(self, settings: PublisherSettings, *, on_sent=None):
        self.s = settings
        self._host, self._port = parse_broker_url(settings.broker_url)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._on_sent = on_sent  # test and bench hook: (message_type, device, metrics) after a publish
        # what the line is now, and what was last reported
        self._node_now: dict[str, Any] = {}
        self._node_sent: dict[str, Any] = {}
        self._dev_now: dict[str, dict[str, Any]] = {}
        self._dev_sent: dict[str, dict[str, Any]] = {}
        self._report_seq: dict[str, int] = {}
        # the session
        self._bdseq = read_bdseq(settings.bdseq_path)
        self._seq = 0
        self._born = False
        self._connected = False
        self._host_online_ms = -1  # the newest STATE timestamp seen
        self._host_online = False
        self._session_over = threading.Event()
        self._buffer = StoreBuffer(settings.buffer_max_messages, settings.buffer_max_bytes)
        self._window: collections.deque[tuple[float, Stored]] = collections.deque()
        self.counts = collections.Counter()
        self._births_sent: collections.deque[bytes] = collections.deque(maxlen=8)  # our NBIRTHs, as sent

    # -- intake ----------------------------------------------------------------------------------------
    def offer(self, snapshot: Any) -> None:
        """Report what changed in `snapshot` (a LineSnapshot): live when born, else stored."""
        t_ms = now_ms()
        nv = node_values(snapshot)
        stations = {device_id(st.index): station_values(st) for st in snapshot.stations}
        with self._lock:
            self._node_now = nv
            diff = changed(nv, self._node_sent)
            if diff:
                self._emit("NDATA", None, self._metrics(NODE_METRICS, diff, t_ms))
                self._node_sent.update(diff)
            for dev in [d for d in self._dev_now if d not in stations]:
                self._drop_device(dev)
            for dev, values in stations.items():
                sent = self._dev_sent.get(dev)
                diff = changed(values, sent or {})
                if not diff:
                    continue
                seq = self._report_seq.get(dev, 0) + 1
                diff[REPORT_SEQ] = seq
                full = {**values, REPORT_SEQ: seq}
                if sent is None and self._born:  # a station new in this session: its birth is its first report
                    # (kept for a resend as a DDATA of every metric, like any report)
                    self._publish("DBIRTH", dev, self._metrics(DEVICE_METRICS, full, t_ms), window_as="DDATA")
                else:
                    self._emit("DDATA", dev, self._metrics(DEVICE_METRICS, diff, t_ms))
                self._report_seq[dev] = seq
                self._dev_now[dev] = full
                if sent is None:
                    self._dev_sent[dev] = dict(full)
                else:
                    sent.update(diff)

    def _drop_device(self, dev: str) -> None:
        self._dev_now.pop(dev, None)
        self._dev_sent.pop(dev, None)
        if self._born:
            self._publish("DDEATH", dev, [])

    @staticmethod
    def _metrics(types: dict[str, DataType], values: dict[str, Any], t_ms: int) -> list[Metric]:
        return [Metric(name, types[name], value, t_ms) for name, value in values.items()]

    def _emit(self, message_type: str, device: str | None, metrics: list[Metric]) -> None:
        if self._born and self._publish(message_type, device, metrics):
            return
        stored = Stored(message_type, device, tuple(metrics), len(encode_payload(metrics, seq=0))).historical()
        self._buffer.append(stored)
        self.counts["stored"] += 1

    def _publish(self, message_type: str, device: str | None, metrics: list[Metric], *,
                 window_as: str | None = None) -> bool:
        """Publish one message with the next seq (lock held); False when the session is gone. A
        report (NDATA, DDATA, or `window_as` one) is kept for `resend_s` in the resend window."""
        client = self._client
        if client is None:
            self._born = False
            return False
        data = encode_payload(metrics, seq=self._seq)
        if message_type == "NBIRTH":
            self._births_sent.append(data)  # before it can come back to us
        info = client.publish(topic_of(self.s.group, message_type, self.s.node, device), data, qos=0)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._born = False
            return False
        self._seq = (self._seq + 1) % SEQ_MODULO
        self.counts[message_type] += 1
        kept_as = window_as or message_type
        if kept_as in ("NDATA", "DDATA"):
            now = time.monotonic()
            self._window.append((now, Stored(kept_as, device, tuple(metrics), len(data))))
            while self._window and self._window[0][0] < now - self.s.resend_s:
                self._window.popleft()
        if self._on_sent is not None:
            self._on_sent(message_type, device, metrics)
        return True

    # -- births ----------------------------------------------------------------------------------------
    def _birth(self) -> None:
        """NBIRTH, every DBIRTH, then the stored messages in order (lock held)."""
        t_ms = now_ms()
        self._seq = 0
        self._window.clear()
        node = [Metric(BDSEQ, DataType.UINT64, self._bdseq, t_ms), Metric(REBIRTH, DataType.BOOLEAN, False, t_ms)]
        node += self._metrics(NODE_METRICS, self._node_now, t_ms)
        self._born = True
        if not self._publish("NBIRTH", None, node):
            return
        self._node_sent = dict(self._node_now)
        for dev, values in self._dev_now.items():
            if not self._publish("DBIRTH", dev, self._metrics(DEVICE_METRICS, values, t_ms)):
                return
            self._dev_sent[dev] = dict(values)
        self.counts["births"] += 1
        while len(self._buffer):
            item = self._buffer.popleft()
            if not self._publish(item.message_type, item.device, list(item.metrics)):
                self._buffer.extend_front([item])
                return
            self.counts["forwarded"] += 1

    def _end_session(self) -> None:
        """The session is over: what was sent in the resend window is stored again, in front."""
        with self._lock:
            self._born = False
            self._connected = False
            self._client = None
            items = [item.historical() for _, item in self._window]
            self._window.clear()
            if items:
                self._buffer.extend_front(items)
                self.counts["resent"] += len(items)

    # -- the MQTT session thread -----------------------------------------------------------------------
    def start(self) -> SparkplugPublisher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sparkplug-{self.s.node}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish NDEATH (if born), disconnect and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _make_client(self, bdseq: int) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"spb-{self.s.group}-{self.s.node}-{bdseq}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        death = encode_payload([Metric(BDSEQ, DataType.UINT64, bdseq)], seq=None)
        client.will_set(topic_of(self.s.group, "NDEATH", self.s.node), death, qos=1, retain=False)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(60, 60)  # reconnecting is this class's job (a new will each time)
        return client

    def _run(self) -> None:
        """One MQTT session after another. paho's own network thread (loop_start) does every read
        and write, so publishes from other threads only queue (paho's thread-safe mode); this
        thread connects, waits for the session's end and ends it, without paho's own reconnect."""
        delay = self.s.reconnect_min_s
        while not self._stop.is_set():
            self._bdseq = (self._bdseq + 1) % SEQ_MODULO
            write_bdseq(self.s.bdseq_path, self._bdseq)
            client = self._make_client(self._bdseq)
            self._session_over.clear()
            try:
                client.connect(self._host, self._port, keepalive=max(1, round(self.s.keepalive_s)))
            except OSError as exc:
                log.debug("sparkplug %s: connect to %s:%s: %s", self.s.node, self._host, self._port, exc)
                self.counts["connect_failed"] += 1
                self._stop.wait(delay)
                delay = min(2 * delay, self.s.reconnect_max_s)
                continue
            with self._lock:
                self._client = client
            self.counts["sessions"] += 1
            client.loop_start()
            started = time.monotonic()
            while not self._stop.is_set() and not self._session_over.is_set():
                self._session_over.wait(0.1)
                if not self._connected and time.monotonic() - started > self.s.connect_timeout_s:
                    break
            if self._connected:
                delay = self.s.reconnect_min_s
            if self._stop.is_set():
                self._goodbye(client)
            self._end_session()
            client.disconnect()  # also ends paho's loop before it reconnects on its own
            client.loop_stop()
            if not self._stop.is_set():
                self._stop.wait(delay)
                delay = min(2 * delay, self.s.reconnect_max_s)

    def _goodbye(self, client: mqtt.Client) -> None:
        if not self._connected:
            return
        with self._lock:
            death = encode_payload([Metric(BDSEQ, DataType.UINT64, self._bdseq)], seq=None)
            info = client.publish(topic_of(self.s.group, "NDEATH", self.s.node), death, qos=1)
            self._born = False
        try:
            info.wait_for_publish(2.0)
        except (RuntimeError, ValueError):  # the connection went meanwhile: the will says it
            pass

    # paho callbacks: they run in paho's network thread
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("sparkplug %s: broker refused the connection: %s", self.s.node, reason_code)
            self._session_over.set()
            return
        self._connected = True
        client.subscribe(topic_of(self.s.group, "NCMD", self.s.node), qos=0)
        client.subscribe(topic_of(self.s.group, "NBIRTH", self.s.node), qos=0)  # another node of our id?
        if self.s.primary_host is not None:
            self._host_online = False
            client.subscribe(state_topic(self.s.primary_host), qos=1)
        else:
            with self._lock:
                self._birth()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._lock:
            self._born = False  # what is offered from now on is stored
        self._session_over.set()

    def _on_message(self, client, userdata, msg) -> None:
        if self.s.primary_host is not None and msg.topic == state_topic(self.s.primary_host):
            state = parse_state(msg.payload)
            if state is None or state[1] < self._host_online_ms:
                return
            online, self._host_online_ms = state
            with self._lock:
                if online and not self._born:
                    self._host_online = True
                    self._birth()
                elif not online and self._born:  # the host went away: NDEATH, then reconnect and wait
                    death = encode_payload([Metric(BDSEQ, DataType.UINT64, self._bdseq)], seq=None)
                    client.publish(topic_of(self.s.group, "NDEATH", self.s.node), death, qos=1)
                    self._born = False
                    self._session_over.set()
            return
        if msg.topic == topic_of(self.s.group, "NBIRTH", self.s.node):
            if msg.payload not in self._births_sent:  # not ours: two lines publish as one node
                self.counts["foreign_births"] += 1
                if self.counts["foreign_births"] in (1, 10, 100) or self.counts["foreign_births"] % 1000 == 0:
                    log.error("sparkplug %s: another edge node publishes as %s/%s (%d births not ours): a plant "
                              "sees the two lines as one; give each line its own node id (serve.sparkplug.node, "
                              "--sparkplug-node)", self.s.node, self.s.group, self.s.node,
                              self.counts["foreign_births"])
            return
        try:
            decoded = decode_payload(msg.payload)
        except ValueError:
            self.counts["bad_command"] += 1
            return
        if any(m.name == REBIRTH and m.value is True for m in decoded.metrics):
            with self._lock:
                if self._born:
                    self._birth()

    # -- what it did -----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"node": self.s.node, "group": self.s.group, "bdseq": self._bdseq, "born": self._born,
                    "connected": self._connected, "stored_messages": len(self._buffer),
                    "stored_bytes": self._buffer.bytes, "stored_high_water_messages": self._buffer.high_water_messages,
                    "dropped_messages": self._buffer.dropped_messages, "dropped_bytes": self._buffer.dropped_bytes,
                    "buffer_max_messages": self._buffer.max_messages, "buffer_max_bytes": self._buffer.max_bytes,
                    **{k: int(v) for k, v in sorted(self.counts.items())}}


class SparkplugHandle:
    """A running publisher fed by a LineHub subscription; `stop()` ends both threads. Without a
    node id the publisher starts at the first snapshot, named after its line."""

    def __init__(self, hub: Any, settings: PublisherSettings, *, named: bool):
        self._settings = settings
        self.publisher: SparkplugPublisher | None = SparkplugPublisher(settings) if named else None
        self._sub = hub.subscribe()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name=f"sparkplug-feed-{settings.node}", daemon=True)

    def _start(self, first: Any | None) -> None:
        if self.publisher is not None:
            if first is not None:
                self.publisher.offer(first)
            self.publisher.start()
        self._thread.start()

    def _feed(self) -> None:
        """Offer each snapshot; once stopping, those still queued (the line's last: an Aborting, its
        alarm) are offered before the thread ends, so they go out before the NDEATH."""
        while True:
            snapshot = self._sub.get(0.2)
            if snapshot is None:
                if self._stop.is_set():
                    return
                continue
            if snapshot.seq <= 0:
                continue
            if self.publisher is None:
                named = dataclasses.replace(self._settings, node=node_id_of(snapshot.line or "line"))
                self.publisher = SparkplugPublisher(named)
                self.publisher.start()
            try:
                self.publisher.offer(snapshot)
            except ValueError as exc:  # a value no metric can carry: say so, keep publishing
                self.publisher.counts["refused_snapshots"] += 1
                log.warning("sparkplug %s: snapshot %s refused: %s", self.publisher.s.node, snapshot.seq, exc)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._sub.close()  # get() still hands out what is queued, then None at once
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self.publisher is not None:
            self.publisher.stop(timeout_s)

    def stats(self) -> dict[str, Any]:
        base = self.publisher.stats() if self.publisher is not None else {"node": None, "born": False}
        return {**base, "snapshots_dropped": self._sub.dropped}


def start_sparkplug(hub: Any, broker_url: str, group: str = "plant", node: str | None = None, *,
                    primary_host: str | None = None, **settings: Any) -> SparkplugHandle:
    """Publish the line behind `hub` (a LineHub) as Sparkplug B node `node` of `group` on the
    broker at `broker_url`. Without `node`, the line's name (from the hub's latest snapshot, or
    the first one to come). Returns the handle; `handle.stop()` publishes NDEATH and ends its
    threads. Raises ValueError on a bad URL, id or setting (before any thread starts)."""
    latest = hub.latest()
    named = node is not None or latest.seq > 0
    if node is None:
        node = node_id_of(latest.line or "line")
    handle = SparkplugHandle(hub, PublisherSettings(broker_url, group, node, primary_host=primary_host, **settings),
                             named=named)
    handle._start(latest if latest.seq > 0 else None)
    return handle


CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "broker": (str,), "group": (str,), "node": (str,), "primary_host": (str,), "keepalive_s": (int, float),
    "buffer_max_messages": (int,), "buffer_max_bytes": (int,), "resend_window_s": (int, float),
    "bdseq_path": (str,)}
DEFAULT_GROUP = "plant"


def sparkplug_options(raw: Any, where: str = "serve.sparkplug") -> dict[str, Any]:
    """The keyword arguments of `start_sparkplug` from the line file's `serve.sparkplug` mapping:
    `broker` (required), `group` (default "plant"), `node` (default: the line's name),
    `primary_host`, `keepalive_s`, `buffer_max_messages`, `buffer_max_bytes`, `resend_window_s`.
    Every problem is reported together in one ValueError, each naming `where` and the key."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: is {raw!r}; allowed: a mapping with broker: mqtt://HOST[:PORT]")
    problems = [f"{where}.{k}: unknown key; allowed: {', '.join(CONFIG_KEYS)}" for k in raw if k not in CONFIG_KEYS]
    for key, types in CONFIG_KEYS.items():
        if key in raw and (not isinstance(raw[key], types) or isinstance(raw[key], bool)):
            problems.append(f"{where}.{key}: is {raw[key]!r}; allowed: {' or '.join(t.__name__ for t in types)}")
    if "broker" not in raw:
        problems.append(f"{where}.broker: missing; allowed: mqtt://HOST[:PORT]")
    if not problems:
        opts = {"broker_url": raw["broker"], "group": raw.get("group", DEFAULT_GROUP), "node": raw.get("node"),
                **{k: raw[k] for k in CONFIG_KEYS if k in raw and k not in ("broker", "group", "node")}}
        try:
            PublisherSettings(**{**opts, "node": opts["node"] or "line"})
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return opts
