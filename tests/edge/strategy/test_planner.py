"""edge/strategy/planner.py, rollout.py, cli.py: grading to tiers from the feat_* columns alone, SIL
rollouts of the battery model built from the grade, planning per tier, typed results, `plan`."""

import argparse
import csv
import json

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.batterymodel.sil import ModuleMetrics
from edge.grading.features import CellTable, read_cells_csv
from edge.strategy.cli import register
from edge.strategy.history import History
from edge.strategy.model import Strategy, StrategyError
from edge.strategy.planner import TierPlan, arrival_columns, evaluate_requests, grade_cells_table, plan_tiers
from edge.strategy.rollout import Grades, Rollout, RolloutMetrics, pick_representative, rollout_batteries

pytestmark = pytest.mark.integration

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def write_feat_only(path, limit: int):
    """The first `limit` rows of cells_train.csv with only cell_id and the feat_* columns."""
    with CELLS.open(newline="") as src, path.open("w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        header = next(reader)
        keep = [j for j, name in enumerate(header) if name == "cell_id" or name.startswith("feat_")]
        writer.writerow([header[j] for j in keep])
        for k, row in enumerate(reader):
            if k >= limit:
                break
            writer.writerow([row[j] for j in keep])
    return path


@pytest.fixture(scope="module")
def feat_only(tmp_path_factory):
    return write_feat_only(tmp_path_factory.mktemp("cells") / "arrivals.csv", 8)


@pytest.fixture(scope="module")
def batch(feat_only):
    cells = read_cells_csv(feat_only)
    return cells, grade_cells_table(cells, n_tiers=2)


def test_the_feat_only_file_has_no_other_column(feat_only):
    cells = read_cells_csv(feat_only)
    assert set(cells.columns) and all(name.startswith("feat_") for name in cells.columns)
    assert len(cells) == 8


def test_grades_are_typed_and_carry_the_spread(batch):
    cells, grades = batch
    assert isinstance(grades, Grades) and len(grades) == 8
    assert np.array_equal(grades.cell_ids, cells.cell_ids)
    assert np.all(grades.soc_lo_pct <= grades.soc_pct) and np.all(grades.soc_pct <= grades.soc_hi_pct)
    assert np.any(grades.soc_hi_pct > grades.soc_lo_pct) and grades.soh_sd > 0 and 0 < grades.soc_level < 1
    assert np.array_equal(grades.r_mohm, cells.columns["feat_r0p1s_mOhm"])
    assert set(grades.tier.tolist()) == {1, 2}
    assert len(grades.models["soc_gan"]) == 64
    json.dumps(grades.to_json())


def test_rollout_batteries_come_from_the_grade(batch):
    _, grades = batch
    point = rollout_batteries(grades, spread=False)
    assert np.allclose(point.soc, grades.soc_pct / 100) and np.allclose(point.soh, np.clip(grades.soh_est, 0.31, 1))
    assert np.array_equal(point.t_amb_degc, grades.t_amb_degc)
    drawn = rollout_batteries(grades, seed=3)
    assert not np.allclose(drawn.soc, point.soc) and not np.allclose(drawn.soh, point.soh)
    assert np.all(drawn.soc >= grades.soc_lo_pct / 100 - 1e-12) and np.all(drawn.soc <= grades.soc_hi_pct / 100 + 1e-12)
    assert np.array_equal(rollout_batteries(grades, seed=3).soc, drawn.soc)  # seeded: every strategy meets one batch
    # the measured resistance sets the model's contact: more measured, more contact
    higher = Grades(**{**grades.__dict__, "r_mohm": grades.r_mohm + 20.0})
    assert np.all(rollout_batteries(higher, spread=False).r_contact_mohm > point.r_contact_mohm)


def test_representative_sub_batch_holds_the_fullest_and_the_most_resistive():
    soc, soh, r = np.array([10, 90, 50, 40.0]), np.array([0.9, 0.8, 0.7, 0.95]), np.array([30, 40, 35, 80.0])
    assert set(pick_representative(soc, soh, r, k=3)) == {1, 3, 2}
    assert list(pick_representative(soc[:1], soh[:1], r[:1], k=4)) == [0]


def test_a_faster_strategy_finishes_sooner_in_the_rollout(batch):
    _, grades = batch
    rollout = Rollout(grades.select(np.array([0, 1])), dt_s=2.0)
    slow = rollout(Strategy(segments=((0, 1.0),)))
    fast = rollout(Strategy(segments=((0, 2.0),)))
    assert isinstance(fast, RolloutMetrics) and rollout.calls == 2
    assert fast.batch_time_s < slow.batch_time_s and fast.modules_finished == 2
    assert [m.cell_id for m in fast.per_module] == grades.cell_ids[:2].tolist()
    assert all(isinstance(m, ModuleMetrics) and m.outcome == "finished" for m in fast.per_module)
    assert len(fast.to_dict()["modules_list"]) == 2


def test_plan_tiers_plans_every_tier_typed_and_writes_history(batch, tmp_path):
    cells, grades = batch
    with History(tmp_path / "h.sqlite") as h:
        plans = plan_tiers(cells, grades, h, max_simulations=3, rollout_modules=2)
        assert set(plans) == set(grades.tier.tolist())
        assert h.count() == sum(p.rollouts for p in plans.values())
        again = plan_tiers(cells, grades, h, use_tree=False, rollout_modules=2)
        assert all(p.initial_from_history for p in again.values())
    for tier, p in plans.items():
        assert isinstance(p, TierPlan) and p.tier == tier and p.simulations <= 3
        assert isinstance(p.metrics, RolloutMetrics) and p.metrics.modules == len(p.sub_batch_rows)
        assert set(p.rows.tolist()) == set(np.flatnonzero(grades.tier == tier).tolist())
        out = p.to_json()
        json.dumps(out)
        assert out["predicted"]["batch_time_s"] == p.metrics.batch_time_s
        assert out["score_cost"] == round(p.score.cost, 4) and Strategy.from_dict(out["strategy"]) == p.strategy


def test_truth_columns_are_ignored(batch, tmp_path):
    """The same plan whether the file has truth columns (here deliberately wrong ones) or not."""
    cells, grades = batch
    full = read_cells_csv(CELLS, limit=8)
    assert "truth_soc" in full.columns
    wrong = dict(full.columns, truth_soc=np.zeros(8), truth_soh=np.full(8, 0.4),
                 truth_r_contact_mOhm=np.full(8, 150.0), truth_t_amb_C=np.full(8, 50.0))
    with_truth = CellTable(full.source, full.cell_ids, wrong, full.lines)
    assert set(arrival_columns(with_truth).columns) == set(cells.columns)
    graded_with_truth = grade_cells_table(with_truth, n_tiers=2)
    assert np.array_equal(graded_with_truth.soc_pct, grades.soc_pct)
    assert np.array_equal(graded_with_truth.tier, grades.tier)
    plans = []
    for table, g, name in ((cells, grades, "a"), (with_truth, graded_with_truth, "b")):
        with History(tmp_path / f"{name}.sqlite") as h:
            plans.append(plan_tiers(table, g, h, max_simulations=2, max_seconds=600.0, rollout_modules=2))
    absent, present = plans
    assert set(absent) == set(present)
    for tier in absent:
        assert present[tier].strategy == absent[tier].strategy
        assert present[tier].metrics.to_dict() == absent[tier].metrics.to_dict()


def test_plan_tiers_refuses_grades_of_other_cells(batch, tmp_path):
    cells, grades = batch
    with History(tmp_path / "h.sqlite") as h, pytest.raises(ValueError, match="not of these cells"):
        plan_tiers(cells, grades.select(np.arange(4)), h)


def test_environment_evaluates_requests_and_writes_rl_records(batch, tmp_path):
    _, grades = batch
    tier = int(grades.tier[0])
    requests = [{"tier": tier, "strategy": Strategy().to_dict()},
                {"tier": tier, "strategy": Strategy(segments=((0, 1.0),)).to_dict()}]
    with History(tmp_path / "h.sqlite") as h:
        out = evaluate_requests(grades, h, requests, rollout_modules=2)
        assert [r.source for r in h.all()] == ["rl", "rl"]
    assert len(out) == 2 and out[0]["metrics"]["batch_time_s"] < out[1]["metrics"]["batch_time_s"]
    bad = {**Strategy().to_dict(), "pressure_kpa": 900.0}
    with History(tmp_path / "h.sqlite") as h, pytest.raises(StrategyError, match=r"request 0\.pressure_kpa"):
        evaluate_requests(grades, h, [{"tier": tier, "strategy": bad}])


def _plan_args(*argv):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["plan", *map(str, argv)])


