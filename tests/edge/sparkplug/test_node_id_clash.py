"""Two lines publishing under one node id (e.g. two demos without --sparkplug-node: both are named
after their line, demo-hil_modbus): a plant watcher saw one node whose state went back and forth
(154 seq gaps in 10 s) and neither line said a word. Each publisher now hears its node's NBIRTHs
and counts those it did not send (the one born after the other tells) (`foreign_births` in stats(), an error in the log); a node
alone counts none."""

from __future__ import annotations

import logging
import time

import pytest

from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher
from tests.edge.sparkplug.helpers import wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration


def test_two_lines_under_one_node_id_are_told(broker, caplog):
    caplog.set_level(logging.ERROR, logger="edge.sparkplug.publisher")
    first = SparkplugPublisher(PublisherSettings(broker.url, "plant", "demo-line", keepalive_s=2.0))
    second = SparkplugPublisher(PublisherSettings(broker.url, "plant", "demo-line", keepalive_s=2.0))
    try:
        first.offer(line_snapshot(0, line="demo-line", seq=1))
        first.start()
        wait_for(lambda: first.stats().get("births", 0) >= 1, what="the first line's birth")
        time.sleep(1.0)  # its own NBIRTH came back: not foreign
        alone = first.stats().get("foreign_births", 0)
        second.offer(line_snapshot(0, line="demo-line", seq=1, packml="Held"))
        second.start()
        wait_for(lambda: second.stats().get("births", 0) >= 1, what="the second line's birth")
        # the one that births after the other hears it (the second took the first's MQTT client id,
        # bdSeq 1 both, so the first came back and was born again: the second heard that)
        wait_for(lambda: first.stats().get("foreign_births", 0) + second.stats().get("foreign_births", 0) >= 1,
                 what="a line told of the other")
    finally:
        first.stop()
        second.stop()
    assert alone == 0
    assert any("another edge node publishes as plant/demo-line" in r.getMessage() for r in caplog.records)
