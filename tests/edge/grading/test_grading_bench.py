"""Peak memory of `discharge-edge grade` at 1 000, 10 000 and 100 000 rows (issue 17: under 1 GB).

Each run is a fresh process (`python -m edge.cli grade --cells F --json`) started by a small
wrapper that reports its only child's peak RSS (resource.getrusage(RUSAGE_CHILDREN)), so nothing
else this test session ran counts. The cells are the 800 held-out cells of tests/data drawn with
replacement, new ids, written under pytest's tmp dir (rows the model was not fitted on). The
benchmark records wall time and, in extra_info, peak_rss_mb; the assertion is on memory, never
on time. Measured (2 shared cores, 2026-11-29, load 4-5 from other sessions): 10 000 rows
178 MB, 2.2-5.1 s wall for 1.6-2.2 s of CPU (issue 19: float32 network, posterior as matrix
products; 50851db in the same runs: 245 MB, 6.7-12 s wall, 5.1-5.9 s of CPU). Later the same day
(tables kept in build/grading, two threads, report_json): 169 MB, 0.72-1.0 s wall for 1.0-1.1 s of
CPU at a load of 1.9, 1.1-1.4 s at a load of 3. Before streaming (issue 17): 30 000 rows 4.0 GB,
100 000 rows 13.2 GB / 177 s.
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import FEATURE_COLUMNS, feature_matrix, read_cells_csv

pytestmark = pytest.mark.bench

HELD_OUT = [REPO_ROOT / "tests" / "data" / name for name in ("cells_unseen.csv", "cells_unseen_seed11.csv")]
PEAK_LIMIT_MB = 1024.0
WRAPPER = (
    "import resource, subprocess, sys\n"
    "with open(sys.argv[1], 'wb') as out:\n"
    "    code = subprocess.run([sys.executable, '-m', 'edge.cli', 'grade', '--cells', sys.argv[2], '--json'],"
    " stdout=out).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def write_cells(path, n: int) -> None:
    x = np.vstack([feature_matrix(read_cells_csv(p)) for p in HELD_OUT])
    rng = np.random.default_rng(n)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["cell_id", *FEATURE_COLUMNS])
        for start in range(0, n, 10_000):
            rows = x[rng.integers(0, len(x), min(10_000, n - start))]
            out.writerows([start + i, *(f"{v:.6g}" for v in row)] for i, row in enumerate(rows))


def peak_rss_mb(cells, report) -> float:
    done = subprocess.run([sys.executable, "-c", WRAPPER, str(report), str(cells)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True, timeout=1800)
    max_rss_kb, code = done.stdout.split()
    assert int(code) == 0, done.stderr[-2000:]
    return int(max_rss_kb) / 1024.0


def bench_peak(benchmark, tmp_path, n: int) -> None:
    cells, report = tmp_path / "cells.csv", tmp_path / "report.json"
    write_cells(cells, n)
    peaks = []
    benchmark.pedantic(lambda: peaks.append(peak_rss_mb(cells, report)), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = n
    benchmark.extra_info["peak_rss_mb"] = round(peaks[0], 1)
    graded = json.loads(report.read_text())
    assert graded["n_cells"] == n and graded["refused"] == []
    assert peaks[0] < PEAK_LIMIT_MB, f"grade on {n} rows peaked at {peaks[0]:.0f} MB"


def test_bench_grade_peak_memory_1000_rows(benchmark, tmp_path):
    bench_peak(benchmark, tmp_path, 1_000)


@pytest.mark.slow
def test_bench_grade_peak_memory_10000_rows(benchmark, tmp_path):
    bench_peak(benchmark, tmp_path, 10_000)


@pytest.mark.slow
def test_bench_grade_peak_memory_100000_rows(benchmark, tmp_path):
    bench_peak(benchmark, tmp_path, 100_000)
