"""Waiting and recording for the Sparkplug tests against a real broker."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from edge.sparkplug.payload import decode_payload, parse_topic
from edge.sparkplug.publisher import parse_broker_url


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """Every Sparkplug message on the broker, in arrival order: (message_type, node, device, Decoded)."""

    def __init__(self, url: str):
        host, port = parse_broker_url(url)
        self.messages: list = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recorder")
        self.client.on_connect = lambda c, *a: c.subscribe("spBv1.0/#")
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, "the recorder's subscription")

    def _on_message(self, client, userdata, msg) -> None:
        t = parse_topic(msg.topic)
        if t is not None and t.message_type not in ("NCMD", "DCMD"):
            with self._lock:
                self.messages.append((t.message_type, t.node, t.device, decode_payload(msg.payload)))

    def of(self, message_type: str) -> list:
        with self._lock:
            return [m for m in self.messages if m[0] == message_type]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
