"""Store-and-forward across a broker restart: the plant's consumer gets every station's every report.

A line of 4 stations changes every 50 ms (each change one DDATA a station, numbered by
`report_seq`); the broker (Mosquitto, no persistence: a restart loses every session and retained
message) is restarted mid-stream. The publisher waits for the primary host's STATE online after
reconnecting, births again, forwards what it stored (historical) and goes on; the consumer
(PlantWatcher, the primary host) counts the report numbers per station: none missing.
"""

from __future__ import annotations

import threading
import time

import pytest

from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher
from edge.sparkplug.watch import PlantWatcher
from tests.edge.sparkplug.helpers import wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration

STEPS = 120
STATIONS = 4


def feed(pub: SparkplugPublisher, steps: range, period_s: float, on_step=None) -> None:
    for k in steps:
        pub.offer(line_snapshot(k, stations=STATIONS))
        if on_step is not None:
            on_step(k)
        time.sleep(period_s)


def test_no_report_is_lost_across_a_broker_restart(broker):
    watcher = PlantWatcher(broker.url, host_id="plant-host").start()
    pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a", primary_host="plant-host",
                                               keepalive_s=2.0))
    restarted = threading.Event()

    def restart_midway(k: int) -> None:
        if k == STEPS // 3:
            broker.restart()
            restarted.set()

    try:
        wait_for(watcher.connected.is_set, what="the watcher")
        pub.start()
        wait_for(lambda: pub.stats()["born"], what="the line's births")
        feed(pub, range(STEPS), 0.05, restart_midway)
        assert restarted.is_set()
        wait_for(lambda: all(_reports(watcher, d).contiguous == STEPS for d in _devices()), timeout_s=30,
                 what=f"reports 1..{STEPS} of every station")
        node = watcher.state.node("plant", "line-a")
        stats = pub.stats()
    finally:
        pub.stop()
        watcher.stop()
    assert node.births >= 2  # the session after the restart born again
    assert watcher.connects >= 2
    for d in _devices():
        r = _reports(watcher, d)
        assert (r.received, r.missing, r.highest) == (STEPS, 0, STEPS)
        # the live value is the last snapshot's (historical values never overwrite it)
        assert node.devices[d].metrics["soc_pct"] == pytest.approx(90.0 - (STEPS - 1) - int(d[-3:]) / 10)
    assert node.metrics["batch/recorded_count"] == STEPS - 1
    assert stats["stored"] + stats["resent"] > 0, stats  # something was stored, then forwarded
    assert stats["dropped_messages"] == 0
    assert stats["forwarded"] >= stats["stored"]


def test_a_full_buffer_drops_the_oldest_and_counts_them(broker):
    watcher = PlantWatcher(broker.url, host_id="plant-host").start()
    pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a", primary_host="plant-host",
                                               buffer_max_messages=10))
    try:
        wait_for(watcher.connected.is_set, what="the watcher")
        broker.stop()
        pub.start()
        for k in range(30):  # one station: 30 reports and 30 NDATA while no broker is there
            pub.offer(line_snapshot(k, stations=1))
        stats = pub.stats()
        assert (stats["stored_messages"], stats["dropped_messages"]) == (10, 50)
        broker.start()
        wait_for(lambda: _reports(watcher, "station000").highest == 30, what="the newest report")
        time.sleep(0.3)
    finally:
        pub.stop()
        watcher.stop()
    r = _reports(watcher, "station000")
    # the buffer kept the newest 10 messages (5 DDATA: reports 26..30, with 5 NDATA); the others
    # are missing, and counted as dropped by the publisher
    assert r.received == 5 and r.missing == 25
    assert pub.stats()["forwarded"] == 10


def _devices() -> list[str]:
    return [f"station{i:03d}" for i in range(STATIONS)]


def _reports(watcher: PlantWatcher, device: str):
    node = watcher.state.node("plant", "line-a")
    if node is None or device not in node.devices:
        from edge.sparkplug.watch import ReportCounter

        return ReportCounter()
    return node.devices[device].reports
