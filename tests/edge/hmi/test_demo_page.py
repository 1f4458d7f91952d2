"""`discharge-edge demo --serve` in headless Chromium (issue 18's "done when"): the whole product on
the HIL bench (bench PLC server, rtcore process, supervisor process serving the page), a batch with
a hot cell. The page shows the running demo's stations and the core's isolation alarm; the
Acknowledge button acknowledges it (the isolation stays latched in the core, so the alarm stays
listed as acked, without the button); a refused PackML command (Unhold in Execute, POSTed with the
operator's token) raises a one-shot alarm that acknowledging clears from the page. Screenshots in
the test's tmp dir. About a minute: marked slow and hil."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.edge.hmi.test_chromium import ALARMS_JS, STATIONS_JS, Browser, chromium, png_size  # noqa: F401
from tests.tools.test_demo import some_rows

pytestmark = [pytest.mark.hil, pytest.mark.slow]

PREFIX = "discharge-edge run: operator page on "


def test_the_page_of_a_running_demo(chromium, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    demo = subprocess.Popen([sys.executable, "-m", "edge.cli", "demo", "--serve", "--http-port", "0",
                             "--opcua-port", "0", "--cells", str(some_rows(tmp_path)), "--modules", "5",
                             "--short-module", "0", "--time-scale", "10", "--out", str(out), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        deadline = time.monotonic() + 180
        url = None
        while url is None and time.monotonic() < deadline and demo.poll() is None:
            log = out / "supervisor.log"
            lines = log.read_text().splitlines() if log.exists() else []
            url = next((x[len(PREFIX):].split()[0] for x in lines if x.startswith(PREFIX)), None)
            time.sleep(0.2)
        assert url, f"the supervisor did not serve the page (demo exit {demo.poll()})"
        token = json.loads((out / "state" / "access.json").read_text())["operator"]
        browser = Browser(chromium, tmp_path / "profile", f"{url}#token={token}")
        browser.wait("document.querySelector('#role').dataset.role === 'operator'")
        # the hot cell's battery is isolated by the core: its alarm with Acknowledge, a station busy
        iso = browser.wait("""(() => { const r = [...document.querySelectorAll('tr.alarm')].find(
            tr => tr.querySelector('.alarm-message').textContent.includes('the core isolated it')
                  && tr.querySelector('button.ack:not([disabled])'));
            return r ? Number(r.dataset.alarmId) : 0; })()""", timeout_s=120)
        stations = browser.eval(STATIONS_JS)
        alarms = {a["id"]: a for a in browser.eval(ALARMS_JS)}
        state = browser.eval("document.querySelector('#packml-state').textContent")
        shot = browser.screenshot(tmp_path / "demo_alarm.png")
        browser.eval(f"document.querySelector('tr[data-alarm-id=\"{iso}\"] button.ack').click()")
        browser.wait(f"document.querySelector('tr[data-alarm-id=\"{iso}\"]')?.dataset.state === 'acked' && "
                     f"!document.querySelector('tr[data-alarm-id=\"{iso}\"] button.ack')")
        refused = browser.eval(f"""fetch('/api/command', {{method: 'POST', headers: {{'Content-Type': 'application/json',
            Authorization: 'Bearer {token}'}}, body: JSON.stringify({{command: 'unhold'}})}}).then(r => r.status)""")
        one_shot = browser.wait("""(() => { const r = [...document.querySelectorAll('tr.alarm')].find(
            tr => tr.dataset.state === 'rtn_unack' && tr.querySelector('.alarm-message').textContent.includes('Unhold'));
            return r ? Number(r.dataset.alarmId) : 0; })()""", timeout_s=30)
        browser.eval(f"document.querySelector('tr[data-alarm-id=\"{one_shot}\"] button.ack').click()")
        browser.wait(f"document.querySelector('tr[data-alarm-id=\"{one_shot}\"]') === null", timeout_s=30)
        after = browser.screenshot(tmp_path / "demo_acked.png")
    finally:
        if browser is not None:
            browser.close()
        try:
            stdout, stderr = demo.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            demo.terminate()
            stdout, stderr = demo.communicate(timeout=60)
    assert state == "Execute"
    assert len(stations) == 8
    assert any(s["state"] == "isolated" and ({"OVER_TEMP", "DTDT_ALARM"} & set(s["cells"][8].split(", ")))
               for s in stations)
    assert any(s["cells"][3] != "–" for s in stations), "a station holds a battery"
    assert alarms[iso]["priority"] == "high" and alarms[iso]["state"] == "unack"
    assert refused == 409
    assert demo.returncode == 0, stderr[-3000:]
    report = json.loads(stdout)
    assert report["ok"] and report["run"]["served"]["http"] == url
    for png in (shot, after):
        assert png_size(png)[0] >= 1000 and len(png) > 20_000
