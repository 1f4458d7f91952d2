"""A line's Sparkplug session on a real Mosquitto: births, report by exception, rebirth, death."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from edge.lineview.model import LineHub
from edge.sparkplug.metrics import REPORT_SEQ
from edge.sparkplug.payload import BDSEQ, REBIRTH, DataType, Metric, encode_payload, topic_of
from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher, parse_broker_url, start_sparkplug
from tests.edge.sparkplug.helpers import Recorder, wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration


def test_births_then_data_on_change_only_then_death(broker):
    rec = Recorder(broker.url)
    pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a"))
    try:
        pub.offer(line_snapshot(0))
        pub.start()
        wait_for(lambda: len(rec.of("DBIRTH")) == 4 and len(rec.of("DDATA")) == 4, what="births and stored data")
        nbirth = rec.messages[0]
        assert nbirth[0] == "NBIRTH" and nbirth[3].seq == 0
        names = {m.name: m.value for m in nbirth[3].metrics}
        assert names[BDSEQ] == 0 and names[REBIRTH] is False and names["line/packml_state"] == "Execute"
        assert [m[3].seq for m in rec.messages[:5]] == [0, 1, 2, 3, 4]
        # the snapshot offered before the session: stored, then forwarded after the births as historical
        assert all(m.historical for msg in rec.of("DDATA") for m in msg[3].metrics)
        dbirth = {m.name: m.value for m in rec.of("DBIRTH")[2][3].metrics}
        assert dbirth == {"battery": "B002", "tier": 3, "soc_pct": 89.8, "temp_degc": 27.0, "current_a": -5.0,
                          "state": "discharging", "isolated": True, "cause": "overtemp", REPORT_SEQ: 1}
        before = len(rec.messages)
        pub.offer(line_snapshot(0))  # nothing changed: nothing sent
        pub.offer(line_snapshot(1))  # every station's SOC and temperature changed, and the batch
        wait_for(lambda: len(rec.messages) == before + 5, what="one NDATA and four DDATA")
        new = rec.messages[before:]
        assert sorted(m[0] for m in new) == ["DDATA"] * 4 + ["NDATA"]
        ddata = {m.name: m.value for m in new[1][3].metrics if not m.historical}
        assert ddata == {"soc_pct": 89.0, "temp_degc": 25.5, REPORT_SEQ: 2}
        assert [m[3].seq for m in rec.messages] == list(range(len(rec.messages)))
    finally:
        pub.stop()
    wait_for(lambda: rec.of("NDEATH"), what="NDEATH")
    assert {m.name: m.value for m in rec.of("NDEATH")[0][3].metrics} == {BDSEQ: 0}
    rec.close()
    assert pub.stats()["dropped_messages"] == 0


def test_a_rebirth_command_gets_every_birth_again(broker):
    rec = Recorder(broker.url)
    hub = LineHub()
    hub.publish(line_snapshot(0, stations=2))
    handle = start_sparkplug(hub, broker.url, "plant")  # the node id from the line's name
    try:
        wait_for(lambda: len(rec.of("DBIRTH")) == 2, what="the first births")
        host, port = parse_broker_url(broker.url)
        cmd = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="host")
        cmd.connect(host, port)
        cmd.loop_start()
        cmd.publish(topic_of("plant", "NCMD", "line-a"), encode_payload([Metric(REBIRTH, DataType.BOOLEAN, True)],
                                                                       seq=None)).wait_for_publish(5)
        wait_for(lambda: len(rec.of("NBIRTH")) == 2 and len(rec.of("DBIRTH")) == 4, what="the births again")
        assert rec.of("NBIRTH")[1][3].seq == 0
        cmd.disconnect()
        cmd.loop_stop()
        hub.publish(line_snapshot(1, stations=2))  # the hub's live snapshots reach the publisher
        wait_for(lambda: any(not m.historical for msg in rec.of("DDATA") for m in msg[3].metrics),
                 what="live DDATA from the hub")
    finally:
        handle.stop()
        rec.close()
    assert handle.stats()["births"] == 2


def test_a_station_that_leaves_gets_ddeath(broker):
    rec = Recorder(broker.url)
    pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a")).start()
    try:
        wait_for(lambda: rec.of("NBIRTH"), what="NBIRTH")
        pub.offer(line_snapshot(0, stations=3))
        wait_for(lambda: len(rec.of("DBIRTH")) == 3, what="a DBIRTH per new station")
        pub.offer(line_snapshot(1, stations=2))
        wait_for(lambda: rec.of("DDEATH"), what="DDEATH")
        assert rec.of("DDEATH")[0][2] == "station002"
    finally:
        pub.stop()
        rec.close()


def test_bad_settings_are_refused_before_anything_starts():
    with pytest.raises(ValueError, match="expected mqtt://"):
        PublisherSettings("tcp://127.0.0.1:1", "plant", "line-a")
    with pytest.raises(ValueError, match="node id"):
        PublisherSettings("mqtt://127.0.0.1:1", "plant", "line#a")


def test_the_line_files_mapping_gives_the_publishers_options():
    from edge.sparkplug.publisher import sparkplug_options

    assert sparkplug_options({"broker": "mqtt://127.0.0.1:1884", "primary_host": "scada", "buffer_max_messages": 100}) \
        == {"broker_url": "mqtt://127.0.0.1:1884", "group": "plant", "node": None, "primary_host": "scada",
            "buffer_max_messages": 100}
    with pytest.raises(ValueError) as err:
        sparkplug_options({"brokr": "x", "keepalive_s": "5"}, where="line.yaml:12: serve.sparkplug")
    text = str(err.value)
    assert "line.yaml:12: serve.sparkplug.brokr: unknown key" in text
    assert "serve.sparkplug.keepalive_s: is '5'" in text and "serve.sparkplug.broker: missing" in text
    with pytest.raises(ValueError, match="expected mqtt://"):
        sparkplug_options({"broker": "http://x"})


def test_a_killed_line_is_declared_dead_by_its_will(broker):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from edge.sparkplug.watch import PlantWatcher

    root = Path(__file__).resolve().parents[3]
    code = ("import sys, time; from edge.sparkplug.publisher import PublisherSettings, SparkplugPublisher; "
            "from tests.edge.sparkplug.lines import line_snapshot; "
            f"p = SparkplugPublisher(PublisherSettings({broker.url!r}, 'plant', 'line-k')); "
            "p.offer(line_snapshot(0, line='line-k', stations=2)); p.start(); time.sleep(120)")
    watcher = PlantWatcher(broker.url).start()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        wait_for(lambda: (n := watcher.state.node("plant", "line-k")) is not None and n.online
                 and len(n.devices) == 2, what="the child's births")
        child.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the will
        child.wait(10)
        wait_for(lambda: not watcher.state.node("plant", "line-k").online, what="the will's NDEATH")
        node = watcher.state.node("plant", "line-k")
        assert (node.deaths, node.bdseq, node.stale_deaths) == (1, 0, 0)
        assert not any(d.online for d in node.devices.values())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        watcher.stop()


def test_bdseq_goes_on_across_a_restart_of_the_process(broker, tmp_path):
    path = str(tmp_path / "sparkplug.bdseq")
    rec = Recorder(broker.url)
    try:
        for _ in range(2):
            pub = SparkplugPublisher(PublisherSettings(broker.url, "plant", "line-a", bdseq_path=path)).start()
            wait_for(lambda: pub.stats()["born"], what="the births")
            pub.stop()
        wait_for(lambda: len(rec.of("NDEATH")) == 2, what="two NDEATH")
        births = [{m.name: m.value for m in msg[3].metrics}[BDSEQ] for msg in rec.of("NBIRTH")]
        deaths = [{m.name: m.value for m in msg[3].metrics}[BDSEQ] for msg in rec.of("NDEATH")]
    finally:
        rec.close()
    assert births == deaths == [0, 1]
    assert (tmp_path / "sparkplug.bdseq").read_text() == "1\n"


def test_without_a_node_id_the_line_is_named_by_its_first_snapshot(broker):
    rec = Recorder(broker.url)
    hub = LineHub()  # nothing published yet: the name is not known at start
    handle = start_sparkplug(hub, broker.url, "plant")
    try:
        assert handle.stats()["node"] is None
        hub.publish(line_snapshot(0, line="line/7", stations=1))
        wait_for(lambda: rec.of("DBIRTH") or len(rec.of("DDATA")) == 1, what="the line's first report")
        assert {m[1] for m in rec.messages} == {"line_7"}
    finally:
        handle.stop()
        rec.close()
