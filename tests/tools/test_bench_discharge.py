"""`bench discharge`: the same batch under the traditional method and under ours, in SIL."""

import json
import subprocess
import sys

from edge import REPO_ROOT

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def test_bench_discharge_prints_both_controllers_on_the_same_batch():
    done = subprocess.run([sys.executable, "-m", "edge.cli", "bench", "discharge", "--cells", str(CELLS), "--limit", "6",
                           "--max-time-s", "600", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["cells"] == 6
    for side in ("traditional", "ours"):
        metrics = report[side]
        assert metrics["modules"] == 6
        assert 0 < metrics["batch_time_s"] <= 600
        assert metrics["discharged_ah"] > 0 and metrics["residual_ah"] >= 0
        assert metrics["peak_temp_degc"] > 15
        assert metrics["time_above_warning_s"] >= 0
    # same plant, same start: the charge at the start is the same for both
    start = {s: report[s]["discharged_ah"] + report[s]["residual_ah"] for s in ("traditional", "ours")}
    assert abs(start["traditional"] - start["ours"]) < 1e-6


def test_planned_bench_runs_traditional_ours_and_the_ablations_on_the_same_batch(tmp_path):
    from edge.strategy.history import History
    from tools.bench_discharge import run_bench_planned
    from tools.hil.cells import load_cells

    cells = load_cells(CELLS, limit=4)
    with History(tmp_path / "h.sqlite") as history:
        report = run_bench_planned(cells, history, dt_s=2.0, max_time_s=3600.0, simulations=2, n_tiers=2,
                                   rollout_modules=2)
        assert history.count() > 0
    sides = ("traditional", "tiers_without_tree", "tree_without_relief_correction", "ours")
    start = {s: report[s]["discharged_ah"] + report[s]["residual_ah"] for s in sides}
    assert max(start.values()) - min(start.values()) < 1e-6
    for s in sides:
        assert report[s]["modules"] == 4 and report[s]["batch_time_s"] > 0
    assert report["ours"]["batch_time_vs_traditional_pct"] < 0  # tiered 2C-class strategies beat 1C
    assert sum(report["tier_sizes"].values()) == 4 and len(report["plans"]) == len(report["tier_sizes"])


def test_short_module_out_of_range_is_refused(capsys):
    import argparse

    from tools.bench_cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", "discharge", "--cells", str(CELLS), "--limit", "3", "--plan",
                              "--short-module", "7"])
    assert args.func(args) == 2
    assert "--short-module must be in 0..2" in capsys.readouterr().err
