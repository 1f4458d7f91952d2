"""The report from a state dir: what it collects, and the page's sections, rows and inline images."""

import base64
import json
import re

import pytest

from edge.report import collect_batch, write_report
from edge.report.collect import utc

from .conftest import CELLS, T0

pytestmark = pytest.mark.integration


def test_collect_reads_every_battery_stay_move_and_event(batch_dir):
    batch = collect_batch(batch_dir)
    json.dumps(batch, allow_nan=False)  # standard JSON
    s = batch["summary"]
    assert [b["cell_id"] for b in batch["batteries"]] == list(CELLS)
    assert s["batteries_recorded"] == 5 and s["outcomes"] == {"done": 4, "isolated": 1}
    assert s["robot_moves"] == 5 and s["stations"] == 3 and s["begin_utc"] == utc(T0)
    a2 = next(b for b in batch["batteries"] if b["cell_id"] == "A2")
    assert a2["soh_interval"] == [0.78, 0.82] and a2["soc_interval_pct"] == [54.0, 57.0]
    assert a2["start_utc"] == utc(T0 + 20.0) and a2["cause"] == ["OVER_TEMP"]
    stays = {(x["station"], x["cell_id"]): x for x in batch["stays"]}
    assert set(stays) == {(0, "A1"), (1, "A2"), (2, "B7"), (0, "C3"), (2, "D9")}
    assert stays[(0, "A1")]["end_s"] == T0 + 10.0 + 600.0 + 5.0 and not stays[(0, "A1")]["open"]
    assert stays[(1, "A2")]["open"] and stays[(1, "A2")]["outcome"] == "isolated"
    assert [e["kind"] for e in batch["events"]].count("station_isolated") == 1
    assert set(batch["series"]) == {"0", "1"}  # station 2 held no battery and no current


def test_scaled_time_gives_the_wall_clock():
    assert utc(25 * T0, 25.0) == utc(T0) == "2026-09-21T14:13:20Z"


def test_the_page_holds_every_battery_the_gantt_and_the_stations_inline(batch_dir, tmp_path):
    out = tmp_path / "r" / "report.html"
    result = write_report(batch_dir, out, extra_images=[("bench truth", b"\x89PNG\r\n\x1a\nnot really")])
    page = out.read_text()
    assert result["html"] == str(out) and result["series_stations"] == [0, 1]
    for section in ("summary", "batteries", "gantt", "stations", "extra", "alarms", "events"):
        assert f'<section id="{section}">' in page
    rows = re.findall(r'<tr class="battery (\w+)" data-cell-id="([^"]+)"', page)
    assert [cell for _, cell in rows] == list(CELLS) and ("isolated", "A2") in rows
    images = re.findall(r'<img id="([^"]+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    assert [i for i, _ in images] == ["gantt-img", "station-0", "station-1", "extra-0"]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # escaped
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    summary = json.loads(re.search(r'<script type="application/json" id="batch-summary">(.*?)</script>', page,
                                   re.S).group(1).replace("&quot;", '"'))
    assert summary["batteries_recorded"] == 5


def test_a_batch_without_history_says_so_instead_of_station_plots(tmp_path):
    from .conftest import write_batch

    write_batch(tmp_path / "s", with_series=False)
    page = (tmp_path / "r.html")
    write_report(tmp_path / "s", page)
    text = page.read_text()
    assert 'id="stations-none"' in text and "no history here" in text and 'id="gantt-img"' in text
