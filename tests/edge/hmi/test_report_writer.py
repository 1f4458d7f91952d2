"""edge/hmi/server.py report_writer: GET /report needs no token, and a report costs about 0.9 s of
CPU in the supervisor's process (6 batteries): one written less than REPORT_MAX_AGE_S ago is
served as it is, so a page reloaded (or a script polling /report) cannot keep a core busy beside
the scan loop; requests at once make one report."""

from __future__ import annotations

import threading

import pytest

import edge.report.html
from edge.hmi.server import REPORT_MAX_AGE_S, report_writer

pytestmark = pytest.mark.unit


@pytest.fixture
def written(monkeypatch):
    calls = []

    def fake(state_dir, out, *, time_scale=1.0):
        calls.append(out)
        out.write_text(f"report {len(calls)}")

    monkeypatch.setattr(edge.report.html, "write_report", fake)
    return calls


def test_a_fresh_report_is_served_again_and_an_old_one_rewritten(tmp_path, written):
    now = [1000.0]
    write = report_writer(tmp_path, clock=lambda: now[0])
    first = write()
    now[0] += REPORT_MAX_AGE_S - 0.5
    again = write()
    assert first == again == tmp_path / "report.html" and len(written) == 1
    now[0] += 1.0
    assert write().read_text() == "report 2" and len(written) == 2


def test_requests_at_once_make_one_report(tmp_path, written):
    write = report_writer(tmp_path)
    threads = [threading.Thread(target=write) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(written) == 1
