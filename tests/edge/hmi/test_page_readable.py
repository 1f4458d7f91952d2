"""The operator page in headless Chromium on hand-made snapshots (no FlowEngine): what an operator
on the floor must see at a glance. A station the core isolates (a cause bit) is marked red even
while its supervisor state has not caught up (still `discharging`); an empty one is not.
Uses the Browser of test_chromium.py."""

from __future__ import annotations

import pytest

from edge.hmi.server import start_page
from edge.lineview.model import BatchView, LineHub, LineSnapshot, StationView
from edge.lineview.serve import Endpoint, load_access
from tests.edge.hmi.test_chromium import Browser, chromium  # noqa: F401

pytestmark = pytest.mark.integration

RED_ROW = "rgb(253, 232, 230)"  # style.css: the isolated row's background


def station(index: int, state: str, *, cause: tuple[str, ...] = ()) -> StationView:
    busy = state != "empty"
    return StationView(index=index, battery=f"B{index}" if busy else None, tier=1 if busy else None,
                       soc_pct=50.0 if busy else None, temp_degc=30.0, current_a=8.0 if state == "discharging" else None,
                       state=state, isolated=bool(cause) or state == "isolated", cause=cause, channel="A")


@pytest.fixture
def page(tmp_path):
    hub = LineHub()
    hub.publish(LineSnapshot(line="line-x", packml_state="Execute", mode="Production", time_s=100.0,
                             stations=(station(0, "discharging"), station(1, "discharging", cause=("OVER_TEMP",)),
                                       station(2, "isolated", cause=("OVER_TEMP",)), station(3, "empty")),
                             alarms=(), batch=BatchView(recorded=0, total=3, waiting=0), packml_state_number=6,
                             allowed_commands=("stop", "hold", "abort")))
    server = start_page(hub, Endpoint("127.0.0.1", 0), load_access(tmp_path / "state"))
    try:
        yield server
    finally:
        server.stop()


ROWS_JS = """[...document.querySelectorAll('#stations tbody tr')].map(tr => ({
  station: Number(tr.dataset.station), state: tr.querySelector('td.state').textContent,
  background: getComputedStyle(tr).backgroundColor, state_color: getComputedStyle(tr.querySelector('td.state')).color}))"""


def test_an_isolated_station_is_red_whatever_its_state(page, chromium, tmp_path):  # noqa: F811
    browser = Browser(chromium, tmp_path / "profile", page.url)
    try:
        browser.wait("document.querySelectorAll('#stations tbody tr').length === 4")
        rows = {r["station"]: r for r in browser.eval(ROWS_JS)}
        browser.screenshot(tmp_path / "isolated.png")
    finally:
        browser.close()
    assert rows[1]["state"] == "discharging (isolated)"
    assert rows[1]["background"] == RED_ROW, rows[1]
    assert rows[2]["background"] == RED_ROW, rows[2]
    assert rows[1]["state_color"] == rows[2]["state_color"] == "rgb(179, 38, 30)"  # --bad
    assert rows[0]["background"] != RED_ROW and rows[3]["background"] != RED_ROW


def test_a_page_whose_server_is_gone_claims_no_state_and_offers_no_command(page, chromium, tmp_path):  # noqa: F811
    token = page_token(tmp_path)
    browser = Browser(chromium, tmp_path / "profile", f"{page.url}#token={token}")
    try:
        browser.wait("document.querySelector('#role').dataset.role === 'operator' && "
                     "document.body.dataset.live === 'true' && "
                     "!document.querySelector('button[data-command=hold]').disabled")
        # looked at while live (on a loaded host the stream may drop and come back meanwhile)
        live = browser.wait(f"document.body.dataset.live === 'true' && {LOOK_JS}")
        page.stop()  # the supervisor goes away
        browser.wait("document.body.dataset.live === 'false'", 30)
        gone = browser.eval(LOOK_JS)
        browser.screenshot(tmp_path / "gone.png")
    finally:
        browser.close()
    assert live["packml_bg"] == "rgb(31, 122, 58)" and live["enabled"] == ["hold", "stop", "abort"], live
    assert gone["packml_bg"] != live["packml_bg"], "a dead line's page does not show a green Execute"
    assert gone["enabled"] == [], "no command offered to a line the page cannot reach"
    assert "not live" in gone["conn"] and gone["conn_weight"] == "700"


def page_token(tmp_path) -> str:
    return load_access(tmp_path / "state").tokens["operator"]


LOOK_JS = """({packml_bg: getComputedStyle(document.querySelector('#packml-state')).backgroundColor,
  enabled: [...document.querySelectorAll('button.cmd')].filter(b => !b.disabled).map(b => b.dataset.command),
  conn: document.querySelector('#conn').textContent,
  conn_weight: getComputedStyle(document.querySelector('#conn')).fontWeight})"""
