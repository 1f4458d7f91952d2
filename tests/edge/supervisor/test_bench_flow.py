"""What the flow's per-scan bookkeeping costs on a line after weeks: the flow's rig (8 stations, a
batch discharging) restarted on a store holding none or 2000 more batteries queued and recorded,
so a cost that grows with the records would show. `FlowEngine.waiting()` (called by the scan, the idle check
and the line model) and a whole `scan()`; beside them, for reference, what `waiting()` used to read
each call: every record, decoded (`Store.batteries()`). pytest-benchmark; `make bench`."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Rig, currents

pytestmark = pytest.mark.bench

RECORDED = 2000


def seed(rig, n: int) -> None:
    """n batteries queued and recorded long ago, written in one transaction beside the engine's
    connection (WAL), the record the size of a real one."""
    engine = rig.engine
    cell = next(iter(engine.batteries))
    record = {"cell_id": "x", "outcome": "done", "limits": engine.limits_of(cell),
              "strategy": engine.batteries[cell]["strategy"], "vision": {"ok": True, "confidence_pct": 99.0},
              "placement": {"slot": 1, "station": 2, "ordered_s": 1.0, "acked_s": 2.0, "done_s": 3.0}}
    versions = json.dumps(rig.models.versions)
    db = sqlite3.connect(engine.store.path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        for i in range(n):
            c = f"old{i}"
            db.execute("INSERT INTO events (at, kind, text, station, battery_id, data) VALUES (?, ?, ?, NULL, ?, ?)",
                       (1.0, "battery_queued", f"battery {c} queued", c,
                        json.dumps({"tier": 1, "plc_id": 100_000 + i, "strategy": record["strategy"]})))
            db.execute("INSERT INTO batteries (cell_id, recorded_at, record, model_versions) VALUES (?, ?, ?, ?)",
                       (c, 2.0, json.dumps(record | {"cell_id": c}), versions))
        db.execute("COMMIT")
    finally:
        db.close()


@pytest.fixture(params=[0, RECORDED], ids=lambda n: f"{n}_records")
def busy_rig(request, line, models, tmp_path):  # noqa: F811
    recorded = request.param
    rig = Rig(line, models, tmp_path / "state")
    rig.plant.capacity_ah = 2.0  # the batch keeps discharging through every round
    cells = rig.inbox("batch.csv", range(1, 6))
    assert rig.engine.start()
    rig.run_until(lambda: ((currents(rig) > 0) & (rig.plant.current_a > 0)).any())
    if recorded:
        seed(rig, recorded)
    rig.kill()  # a restart on the grown store: the engine learns the records once
    assert len(rig.engine.recorded()) == recorded and len(rig.engine.batteries) == recorded + len(cells)
    yield rig
    rig.engine.close()


def test_bench_waiting(busy_rig, benchmark):
    engine = busy_rig.engine
    on_station = {r.battery_id for r in engine.store.stations() if r.battery_id}
    waiting = benchmark(engine.waiting)
    assert waiting and not set(waiting) & (on_station | engine.recorded())
    assert all(c.isdigit() for c in waiting), "only the running batch's batteries wait"


def test_bench_scan(busy_rig, benchmark):
    benchmark(busy_rig.scan)
    assert (currents(busy_rig) > 0).any(), "the batch is still discharging"


def test_bench_reference_reading_every_record(busy_rig, benchmark):
    ids = benchmark(lambda: {b.cell_id for b in busy_rig.engine.store.batteries()})
    assert len(ids) == len(busy_rig.engine.recorded())
