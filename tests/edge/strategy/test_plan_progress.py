"""`plan`'s progress bar on stderr: a step a tier with its cost; quiet under --json unless asked."""

import csv
import subprocess
import sys

import pytest

from edge import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two plans in processes: ~20 s idle


def plan(tmp_path, *extra):
    cells = tmp_path / "cells.csv"
    with open(REPO_ROOT.parent / "shared" / "data" / "cells_train.csv", newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, name in enumerate(rows[0]) if name == "cell_id" or name.startswith("feat_")]
    with open(cells, "w", newline="") as f:
        csv.writer(f).writerows([[r[i] for i in keep] for r in rows[:13]])
    return subprocess.run([sys.executable, "-m", "edge.cli", "plan", "--cells", str(cells), "--tiers", "2",
                           "--no-tree", "--state-dir", str(tmp_path / "state"), "--json", *extra],
                          capture_output=True, text=True, timeout=300)


def test_plan_shows_a_step_a_tier_on_stderr_when_asked_under_json(tmp_path):
    done = plan(tmp_path, "--progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip().startswith("{")
    assert "plan: 100%" in done.stderr and "2/2" in done.stderr and "cost" in done.stderr


def test_plan_under_json_alone_prints_no_bar(tmp_path):
    done = plan(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "plan:" not in done.stderr and "2/2" not in done.stderr
