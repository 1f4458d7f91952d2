"""The operator page's server (edge/hmi/app.py, server.py) over HTTP on 127.0.0.1, with a real
FlowEngine behind the hub: the page and its files, the snapshot, the live events, commands by
token and role (401 without a known token, 409 refused with the reason), the Host check, the
report, and a stop that ends the event streams and the thread."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest

from tests.edge.hmi.conftest import run_batch

pytestmark = pytest.mark.integration


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def post(url: str, body, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_page_its_files_and_the_snapshot(served):
    cells = run_batch(served)
    status, body, headers = get(served.url + "/")
    assert status == 200 and b'id="stations"' in body and b"/static/app.js" in body
    status, body, headers = get(served.url + "/static/app.js")
    assert status == 200 and b"EventSource" in body and "javascript" in headers["content-type"]
    status, body, _ = get(served.url + "/api/snapshot")
    snap = json.loads(body)
    assert status == 200 and snap["line"] == "hil-bench" and snap["packml_state"] == "Execute"
    assert snap["batch"]["total"] == len(cells) and len(snap["stations"]) == 8
    assert any(s["state"] == "discharging" and s["battery"] in cells for s in snap["stations"])
    assert snap["seq"] == served.hub.latest().seq
    status, body, _ = get(served.url + "/api/snapshot", {"Host": "evil.example:8080"})
    assert status == 400  # DNS rebinding: another site's name is refused


def test_commands_by_token_and_role(served):
    run_batch(served)
    op, eng = served.token("operator"), served.token("engineer")

    def client():
        out = {"none": post(served.url + "/api/command", {"command": "hold"}),
               "unknown": post(served.url + "/api/command", {"command": "hold"}, "x" * 32),
               "whoami": get(served.url + "/api/whoami", {"Authorization": f"Bearer {eng}"}),
               "bad": post(served.url + "/api/command", b"{not json", op),
               "setpoint_op": post(served.url + "/api/command", {"command": "setpoint", "name": "max_current_a",
                                                                  "value": 3}, op),
               "setpoint_eng": post(served.url + "/api/command", {"command": "setpoint", "name": "max_current_a",
                                                                   "value": 3}, eng),
               "hold": post(served.url + "/api/command", {"command": "hold"}, op),
               "hold_again": post(served.url + "/api/command", {"command": "hold"}, op)}
        return out

    out = served.drive(client)
    assert out["none"][0] == 401 and "no known token" in out["none"][1]["message"]
    assert out["unknown"][0] == 401
    assert out["whoami"][0] == 200 and json.loads(out["whoami"][1]) == {"role": "engineer"}
    assert out["bad"][0] == 400 and "bad request" in out["bad"][1]["message"]
    assert out["setpoint_op"][0] == 409 and "may not give 'setpoint'" in out["setpoint_op"][1]["message"]
    assert out["setpoint_eng"][0] == 200 and served.rig.engine.line.limits.max_current_a == 3.0
    assert out["hold"][0] == 200 and out["hold"][1]["packml_state"] == "Holding" and out["hold"][1]["role"] == "operator"
    assert out["hold_again"][0] == 409 and "Hold in state Held" in out["hold_again"][1]["message"]
    events = [e for e in served.rig.engine.store.events() if e.kind == "line_command"]
    # a role's refusal is answered by the hub at once, before the scan loop (no event)
    assert [e.data["command"]["kind"] for e in events] == ["setpoint", "hold", "hold"]
    assert events[1].data["command"]["by"] == "hmi 127.0.0.1 operator"


def test_live_events_then_stop(served):
    run_batch(served)
    seq0 = served.hub.latest().seq

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", served.page.port, timeout=30)
        conn.request("GET", "/api/events")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")
        seqs = []
        while len(seqs) < 4:
            line = r.fp.readline().decode()
            if line.startswith("data: "):
                seqs.append(json.loads(line[6:])["seq"])
        conn.close()
        return seqs

    seqs = served.drive(client)
    assert seqs[0] >= seq0 and seqs == sorted(seqs) and len(set(seqs)) == 4
    for _ in range(200):  # the stream ends with its client: its subscription is released
        if served.hub.subscribers() == 0:
            break
        served.scan()
        served.hub.wait_for_command(0.02)
    assert served.hub.subscribers() == 0
    served.page.stop()
    assert not served.page._thread.is_alive()


def test_the_report(served):
    run_batch(served, batteries=2)
    for _ in range(400):
        served.scan()
        if served.rig.engine.idle():
            break
    status, body, headers = served.drive(lambda: get(served.url + "/report"))
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<html" in body.lower() and len(body) > 1000
