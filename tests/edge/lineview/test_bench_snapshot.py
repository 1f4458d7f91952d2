"""What a scan's snapshot costs the scan thread (edge/lineview/model.py `snapshot_of` and its JSON):
the flow's rig (8 stations, a batch running) with 2000 batteries already recorded in its store (a
line after weeks), so a cost that grows with the records would show. pytest-benchmark; `make bench`."""

from __future__ import annotations

import json

import pytest

from edge.lineview.model import snapshot_of
from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Rig, currents

pytestmark = pytest.mark.bench

RECORDED = 2000


@pytest.fixture
def busy_rig(line, models, tmp_path):  # noqa: F811
    rig = Rig(line, models, tmp_path / "state")
    rig.plant.capacity_ah = 2.0
    rig.inbox("batch.csv", range(1, 6))
    assert rig.engine.start()
    rig.run_until(lambda: ((currents(rig) > 0) & (rig.plant.current_a > 0)).any())
    old = {"cell_id": "x", "outcome": "done", "limits": rig.engine.limits_of(next(iter(rig.engine.batteries))),
           "vision": {"ok": True, "confidence_pct": 99.0}, "placement": {"slot": 1, "station": 2}}
    for i in range(RECORDED):
        cell = f"old{i}"
        rig.engine.store.record_battery(cell, old | {"cell_id": cell}, rig.models.versions)
        rig.engine.batteries[cell] = {"tier": 1}
    yield rig
    rig.engine.close()


def test_bench_snapshot_of_a_line_with_2000_records(busy_rig, benchmark):
    snapshot_of(busy_rig.engine)  # the first one learns the records once
    snap = benchmark(lambda: json.dumps(snapshot_of(busy_rig.engine).to_dict()))
    d = json.loads(snap)
    assert d["batch"]["recorded"] == RECORDED and d["batch"]["total"] == RECORDED + 5
    assert any(s["state"] == "discharging" for s in d["stations"])
