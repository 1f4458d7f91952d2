"""A line that stops (the supervisor ending, e.g. after the core latched the line safe) publishes its
last snapshots before its NDEATH: seen on two demo lines, the plant kept line-a at Execute with 1
alarm while its supervisor had gone to Aborting with the LINK_LOST alarm and ended; the snapshots
still queued in the hub's subscription when `SparkplugHandle.stop()` came were dropped."""

from __future__ import annotations

import time

import pytest

from edge.lineview.model import LineHub
from edge.sparkplug.publisher import start_sparkplug
from edge.sparkplug.watch import PlantWatcher
from tests.edge.sparkplug.helpers import wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration


def test_the_snapshots_queued_when_the_line_stops_are_published_before_its_death(broker):
    watcher = PlantWatcher(broker.url).start()
    hub = LineHub()
    hub.publish(line_snapshot(0, seq=1))
    handle = start_sparkplug(hub, broker.url, "plant", "line-a")
    try:
        wait_for(watcher.connected.is_set, what="the watcher")
        wait_for(lambda: handle.stats()["born"], what="the line's births")
        offer = handle.publisher.offer

        def slow_offer(snapshot):  # the feed thread busy while the line's last snapshot comes, then the stop
            time.sleep(0.5)
            offer(snapshot)

        handle.publisher.offer = slow_offer
        hub.publish(line_snapshot(1, seq=2))
        time.sleep(0.1)
        hub.publish(line_snapshot(2, seq=3, packml="Aborting", alarms=2))
    finally:
        handle.stop()
    try:
        wait_for(lambda: (n := watcher.state.node("plant", "line-a")) is not None and n.deaths >= 1, what="NDEATH")
        node = watcher.state.node("plant", "line-a")
    finally:
        watcher.stop()
    assert node.metrics["line/packml_state"] == "Aborting"
    assert node.metrics["alarms/active_count"] == 2
    assert node.devices["station000"].metrics["report_seq"] == 3
