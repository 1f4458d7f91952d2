"""`discharge-edge run` serving the line (edge/supervisor/cli.py): with `--http-port` the operator
page comes up on 127.0.0.1 beside the scan loop, which publishes a snapshot after each scan and
carries out a command POSTed to the page (Hold, by the operator's token from the state dir's
access.json) between scans; SIGTERM ends the run and closes the port. Without a serve section
and without the options nothing is served (no access file made, no port)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request

import pytest

from edge.bus import MemoryPlc
from edge.supervisor import cli
from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Clock, StandIn
from tests.edge.supervisor.test_run_cli import parse

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers,
                                 method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def test_run_serves_the_page_and_carries_out_its_commands(line, tmp_path, capsys):  # noqa: F811
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("run's SIGTERM handler needs the main thread")
    state = tmp_path / "state"
    port = free_port()
    plc = MemoryPlc(line.supervisor_map)
    plant = StandIn(plc)
    clock = Clock()
    seen: dict = {}
    client: list[threading.Thread] = []

    def talk():
        try:
            base = f"http://127.0.0.1:{port}"
            seen["first"] = fetch(base + "/api/snapshot")[1]
            token = json.loads((state / "access.json").read_text())["operator"]
            seen["hold"] = fetch(base + "/api/command", {"command": "hold"}, token)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                snap = fetch(base + "/api/snapshot")[1]
                if snap["packml_state"] == "Held":
                    break
                time.sleep(0.05)
            seen["last"] = snap
        except BaseException as exc:
            seen["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # run's handler: the loop ends after its scan

    def after_scan():
        clock.t += 1.0
        plant.step(1.0)
        if not client:
            client.append(threading.Thread(target=talk, name="page-client"))
            client[0].start()

    args = parse("--line", str(line.source), "--state-dir", str(state), "--json", "--start", "--no-tree",
                 "--scan-s", "0.05", "--http-port", str(port))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = cli.run(args, line=line, plc=plc, after_scan=after_scan, clock=clock)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for t in client:
            t.join(30)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "error" not in seen, seen.get("error")
    assert f"operator page on http://127.0.0.1:{port}/" in out.err
    summary = json.loads(out.out)
    assert summary["served"] == {"http": f"http://127.0.0.1:{port}/"} and summary["packml_state"] == "Held"
    assert seen["first"]["line"] == "hil-bench" and seen["first"]["packml_state"] == "Execute"
    assert seen["first"]["seq"] >= 1 and len(seen["first"]["stations"]) == 8
    status, hold = seen["hold"]
    assert status == 200 and hold["ok"] and hold["packml_state"] == "Holding" and hold["role"] == "operator"
    assert seen["last"]["packml_state"] == "Held"
    with pytest.raises(OSError):  # the port is closed with the run
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_run_without_serve_or_options_serves_nothing(line, tmp_path, capsys):  # noqa: F811
    state = tmp_path / "state"
    plc = MemoryPlc(line.supervisor_map)
    clock = Clock()

    def after_scan():
        clock.t += 1.0

    args = parse("--line", str(line.source), "--state-dir", str(state), "--json", "--until-idle", "--no-tree")
    assert getattr(line, "serve", None) in (None, {})
    code = cli.run(args, line=line, plc=plc, after_scan=after_scan, sleep=lambda s: None, clock=clock)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "served" not in json.loads(out.out) and "operator page" not in out.err
    assert not (state / "access.json").exists()


def test_run_publishes_sparkplug_to_a_broker(line, tmp_path, capsys):  # noqa: F811
    from tests.edge.sparkplug.helpers import Recorder, wait_for
    from tools.bench_sparkplug import MosquittoBroker

    try:
        MosquittoBroker.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    state = tmp_path / "state"
    plc = MemoryPlc(line.supervisor_map)
    clock = Clock()
    with MosquittoBroker(tmp_path / "mosquitto") as broker:
        recorder = Recorder(broker.url)
        try:
            def after_scan():
                clock.t += 1.0
                wait_for(lambda: len(recorder.of("DBIRTH")) >= 8, 20, "the line's births")

            args = parse("--line", str(line.source), "--state-dir", str(state), "--json", "--until-idle", "--no-tree",
                         "--sparkplug-broker", broker.url)
            code = cli.run(args, line=line, plc=plc, after_scan=after_scan, sleep=lambda s: None, clock=clock)
            out = capsys.readouterr()
            assert code == 0, out.err
            wait_for(lambda: recorder.of("NDEATH"), 20, "NDEATH at the end of the run")
        finally:
            recorder.close()
    summary = json.loads(out.out)
    assert summary["served"] == {"sparkplug": broker.url}
    sent = summary["sparkplug"]  # the publisher's own counts, to check a consumer's against
    assert sent["node"] == "hil-bench" and sent["born"] is False and sent["dropped_messages"] == 0
    assert sent["NBIRTH"] == 1 and sent["DBIRTH"] == 8 and sent["snapshots_dropped"] == 0
    assert sent["buffer_max_messages"] == 20_000  # the bound the README states
    assert f"Sparkplug B to {broker.url}" in out.err
    births = recorder.of("NBIRTH")
    assert len(births) == 1 and births[0][1] == "hil-bench"
    assert sorted(m[2] for m in recorder.of("DBIRTH")) == sorted({m[2] for m in recorder.of("DBIRTH")})
    assert len({m[2] for m in recorder.of("DBIRTH")}) == 8
    assert not (state / "access.json").exists()  # Sparkplug alone needs no tokens


def test_a_port_in_use_is_refused_with_exit_1(line, tmp_path, capsys):  # noqa: F811
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = parse("--line", str(line.source), "--state-dir", str(tmp_path / "state"), "--until-idle", "--no-tree",
                     "--http-port", str(port))
        code = cli.run(args, line=line, plc=MemoryPlc(line.supervisor_map), sleep=lambda s: None, clock=Clock())
    err = capsys.readouterr().err
    assert code == 1 and f"could not listen on 127.0.0.1:{port}" in err


def test_a_bad_serve_section_refuses_the_line_before_anything_starts(line, tmp_path, capsys):  # noqa: F811
    import dataclasses

    bad = dataclasses.replace(line, serve={"http": {"port": "eighty"}})
    args = parse("--line", str(line.source), "--state-dir", str(tmp_path / "state"), "--until-idle", "--no-tree")
    code = cli.run(args, line=bad, plc=MemoryPlc(line.supervisor_map), sleep=lambda s: None, clock=Clock())
    err = capsys.readouterr().err
    assert code == 1 and "serve.http.port: is 'eighty'" in err
    assert not (tmp_path / "state" / "supervisor.sqlite").exists()  # no store opened
