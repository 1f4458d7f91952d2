"""`bench discharge` is bounded (issue 17): at most MAX_MODULES modules, a larger file refused by name
and row count before it is loaded; memory that does not grow with the run's virtual time; progress
on stderr; rows outside the physical ranges named with their line and left out."""

import argparse
import json
import subprocess
import sys
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from edge import REPO_ROOT

pytestmark = pytest.mark.integration

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
HEADER, *ROWS = CELLS.read_text().splitlines()


def _cells_file(path, n_rows: int):
    """`n_rows` rows of cells_train.csv, repeated, each with its own cell_id."""
    out = [HEADER]
    for i in range(n_rows):
        fields = ROWS[i % len(ROWS)].split(",")
        fields[0] = str(i)
        out.append(",".join(fields))
    path.write_text("\n".join(out) + "\n")
    return path


def _bench_args(*argv):
    from tools.bench_cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["bench", "discharge", *map(str, argv)])


def test_max_modules_is_the_same_in_the_parser_and_the_bench():
    from tools import bench_cli, bench_discharge

    assert bench_cli.MAX_MODULES == bench_discharge.MAX_MODULES == 2000


def test_bench_discharge_on_100000_rows_is_refused_naming_the_file_and_its_count(tmp_path, capsys):
    """Issue 17: 100 000 rows ran every row as a station, no output after 120 s at 4.1 GB. Now
    refused after reading 2 001 rows (the count from a block scan), nothing written."""
    path = _cells_file(tmp_path / "rows_100000.csv", 100_000)
    args = _bench_args("--cells", path, "--state-dir", tmp_path / "state")
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err == (f"discharge-edge bench discharge: {path}: 100000 rows; a bench batch is at most 2000 modules "
                   "(one SIL station each): use --limit 2000 or a smaller file\n")
    assert not (tmp_path / "state").exists()


def test_bench_discharge_on_100000_rows_with_limit_3_runs_the_first_3(tmp_path, capsys):
    path = _cells_file(tmp_path / "rows_100000.csv", 100_000)
    args = _bench_args("--cells", path, "--limit", 3, "--max-time-s", 30, "--json")
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["cells"] == 3


def test_bench_discharge_on_2001_rows_without_a_final_newline_counts_2001(tmp_path, capsys):
    path = _cells_file(tmp_path / "rows_2001.csv", 2001)
    path.write_text(path.read_text().rstrip("\n"))
    args = _bench_args("--cells", path)
    assert args.func(args) == 2
    assert f"{path}: 2001 rows;" in capsys.readouterr().err


def test_bench_discharge_limit_2001_is_refused(capsys):
    args = _bench_args("--cells", CELLS, "--limit", 2001)
    assert args.func(args) == 2
    assert "--limit must be at most 2000" in capsys.readouterr().err


def test_run_bench_discharge_refuses_a_batch_over_the_maximum():
    from tools.bench_discharge import MAX_MODULES, run_bench_discharge

    big = type("Big", (), {"path": "big.csv", "__len__": lambda self: MAX_MODULES + 1})()
    with pytest.raises(ValueError, match=r"big\.csv: 2001 modules; a bench batch is at most 2000"):
        run_bench_discharge(big)


def test_bench_discharge_on_a_row_with_v_rest_400_names_its_line_and_runs_the_rest(tmp_path, capsys):
    header = HEADER.split(",")
    bad = ROWS[1].split(",")
    bad[header.index("feat_v_rest_V")] = "400"
    path = tmp_path / "v_rest_400.csv"
    path.write_text("\n".join([HEADER, ROWS[0], ",".join(bad), ROWS[2]]) + "\n")
    args = _bench_args("--cells", path, "--max-time-s", 60, "--json")
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert f"{path}:3: cell_id 1: refused: feat_v_rest_V" in out.err
    report = json.loads(out.out)
    assert report["cells"] == 2
    assert [m["cell_id"] for m in report["ours"]["modules_list"]] == [0, 2]


