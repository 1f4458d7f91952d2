"""After `discharge-edge demo` (tools/demo.py: the supervisor with state dir OUT/state), `history`,
`events` and `record` return that batch's data: every battery recorded by the demo has 1 s
samples, its record validates against the shipped schema and its BDF CSV has rows. About 60-90 s
(3 modules, no short)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge import REPO_ROOT
from edge.supervisor.record import validate_record

pytestmark = [pytest.mark.hil, pytest.mark.slow]


def cli(*argv, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *argv], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def test_history_events_and_record_after_a_demo(tmp_path):
    out = tmp_path / "demo"
    run = cli("demo", "--out", str(out), "--modules", "3", "--short-module", "-1", timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    batch = json.loads((out / "batch.json").read_text())
    cells = sorted(str(b["cell_id"]) for b in batch["batteries"])
    state = out / "state"
    history = cli("history", "--state-dir", str(state), "--json")
    assert history.returncode == 0, history.stderr
    h = json.loads(history.stdout)
    recorded = sorted({e["battery_id"] for e in h["events"] if e["kind"] == "battery_queued"})
    assert len(recorded) == 3 and cells == recorded
    assert {s["battery_id"] for s in h["samples"]} >= set(recorded)
    assert any(c["state"] == "done" for c in h["state_changes"])
    events = cli("events", "--state-dir", str(state), "--json")
    assert events.returncode == 0, events.stderr
    assert {e["kind"] for e in json.loads(events.stdout)["events"]} >= {"battery_queued", "robot_move"}
    for cell in recorded:
        rec = cli("record", cell, "--state-dir", str(state), "--out", str(tmp_path / "records"), "--json")
        assert rec.returncode == 0, rec.stderr
        record = json.loads(rec.stdout)
        validate_record(record)
        assert record["outcome"]["outcome"] == "done" and record["discharge"]["charge_removed_ah"] > 0
        assert max(x or 0 for x in record["series"]["current_a_max"]) > 0
        bdf = next((tmp_path / "records").glob(f"discharge-edge__{cell}__*.bdf.csv"))
        assert len(bdf.read_text().splitlines()) == len(record["series"]["t_s"]) + 1