def test_plan_command_plans_a_feat_only_file(feat_only, tmp_path, capsys):
    args = _plan_args("--cells", feat_only, "--limit", 6, "--tiers", 2, "--simulations", 2,
                      "--history", tmp_path / "h.sqlite", "--no-policy", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cells"] == 6 and sum(t["n_modules"] for t in report["tiers"]) == 6
    assert set(report["models"]) == {"soc_gan"}
    for t in report["tiers"]:
        Strategy.from_dict(t["strategy"])  # a valid strategy comes back
        assert t["simulations"] <= 2 and t["predicted"]["batch_time_s"] > 0 and t["planning_s"] >= 0


def test_plan_command_loads_the_shipped_policy_by_default(feat_only, tmp_path, capsys):
    args = _plan_args("--cells", feat_only, "--limit", 4, "--tiers", 1, "--no-tree",
                      "--history", tmp_path / "h.sqlite", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["models"]["rl_policy"]) == 64


def test_plan_command_refuses_a_broken_policy(feat_only, tmp_path, capsys):
    (tmp_path / "rl_policy.json").write_text("{not json")
    args = _plan_args("--cells", feat_only, "--limit", 4, "--tiers", 1, "--history", tmp_path / "h.sqlite",
                      "--policy", tmp_path, "--json")
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "policy refused" in err and "rl_policy.json" in err and "--no-policy" in err


def test_plan_command_refuses_a_file_without_the_features(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("cell_id,truth_soc\n1,0.5\n")
    args = _plan_args("--cells", bad, "--history", tmp_path / "h.sqlite", "--json")
    assert args.func(args) == 2
    assert "bad.csv" in capsys.readouterr().err


# -- issue 17: the history in the state dir, a closed world, absurd grades refused -----------------------------

def test_plan_command_keeps_its_history_in_the_state_dir_and_nothing_in_home(feat_only, tmp_path, monkeypatch, capsys):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    args = _plan_args("--cells", feat_only, "--limit", 2, "--tiers", 1, "--no-tree", "--no-policy", "--json")
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["history"] == "state/strategy_history.sqlite" and report["history_set_aside"] is None
    with History(work / "state" / "strategy_history.sqlite") as h:
        assert h.count() == 1
    assert list(home.iterdir()) == []
    args = _plan_args("--cells", feat_only, "--limit", 2, "--tiers", 1, "--no-tree", "--no-policy", "--json",
                      "--state-dir", tmp_path / "line-state")
    assert args.func(args) == 0
    assert (tmp_path / "line-state" / "strategy_history.sqlite").is_file()


def test_plan_command_sets_a_garbage_history_aside_and_plans(feat_only, tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "strategy_history.sqlite").write_bytes(bytes(range(256)) * 40)
    args = _plan_args("--cells", feat_only, "--limit", 2, "--tiers", 1, "--no-tree", "--no-policy", "--json",
                      "--state-dir", state)
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    aside = report["history_set_aside"]
    assert aside and aside.startswith(str(state / "strategy_history.sqlite.corrupt-"))
    assert (state / aside.rsplit("/", 1)[1]).read_bytes() == bytes(range(256)) * 40
    assert report["tiers"][0]["initial_from_history"] is False


def test_plan_command_sets_a_history_with_a_c_rate_40_record_aside(feat_only, tmp_path, capsys):
    import sqlite3

    from edge.strategy.history import TierFeatures

    path = tmp_path / "h.sqlite"
    m = dict(batch_time_s=900.0, residual_pct=9.0, peak_temp_degc=41.0, time_above_warning_s=0.0, relief_events=0)
    with History(path) as h:
        h.append("sil", 1, TierFeatures(60.0, 0.8, 40.0, 2), Strategy(), m, -5.0)  # very attractive
    db = sqlite3.connect(path)
    db.execute("UPDATE records SET strategy_json = ?",
               (json.dumps({**Strategy().to_dict(), "segments": [{"soc_from_pct": 0.0, "c_rate": 40.0}]}),))
    db.commit()
    db.close()
    args = _plan_args("--cells", feat_only, "--limit", 2, "--tiers", 1, "--no-tree", "--no-policy", "--json",
                      "--history", path)
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["history_set_aside"] and report["tiers"][0]["initial_from_history"] is False
    assert max(s["c_rate"] for s in report["tiers"][0]["strategy"]["segments"]) <= 3.0


def test_plan_command_refuses_a_history_path_that_is_a_folder(feat_only, tmp_path, capsys):
    (tmp_path / "h.sqlite").mkdir()
    args = _plan_args("--cells", feat_only, "--limit", 2, "--no-tree", "--no-policy", "--history", tmp_path / "h.sqlite")
    assert args.func(args) == 2
    assert "h.sqlite: the strategy history must be a file" in capsys.readouterr().err


def test_plan_tiers_refuses_grades_with_soh_1448_and_records_nothing(batch, tmp_path):
    import dataclasses

    from edge.strategy.planner import PlanInputError

    cells, grades = batch
    soh = grades.soh_est.copy()
    soh[2] = 1448.13
    absurd = dataclasses.replace(grades, soh_est=soh)
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(PlanInputError, match=rf"arrivals.csv:4: cell_id {cells.cell_ids[2]}: refused: soh_est 1448.13 outside"):
            plan_tiers(cells, absurd, h, max_simulations=2, rollout_modules=2)
        assert h.count() == 0


@pytest.mark.parametrize("field, value", [("r_mohm", np.nan), ("soc_pct", -7.0), ("t_amb_degc", 300.0)])
def test_plan_tiers_refuses_other_absurd_grades(batch, tmp_path, field, value):
    import dataclasses

    from edge.strategy.planner import PlanInputError

    cells, grades = batch
    column = getattr(grades, field).copy()
    column[0] = value
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(PlanInputError, match="arrivals.csv:2"):
            plan_tiers(cells, dataclasses.replace(grades, **{field: column}), h, use_tree=False, rollout_modules=2)
        assert h.count() == 0


def test_plan_command_on_a_v_rest_of_400_plans_no_absurd_tier(feat_only, tmp_path, capsys):
    """feat_v_rest_V = 400 on line 4: the row is refused (by the reader's physical range, or by the
    planner's check of the grades) and named; no tier of SOH 1448 is planned or recorded."""
    rows = feat_only.read_text().splitlines()
    header = rows[0].split(",")
    fields = rows[3].split(",")
    fields[header.index("feat_v_rest_V")] = "400"
    bad = tmp_path / "v_rest_400.csv"
    bad.write_text("\n".join(rows[:3] + [",".join(fields)] + rows[4:6]) + "\n")
    args = _plan_args("--cells", bad, "--tiers", 2, "--no-tree", "--no-policy", "--json", "--history",
                      tmp_path / "h.sqlite")
    code = args.func(args)
    out = capsys.readouterr()
    assert "v_rest_400.csv:4" in out.err
    if code == 0:  # the reader refused the row; the other four are planned
        report = json.loads(out.out)
        assert report["cells"] == 4 and [r["line"] for r in report["refused"]] == [4]
        assert all(t["soh_mean"] <= 1.2 for t in report["tiers"])
    else:
        assert code == 2
    with History(tmp_path / "h.sqlite") as h:
        assert all(r.features.soh_mean <= 1.2 for r in h.all())


@pytest.mark.parametrize("option, value", [("--seconds", "inf"), ("--seconds", "nan"), ("--seconds", "0"),
                                           ("--simulations", "0"), ("--limit", "-1"), ("--tiers", "0")])
def test_plan_command_refuses_options_out_of_range(feat_only, option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        _plan_args("--cells", feat_only, option, value)
    assert exc.value.code == 2 and option in capsys.readouterr().err


def test_sane_rows_leaves_out_each_absurd_grade_with_its_line_and_field(batch):
    import dataclasses

    from edge.strategy.planner import sane_rows

    cells, grades = batch
    soh, r = grades.soh_est.copy(), grades.r_mohm.copy()
    soh[1], soh[5], r[5] = 276.457, -162.6, np.inf
    keep, refused = sane_rows(cells, dataclasses.replace(grades, soh_est=soh, r_mohm=r))
    assert keep.tolist() == [0, 2, 3, 4, 6, 7]
    assert [(x.line, x.field) for x in refused] == [(3, "soh_est"), (7, "soh_est")]
    assert refused[0].message(cells.source) == (f"{cells.source}:3: cell_id {cells.cell_ids[1]}: refused: "
                                                "soh_est 276.457 outside [0.05, 1.2] (graded, not planned)")
    assert sane_rows(cells, grades)[1] == ()


def test_plan_command_leaves_out_a_battery_graded_soh_276_and_plans_the_rest(feat_only, tmp_path, capsys):
    """feat_r0p1s_mOhm = 1000 mΩ on line 3 (inside the reader's physical range) grades as SOH 276:
    that battery is named and left out (or refused by the reader); the other four are planned."""
    rows = feat_only.read_text().splitlines()
    header = rows[0].split(",")
    fields = rows[2].split(",")
    fields[header.index("feat_r0p1s_mOhm")] = "1000"
    bad = tmp_path / "r0_1000.csv"
    bad.write_text("\n".join(rows[:2] + [",".join(fields)] + rows[3:6]) + "\n")
    args = _plan_args("--cells", bad, "--tiers", 2, "--no-tree", "--no-policy", "--json", "--history",
                      tmp_path / "h.sqlite")
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert "r0_1000.csv:3: cell_id" in out.err and "refused" in out.err
    report = json.loads(out.out)
    assert report["cells"] == 4 and [r["line"] for r in report["refused"]] == [3]
    assert sum(t["n_modules"] for t in report["tiers"]) == 4 and all(t["soh_mean"] <= 1.2 for t in report["tiers"])
    with History(tmp_path / "h.sqlite") as h:
        assert h.count() > 0 and all(r.features.soh_mean <= 1.2 for r in h.all())
