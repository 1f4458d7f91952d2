"""Store-and-forward across a broker restart: the plant's consumer gets every station's every report.

Two lines of 4 stations change every 50 ms (each change one DDATA a station, numbered by
`report_seq`); the broker (Mosquitto, no persistence: a restart loses every session and retained
message) is restarted mid-stream. The publisher waits for the primary host's STATE online after
reconnecting, births again, forwards what it stored (historical) and goes on; the consumer
(PlantWatcher, the primary host) counts the report numbers per station: none missing.
"""

from __future__ import annotations

import time

import pytest

from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher
from edge.sparkplug.watch import PlantWatcher
from tests.edge.sparkplug.helpers import wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration

STEPS = 120
STATIONS = 4


LINES = ("line-a", "line-b")


@pytest.mark.slow  # 8 s; in make test-slow (the two-demo test there too)
def test_no_report_of_two_lines_is_lost_across_a_broker_restart(broker):
    watcher = PlantWatcher(broker.url, host_id="plant-host").start()
    pubs = {line: SparkplugPublisher(PublisherSettings(broker.url, "plant", line, primary_host="plant-host",
                                                       keepalive_s=2.0)) for line in LINES}
    try:
        wait_for(watcher.connected.is_set, what="the watcher")
        for pub in pubs.values():
            pub.start()
        wait_for(lambda: all(pub.stats()["born"] for pub in pubs.values()), what="both lines' births")
        for k in range(STEPS):
            if k == STEPS // 3:
                broker.restart()
            for line, pub in pubs.items():
                pub.offer(line_snapshot(k, line=line, stations=STATIONS))
            time.sleep(0.05)
        wait_for(lambda: all(_reports(watcher, line, d).contiguous == STEPS for line in LINES for d in _devices()),
                 timeout_s=30, what=f"reports 1..{STEPS} of every station of both lines")
        nodes = {line: watcher.state.node("plant", line) for line in LINES}
        stats = {line: pub.stats() for line, pub in pubs.items()}
    finally:
        for pub in pubs.values():
            pub.stop()
        watcher.stop()
    assert watcher.connects >= 2
    for line, node in nodes.items():
        assert node.births >= 2  # the session after the restart born again
        for d in _devices():
            r = _reports(watcher, line, d)
            assert (r.received, r.missing, r.highest) == (STEPS, 0, STEPS)
            # the live value is the last snapshot's (historical values never overwrite it)
            assert node.devices[d].metrics["soc_pct"] == pytest.approx(90.0 - (STEPS - 1) - int(d[-3:]) / 10)
        assert node.metrics["batch/recorded_count"] == STEPS - 1
        assert stats[line]["stored"] + stats[line]["resent"] > 0, stats  # something was stored, then forwarded
        assert stats[line]["dropped_messages"] == 0
        assert stats[line]["forwarded"] >= stats[line]["stored"]


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
        wait_for(lambda: _reports(watcher, "line-a", "station000").highest == 30, what="the newest report")
        time.sleep(0.3)
    finally:
        pub.stop()
        watcher.stop()
    r = _reports(watcher, "line-a", "station000")
    # the buffer kept the newest 10 messages (5 DDATA: reports 26..30, with 5 NDATA); the others
    # are missing, and counted as dropped by the publisher
    assert r.received == 5 and r.missing == 25
    assert pub.stats()["forwarded"] == 10


def _devices() -> list[str]:
    return [f"station{i:03d}" for i in range(STATIONS)]


def _reports(watcher: PlantWatcher, line: str, device: str):
    node = watcher.state.node("plant", line)
    if node is None or device not in node.devices:
        from edge.sparkplug.watch import ReportCounter

        return ReportCounter()
    return node.devices[device].reports


def test_the_primary_host_leaving_and_coming_back_loses_nothing(broker):
    from edge.sparkplug.watch import PlantState

    plant = PlantState()  # the host's memory survives its MQTT session
    watcher = PlantWatcher(broker.url, host_id="plant-host", state=plant).start()
    pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a", primary_host="plant-host"))
    try:
        wait_for(watcher.connected.is_set, what="the watcher")
        pub.start()
        wait_for(lambda: pub.stats()["born"], what="the births")
        for k in range(20):
            pub.offer(line_snapshot(k, stations=2))
        watcher.stop()  # STATE offline: the line publishes NDEATH and stores what follows
        wait_for(lambda: not pub.stats()["born"], what="the line to stop publishing")
        for k in range(20, 40):
            pub.offer(line_snapshot(k, stations=2))
        assert pub.stats()["stored"] >= 2 * 20
        watcher = PlantWatcher(broker.url, host_id="plant-host", state=plant).start()
        wait_for(lambda: all(_reports(watcher, "line-a", f"station{i:03d}").contiguous == 40 for i in range(2)),
                 what="reports 1..40 of both stations")
    finally:
        pub.stop()
        watcher.stop()
    node = plant.node("plant", "line-a")
    assert node.births == 2  # its NDEATH came after the host left: the host may not have heard it
    assert pub.stats()["dropped_messages"] == 0
