"""`discharge-edge plant watch`: two lines on one Mosquitto, both shown; a line dead after NDEATH."""

from __future__ import annotations

import argparse
import json
import threading

import pytest

from edge.lineview.model import LineHub
from edge.sparkplug import cli
from edge.sparkplug.publisher import start_sparkplug
from edge.sparkplug.watch import render_table
from tests.edge.sparkplug.helpers import wait_for
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.integration


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="discharge-edge")
    cli.register(p.add_subparsers(dest="command", required=True))
    return p


def test_two_lines_on_one_broker_are_both_shown_and_a_stopped_one_is_dead(broker, capsys):
    hubs = {name: LineHub() for name in ("line-a", "line-b")}
    for name, hub in hubs.items():
        hub.publish(line_snapshot(0, line=name, stations=3 if name == "line-a" else 2))
    done = threading.Event()
    result = {}

    def run_watch() -> None:
        result.update(cli.watch(broker.url, group="plant", host_id="plant-host", stop_event=done))

    watcher = threading.Thread(target=run_watch)
    watcher.start()
    handles = {}
    try:
        wait_for(lambda: broker.url and _retained_state_seen(broker.url), what="the watcher's STATE online")
        handles = {name: start_sparkplug(hub, broker.url, "plant", primary_host="plant-host")
                   for name, hub in hubs.items()}
        wait_for(lambda: all(h.stats()["born"] for h in handles.values()), what="both lines born")
        hubs["line-a"].publish(line_snapshot(1, line="line-a", stations=3, packml="Held"))
        wait_for(lambda: all(h.stats()["DDATA"] >= 3 for h in handles.values() if h.publisher.s.node == "line-a"),
                 what="line-a's data")
        handles.pop("line-b").stop()  # NDEATH: the plant sees line-b dead
    finally:
        for h in handles.values():
            h.stop()
        done.set()
        watcher.join(10)
    lines = {line["node"]: line for line in result["lines"]}
    assert set(lines) == {"line-a", "line-b"}
    assert lines["line-a"]["metrics"]["line/packml_state"] == "Held"
    assert lines["line-b"]["online"] is False and lines["line-b"]["deaths"] == 1
    assert sorted(lines["line-a"]["stations"]) == ["station000", "station001", "station002"]
    assert lines["line-a"]["stations"]["station001"]["metrics"]["soc_pct"] == pytest.approx(88.9)
    assert lines["line-a"]["stations"]["station001"]["reports_received"] == 2
    table = render_table(result)
    assert "plant/line-a" in table and "plant/line-b" in table and "DEAD" in table


def test_the_command_prints_one_json_object_at_the_end(broker, capsys):
    hub = LineHub()
    hub.publish(line_snapshot(0, stations=2))
    # the line waits for its primary host: the command, as that host, sees the births
    handle = start_sparkplug(hub, broker.url, "plant", primary_host="plant-host")
    try:
        args = parser().parse_args(["plant", "watch", "--broker", broker.url, "--host-id", "plant-host", "--json",
                                    "--duration", "2.0"])
        assert args.func(args) == 0
    finally:
        handle.stop()
    out = json.loads(capsys.readouterr().out)
    assert out["connected"] is True and out["broker"] == broker.url
    [line] = out["lines"]
    assert (line["node"], line["online"], line["births"]) == ("line-a", True, 1)
    assert {name: s["online"] for name, s in line["stations"].items()} == {"station000": True, "station001": True}
    assert line["metrics"]["alarms/active_count"] == 1


def test_bad_usage_and_no_broker(capsys):
    args = parser().parse_args(["plant", "watch", "--broker", "http://x", "--count", "1"])
    assert args.func(args) == 2
    assert "expected mqtt://" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["plant", "watch", "--broker", "mqtt://127.0.0.1:1", "--count", "1", "--duration", "1"])
    args = parser().parse_args(["plant", "watch", "--broker", "mqtt://127.0.0.1:1", "--json", "--duration", "0.3"])
    assert args.func(args) == 1  # nothing listens on port 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["connected"] is False
    assert "no broker reached at mqtt://127.0.0.1:1" in captured.err


def _retained_state_seen(url: str) -> bool:
    import paho.mqtt.client as mqtt

    from edge.sparkplug.publisher import parse_broker_url

    host, port = parse_broker_url(url)
    got = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="state-probe")
    c.on_connect = lambda cl, *a: cl.subscribe("spBv1.0/STATE/plant-host")
    c.on_message = lambda *a: got.set()
    c.connect(host, port)
    c.loop_start()
    try:
        return got.wait(1.0)
    finally:
        c.disconnect()
        c.loop_stop()


def test_a_watcher_that_comes_late_asks_for_a_rebirth_and_learns_every_value(broker):
    hub = LineHub()
    hub.publish(line_snapshot(0, stations=2))
    handle = start_sparkplug(hub, broker.url, "plant")  # no primary host: born before anyone listens
    from edge.sparkplug.watch import PlantWatcher

    watcher = None
    try:
        wait_for(lambda: handle.stats()["born"], what="the line born")
        watcher = PlantWatcher(broker.url).start()
        wait_for(watcher.connected.is_set, what="the watcher")
        hub.publish(line_snapshot(1, stations=2))  # data from a node the watcher never saw born
        wait_for(lambda: (n := watcher.state.node("plant", "line-a")) is not None and n.births == 1,
                 what="the rebirth")
        node = watcher.state.node("plant", "line-a")
        assert watcher.rebirths_asked == 1
        assert node.metrics["line/packml_state"] == "Execute"
        assert node.devices["station001"].metrics["battery"] == "B001"  # never changed, known from DBIRTH
    finally:
        if watcher is not None:
            watcher.stop()
        handle.stop()


def test_two_line_processes_and_the_installed_command(broker):
    """Two demo-like line processes on one Mosquitto; `python -m edge.cli plant watch` shows both."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    lines = [subprocess.Popen([sys.executable, "-m", "tests.edge.sparkplug.line_process", broker.url, name,
                               str(n), "plant-host"], cwd=root, env=env) for name, n in (("line-a", 3), ("line-b", 2))]
    try:
        out = subprocess.run([sys.executable, "-m", "edge.cli", "plant", "watch", "--broker", broker.url,
                              "--host-id", "plant-host", "--json", "--duration", "4"],
                             cwd=root, env=env, capture_output=True, text=True, timeout=60)
    finally:
        for p in lines:
            p.terminate()
        for p in lines:
            p.wait(20)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    shown = {line["node"]: line for line in result["lines"]}
    assert set(shown) == {"line-a", "line-b"}
    for name, n in (("line-a", 3), ("line-b", 2)):
        assert shown[name]["online"] and shown[name]["births"] == 1
        assert len(shown[name]["stations"]) == n
        assert all(s["reports_missing"] == 0 and s["reports_received"] >= 2 for s in shown[name]["stations"].values())
