"""tools/plan.py and tools/plan_rollout.py: grading to tiers, SIL rollouts of the model plant, planning per tier."""

import json

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.strategy.history import History
from edge.strategy.model import Strategy
from tools.hil.cells import load_cells
from tools.plan import grade_table, plan_batch, plans_to_json, register
from tools.plan_rollout import Rollout, model_cells, pick_representative

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def batch():
    cells = load_cells(CELLS, limit=8)
    return cells, grade_table(CELLS, cells, n_tiers=2)


def test_model_plant_is_built_from_the_estimates_not_the_truth(batch):
    cells, grades = batch
    model = model_cells(cells, grades["soc_pct"], grades["soh_est"])
    assert np.allclose(model["truth_soc"], grades["soc_pct"] / 100)
    assert not np.allclose(model["truth_soc"], cells["truth_soc"])
    assert np.array_equal(model["truth_t_amb_C"], cells["feat_t_amb_C"])


def test_representative_sub_batch_holds_the_fullest_and_the_most_resistive():
    soc, soh, r = np.array([10, 90, 50, 40.0]), np.array([0.9, 0.8, 0.7, 0.95]), np.array([30, 40, 35, 80.0])
    pick = pick_representative(soc, soh, r, k=3)
    assert set(pick) == {1, 3, 2}
    assert list(pick_representative(soc[:1], soh[:1], r[:1], k=4)) == [0]


def test_a_faster_strategy_finishes_sooner_in_the_rollout(batch):
    cells, grades = batch
    rows = np.array([0, 1])
    model = model_cells(cells, grades["soc_pct"], grades["soh_est"]).select(rows)
    rollout = Rollout(model, grades["soc_pct"][rows], grades["soh_est"][rows], dt_s=2.0)
    slow = rollout(Strategy(segments=((0, 1.0),)))
    fast = rollout(Strategy(segments=((0, 2.0),)))
    assert fast["batch_time_s"] < slow["batch_time_s"] and fast["modules_finished"] == 2
    assert rollout.calls == 2


def test_plan_batch_plans_every_tier_and_writes_history(batch, tmp_path):
    cells, grades = batch
    with History(tmp_path / "h.sqlite") as h:
        plans = plan_batch(cells, grades, h, max_simulations=3, rollout_modules=2)
        assert set(plans) == set(grades["tier"].tolist())
        assert h.count() == sum(p["rollouts"] for p in plans.values())
        again = plan_batch(cells, grades, h, use_tree=False, rollout_modules=2)
        assert all(p["initial_from_history"] for p in again.values())
    out = plans_to_json(plans)
    json.dumps(out)
    for t in out:
        assert t["predicted"]["batch_time_s"] > 0 and t["simulations"] <= 3 and "c_rate" in t["strategy"]["segments"][0]


def test_plan_command_registers_and_refuses_a_bad_file(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    bad = tmp_path / "bad.csv"
    bad.write_text("cell_id,truth_soc\n1,0.5\n")
    args = parser.parse_args(["plan", "--cells", str(bad), "--history", str(tmp_path / "h.sqlite"), "--json"])
    assert args.func(args) == 2
    assert "bad.csv" in capsys.readouterr().err


def test_plan_command_prints_one_json_object_with_a_strategy_per_tier(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["plan", "--cells", str(CELLS), "--limit", "6", "--tiers", "2", "--simulations", "2",
                              "--history", str(tmp_path / "h.sqlite"), "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cells"] == 6 and sum(t["n_modules"] for t in report["tiers"]) == 6
    for t in report["tiers"]:
        Strategy.from_dict(t["strategy"])  # a valid strategy comes back
        assert t["score_cost"] == pytest.approx(t["score_cost"]) and t["planning_s"] >= 0


def test_plan_command_refuses_a_missing_policy(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["plan", "--cells", str(CELLS), "--limit", "4", "--tiers", "1",
                              "--history", str(tmp_path / "h.sqlite"), "--policy", str(tmp_path), "--json"])
    assert args.func(args) == 1
    assert "policy refused" in capsys.readouterr().err