def test_bench_discharge_prints_each_runs_progress_on_stderr(capsys):
    args = _bench_args("--cells", CELLS, "--limit", 3, "--max-time-s", 120, "--json")
    assert args.func(args) == 0
    out = capsys.readouterr()
    json.loads(out.out)  # stdout stays one JSON object
    lines = out.err.splitlines()
    assert any(line.startswith("discharge-edge bench discharge: traditional: done at 120 virtual s, ")
               for line in lines), lines
    assert any(line.startswith("discharge-edge bench discharge: ours: done at 120 virtual s, ") for line in lines)


class _Controller:
    def __init__(self, coolant_lpm):
        self.coolant = iter(coolant_lpm)

    def step(self, observation, dt_s):
        return SimpleNamespace(coolant_lpm=np.asarray(next(self.coolant), float))

    def isolated_stations(self):
        return np.array([False, True])


def test_watched_sums_the_coolant_step_by_step_and_reports_progress_on_its_clock():
    from tools.bench_discharge import Watched

    now = iter([0.0, 1.0, 6.0, 6.5, 6.5, 20.0, 20.0])
    lines = []
    watched = Watched(_Controller([[2.0, 4.0], [0.0, 10.0], [1.0, 1.0]]), "ours", 600.0, lines.append,
                      every_s=5.0, clock=lambda: next(now))
    obs = SimpleNamespace(t_s=0.0, tripped=np.array([False, True]))
    for t_s in (0.0, 1.0, 2.0):
        obs.t_s = t_s
        watched.step(obs, 1.0)
    assert watched.steps == 3
    assert watched.coolant_sum_lpm / watched.steps == pytest.approx((3.0 + 5.0 + 1.0) / 3)
    assert watched.coolant_max_lpm == 10.0
    assert lines == ["ours: 1 of 600 virtual s, 1 of 2 modules at cut-off, 6 s wall"]
    assert watched.isolated_stations().tolist() == [False, True]  # forwarded for run_sil
    assert not hasattr(Watched(object(), "x", 1.0), "isolated_stations")  # none when the controller has none


def _peak_traced_bytes(cells, max_time_s: float) -> int:
    from tools.bench_discharge import run_bench_discharge

    tracemalloc.start()
    try:
        run_bench_discharge(cells, dt_s=5.0, max_time_s=max_time_s)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_bench_discharge_memory_does_not_grow_with_virtual_time():
    """40 modules at 5 s steps: 600 against 7 200 virtual s (a SIL trace every 10 s would hold 12
    times the samples); the peak of traced memory stays within 10 %."""
    from tools.hil.cells import load_cells

    cells = load_cells(CELLS, limit=40)
    short = _peak_traced_bytes(cells, 600.0)
    long = _peak_traced_bytes(cells, 7200.0)
    assert long < 1.10 * short, (short, long)


@pytest.mark.slow
def test_bench_discharge_at_2000_modules_stays_under_its_stated_memory(tmp_path):
    """The maximum batch, 10 virtual minutes (memory does not grow with time: the test above), in
    its own process: peak resident memory under MAX_MEMORY_MB."""
    from tools.bench_discharge import MAX_MEMORY_MB, MAX_MODULES

    path = _cells_file(tmp_path / "rows_2000.csv", MAX_MODULES)
    # VmHWM, the process's own peak: ru_maxrss carries the forking parent's (pytest's) peak across exec
    code = ("import re, sys; from edge.cli import main; rc = main(sys.argv[1:]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1); "
            "print(hwm, file=sys.stderr); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "bench", "discharge", "--cells", str(path), "--max-time-s",
                           "600", "--json"], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ours"]["modules"] == MAX_MODULES
    peak_mb = int(done.stderr.splitlines()[-1]) / 1024
    assert peak_mb < MAX_MEMORY_MB, peak_mb
