"""`bench discharge`: the same batch under the traditional method and under ours, in SIL."""

import argparse
import json
import subprocess
import sys

import pytest

from edge import REPO_ROOT

pytestmark = pytest.mark.integration

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


# -- issue 17: every input error a message naming the file and line, exit code 2, no traceback ----------------

def _bench_args(*argv):
    from tools.bench_cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["bench", "discharge", *map(str, argv)])


HEADER, ROW = CELLS.read_text().splitlines()[:2]


def _row_with(column: str, value: str) -> str:
    fields = ROW.split(",")
    fields[HEADER.split(",").index(column)] = value
    return ",".join(fields)


def _without(column: str) -> str:
    keep = [j for j, name in enumerate(HEADER.split(",")) if name != column]
    pick = lambda line: ",".join(line.split(",")[j] for j in keep)  # noqa: E731
    return pick(HEADER) + "\n" + pick(ROW) + "\n"


CSV_ERRORS = {  # name: (file bytes, what the message must say after "<file>")
    "empty": (b"", ": empty file"),
    "header_only": ((HEADER + "\n").encode(), ": no data rows"),
    "no_cell_id": ((HEADER.replace("cell_id", "id") + "\n" + ROW + "\n").encode(), ":1: no 'cell_id' column"),
    "duplicate_column": ((HEADER + ",cell_id\n" + ROW + ",1\n").encode(), ":1: duplicate columns"),
    "missing_truth_soc": (_without("truth_soc").encode(), ":1: missing required columns ['truth_soc']"),
    "text_in_a_number": ((HEADER + "\n" + _row_with("feat_v_rest_V", "abc") + "\n").encode(), ":2: column"),
    "nan_truth": ((HEADER + "\n" + _row_with("truth_soh", "nan") + "\n").encode(), ":2: column 'truth_soh'"),
    "three_fields": ((HEADER + "\n0,1,2\n").encode(), ":2: 3 fields"),
    "truth_soh_7": ((HEADER + "\n" + _row_with("truth_soh", "7") + "\n").encode(), ":2: column truth_soh"),
    "repeated_id": ((HEADER + "\n" + ROW + "\n" + ROW + "\n").encode(), ":3: cell_id 0 repeats line 2"),
    "fractional_id": ((HEADER + "\n" + _row_with("cell_id", "1.5") + "\n").encode(), ":2:"),
    "latin1": ((HEADER + "\n" + ROW + ",\n").encode().replace(b",\n", b"\xe9\n", 1)[:-1] + b"\n", ""),
    "not_utf8": (b"\xff\xfe\x00garbage\n", ""),
    "field_over_128kb": ((HEADER + "\n" + ROW + ',"' + "x" * 200_000 + '"\n').encode(), ""),
}


@pytest.mark.parametrize("name", sorted(CSV_ERRORS))
def test_bench_discharge_csv_error_is_a_message_with_exit_code_2(name, tmp_path, capsys):
    data, says = CSV_ERRORS[name]
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    for plan in ((), ("--plan", "--no-policy")):
        args = _bench_args("--cells", path, *plan, "--state-dir", tmp_path / "state")
        assert args.func(args) == 2  # returns: no exception, so no traceback
        err = capsys.readouterr().err
        assert err.startswith("discharge-edge bench discharge: ") and err.count("\n") == 1
        assert f"{path}{says}" in err, err
    assert not (tmp_path / "state").exists()  # refused before anything is written


def test_bench_discharge_on_a_missing_file_names_it(tmp_path, capsys):
    args = _bench_args("--cells", tmp_path / "nowhere.csv")
    assert args.func(args) == 2
    assert f"{tmp_path / 'nowhere.csv'}: cannot open" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (("--dt-s", "9"), "sil.dt_s must be in (0, 5] s"),
    (("--current-a", "1000"), "--current-a must be in (0, 15] A"),
    (("--max-time-s", "1e30"), "--max-time-s must be in (0, 86400] s"),
])
def test_bench_discharge_refuses_options_out_of_range(argv, says, capsys):
    args = _bench_args("--cells", CELLS, "--limit", 1, *argv)
    assert args.func(args) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--limit", "0"), ("--dt-s", "nan"), ("--max-time-s", "inf"),
                                           ("--current-a", "-5"), ("--simulations", "0")])
def test_bench_discharge_refuses_a_non_positive_or_infinite_option(option, value, capsys):
    with pytest.raises(SystemExit) as exc:
        _bench_args("--cells", CELLS, option, value)
    assert exc.value.code == 2 and option in capsys.readouterr().err


def test_bench_discharge_keeps_its_history_in_the_state_dir(tmp_path, monkeypatch):
    """--plan without --history: the history is ./state/strategy_history.sqlite, nothing in HOME."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    args = _bench_args("--cells", CELLS, "--limit", 2, "--plan", "--no-policy", "--simulations", 1, "--dt-s", 2,
                       "--max-time-s", 3600, "--json")
    assert args.func(args) == 0
    from edge.strategy.history import History

    with History(work / "state" / "strategy_history.sqlite") as h:
        assert {r.source for r in h.all()} == {"sil", "bench"}
    assert list(home.iterdir()) == []


def test_planned_bench_leaves_out_a_battery_graded_soh_276(tmp_path, capsys):
    """feat_r0p1s_mOhm = 1000 mΩ grades as SOH 276: the row leaves every run and is named."""
    rows = CELLS.read_text().splitlines()[:4]
    header = rows[0].split(",")
    fields = rows[2].split(",")
    fields[header.index("feat_r0p1s_mOhm")] = "1000"
    path = tmp_path / "r0_1000.csv"
    path.write_text("\n".join(rows[:2] + [",".join(fields)] + rows[3:]) + "\n")
    args = _bench_args("--cells", path, "--plan", "--no-policy", "--simulations", 1, "--dt-s", 2,
                       "--max-time-s", 3600, "--state-dir", tmp_path / "state", "--json")
    assert args.func(args) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert f"{path}:3: cell_id" in out.err
    assert report["cells"] == 2 and [r["line"] for r in report["refused"]] == [3]
    assert report["traditional"]["modules"] == report["ours"]["modules"] == 2
    assert all(p["soh_mean"] <= 1.2 for p in report["plans"])
