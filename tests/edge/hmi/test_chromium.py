"""The operator page in headless Chromium (Debian's `chromium`, from tools/ensure_chromium.sh),
driven over the DevTools protocol (websockets) against the real server and a real FlowEngine:
the page shows the running line's stations (battery, tier, SOC, temperature, current, state, as
the line model has them) and an alarm (a station the core isolated, its condition gone, waiting
for its acknowledgement); the Acknowledge button, clicked in the page, goes through the server,
the hub and the scan loop to the alarm book, and the alarm leaves the page; with the server gone
the page says its values are not live. An engineer's page shows the setpoints: a value over the
map's limit is refused with the tag's reason, a lower one clips the flow's current from the next
scan. Screenshots before and after are written to the test's tmp dir (`--basetemp` to keep them)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from rtcore.spec import Flag
from tests.edge.hmi.conftest import run_batch
from tests.edge.supervisor.test_flow import currents
from tests.browser import headless_chromium

pytestmark = pytest.mark.integration

websocket = pytest.importorskip("websocket")  # websocket-client, in the test extra


@pytest.fixture(scope="module")
def chromium():
    return headless_chromium()


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools protocol."""

    def __init__(self, chromium: str, profile: Path, url: str, timeout_s: float = 60.0):
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--hide-scrollbars", "--window-size=1400,1100", f"--user-data-dir={profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.seq = 0
        self.events: list[dict] = []  # the protocol's events seen while waiting for answers
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + timeout_s
            while not (port_file.exists() and port_file.read_text().strip()):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"chromium did not open its DevTools port (exit {self.proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout_s,
                                                  suppress_origin=True)
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Page.navigate", url=url)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, **params):
        self.seq += 1
        self.ws.send(json.dumps({"id": self.seq, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
            if msg.get("id") == self.seq:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout_s: float = 60.0):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression)
            except AssertionError as exc:  # the page is not there yet (loading)
                value, last = None, exc
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"not true within {timeout_s:g} s: {expression} (last error: {last})")

    def script_errors(self) -> list[str]:
        """Exceptions thrown in the page and console.error calls, as text."""
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                out.append(json.dumps(e["params"]["args"])[:500])
        return out

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the browser and its helpers: its own session
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


STATIONS_JS = """[...document.querySelectorAll('#stations tbody tr')].map(tr => ({
  station: Number(tr.dataset.station), state: tr.dataset.state,
  cells: [...tr.children].map(td => td.textContent)}))"""
ALARMS_JS = """[...document.querySelectorAll('#alarms tbody tr')].map(tr => ({
  id: Number(tr.dataset.alarmId), priority: tr.dataset.priority, state: tr.dataset.state,
  message: tr.querySelector('.alarm-message').textContent, ack: !!tr.querySelector('button.ack:not([disabled])')}))"""


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_the_page_shows_the_line_and_acknowledging_clears_the_alarm(served, chromium, tmp_path):
    rig = served.rig
    rig.plant.capacity_ah = 2.0  # batteries that discharge for minutes of plant time: stations stay busy
    cells = run_batch(served)
    s = next(r.station for r in rig.engine.store.stations() if r.state.value == "discharging")
    rig.core.cause[s], rig.core.hot_degc[s] = int(Flag.OVER_TEMP), 58.5  # the core isolates station s ...
    served.scan()
    served.scan()
    rig.core.cause[s], rig.core.hot_degc[s] = 0, 41.0  # ... and the condition clears: the alarm awaits its ack
    served.scan()
    snap = served.hub.latest()
    alarm = next(a for a in snap.alarms if a.key == f"core.station.{s}")
    assert alarm.state == "rtn_unack"
    busy = {v.index: v for v in snap.stations if v.state == "discharging"}
    assert busy, "a station discharges while the page is looked at"

    def client():
        browser = Browser(chromium, tmp_path / "profile", f"{served.url}/#token={served.token('operator')}")
        try:
            browser.wait("document.querySelector('#conn').dataset.live === 'true' && "
                         "document.querySelectorAll('#stations tbody tr').length === 8")
            browser.wait("document.querySelector('#role').dataset.role === 'operator'")
            browser.wait(f"document.querySelector('tr[data-alarm-id=\"{alarm.id}\"] button.ack:not([disabled])') !== null")
            seen = {"state": browser.eval("document.querySelector('#packml-state').textContent"),
                    "stations": browser.eval(STATIONS_JS), "alarms": browser.eval(ALARMS_JS),
                    "batch": browser.eval("document.querySelector('#batch-text').textContent"),
                    "report": browser.eval("document.querySelector('#report-link').getAttribute('href')"),
                    "hold_enabled": browser.eval("!document.querySelector('button[data-command=hold]').disabled"),
                    "unhold_enabled": browser.eval("!document.querySelector('button[data-command=unhold]').disabled"),
                    "token_in_url": browser.eval("location.href")}
            seen["before_png"] = browser.screenshot(tmp_path / "page_alarm.png")
            browser.eval(f"document.querySelector('tr[data-alarm-id=\"{alarm.id}\"] button.ack').click()")
            browser.wait(f"document.querySelector('tr[data-alarm-id=\"{alarm.id}\"]') === null")
            seen["message"] = browser.wait("document.querySelector('#message').dataset.ok === 'true' && "
                                           "document.querySelector('#message').textContent")
            seen["alarms_after"] = browser.eval(ALARMS_JS)
            seen["after_png"] = browser.screenshot(tmp_path / "page_acked.png")
            seen["script_errors"] = browser.script_errors()
            served.page.stop()  # the supervisor goes away: the page must not pass old values for live ones
            seen["stale"] = browser.wait("document.body.dataset.live === 'false' && "
                                         "document.querySelector('#conn').textContent")
            return seen
        finally:
            browser.close()

    seen = served.drive(client, scan_wait_s=0.1)
    assert seen["state"] == "Execute" and seen["hold_enabled"] and not seen["unhold_enabled"]
    assert "#token" not in seen["token_in_url"], "the token leaves the address bar"
    rows = {r["station"]: r for r in seen["stations"]}
    assert sorted(rows) == list(range(8))
    shown_busy = [r for r in rows.values() if r["state"] == "discharging"]
    assert shown_busy, "the page shows a discharging station"
    currents = []
    for r in shown_busy:
        station, channel, state, battery, tier, soc, temp, current, cause = r["cells"]
        assert battery in cells and int(tier) == rig.engine.batteries[battery]["tier"]
        assert 0.0 < float(soc) <= 100.0 and float(temp) == 30.0 and float(current) >= 0.0
        currents.append(float(current))
    assert max(currents) > 0.0  # a station that has just begun may still show 0.00 A (its ramp): not all
    iso = rows[s]
    assert iso["state"] == "isolated" and "OVER_TEMP" in iso["cells"][8] and iso["cells"][3] in cells
    assert iso["cells"][7] == "–"  # no current tracked on an isolated station
    shown = {a["id"]: a for a in seen["alarms"]}
    assert shown[alarm.id]["priority"] == "high" and shown[alarm.id]["state"] == "rtn_unack" and shown[alarm.id]["ack"]
    assert f"station {s}" in shown[alarm.id]["message"] and "OVER_TEMP" in shown[alarm.id]["message"]
    assert " of 5 recorded" in seen["batch"] and seen["report"] == "/report"
    assert f"alarm {alarm.id}" in seen["message"] and "acknowledged" in seen["message"]
    assert all(a["id"] != alarm.id for a in seen["alarms_after"])
    assert "not live" in seen["stale"]
    assert seen["script_errors"] == [], "the page's script ran without an error"
    acked = rig.engine.alarms.get(alarm.id)
    assert acked.state == "normal" and acked.acked_by["role"] == "operator" and acked.acked_by["via"] == "hmi"
    for png in (seen["before_png"], seen["after_png"]):
        width, height = png_size(png)
        assert width >= 1000 and height >= 600 and len(png) > 20_000


def test_an_engineer_sets_a_setpoint_in_the_page(served, chromium, tmp_path):
    rig = served.rig
    rig.plant.capacity_ah = 2.0
    run_batch(served)

    def client():
        browser = Browser(chromium, tmp_path / "profile", f"{served.url}/#token={served.token('engineer')}")
        try:
            browser.wait("document.querySelector('#role').dataset.role === 'engineer' && "
                         "!document.querySelector('#setpoints-section').hidden && "
                         "document.querySelector('#setpoints input[name=max_current_a]') !== null")
            shown = browser.eval("Number(document.querySelector('#setpoints input[name=max_current_a]').value)")
            browser.eval("""(() => { const i = document.querySelector('#setpoints input[name=max_current_a]');
                i.value = '40'; i.parentElement.querySelector('button').click(); })()""")
            refused = browser.wait("document.querySelector('#message').dataset.ok === 'false' && "
                                   "document.querySelector('#message').textContent")
            browser.eval("""(() => { const i = document.querySelector('#setpoints input[name=max_current_a]');
                i.value = '0.5'; i.parentElement.querySelector('button').click(); })()""")
            done = browser.wait("document.querySelector('#message').dataset.ok === 'true' && "
                                "document.querySelector('#message').textContent")
            return shown, refused, done, browser.script_errors()
        finally:
            browser.close()

    shown, refused, done, errors = served.drive(client, scan_wait_s=0.05)
    assert shown == 15.0
    assert "discharge_current_setpoint_a" in refused and "outside limits 0.0..15.0" in refused
    assert "15 -> 0.5 A" in done and rig.engine.line.limits.max_current_a == 0.5
    served.scan()
    assert 0 < currents(rig).max() <= 0.5
    assert errors == []
