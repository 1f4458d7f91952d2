"""`discharge-edge grade`: JSON shape, text output, exit codes, and the 10 000-battery benchmark."""

import csv
import json
import shutil

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.grading.cli import grade_cells
from edge.grading.features import FEATURE_COLUMNS, feature_matrix, read_cells_csv
from edge.grading.soc_model import GENERATOR_INPUTS, SHIPPED_DIR, SocModel
from edge.grading.tiers import TierConfig

pytestmark = pytest.mark.integration

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def write_cells(path, rows: np.ndarray, ids) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["cell_id", *FEATURE_COLUMNS])
        for cell_id, row in zip(ids, rows):
            out.writerow([int(cell_id), *(f"{v:.6g}" for v in row)])


@pytest.fixture(scope="module")
def features():
    return feature_matrix(read_cells_csv(TRAIN_CSV))


@pytest.fixture
def small_csv(tmp_path, features):
    path = tmp_path / "arrivals.csv"
    write_cells(path, features[:40], range(100, 140))
    return path


def test_json_shape(small_csv, capsys):
    assert main(["grade", "--cells", str(small_csv), "--json", "--tiers", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_cells"] == 40
    cell = report["cells"][0]
    assert set(cell) == {"cell_id", "soc_pct", "soc_lo_pct", "soc_hi_pct", "soh_est", "tier", "out_of_domain"}
    assert all(c["out_of_domain"] == [] for c in report["cells"])  # training rows are inside
    assert [c["cell_id"] for c in report["cells"]] == list(range(100, 140))
    assert {c["tier"] for c in report["cells"]} <= {1, 2, 3}
    assert report["tiers"]["n_tiers"] == 3 and len(report["tiers"]["centres"]) == 3
    assert [row["feature"] for row in report["mi_table"]] == list(GENERATOR_INPUTS)
    assert all(row["mi_soh_nats"] >= 0 for row in report["mi_table"])
    assert 0 < report["soc_interval_level"] < 1


def test_batteries_outside_the_training_range_are_graded_and_flagged(tmp_path, features, capsys, caplog):
    rows = features[:5].copy()
    rows[1, FEATURE_COLUMNS.index("feat_v_rest_V")] = 4.5  # above the cell's 4.2 V: a wrong channel
    rows[3, FEATURE_COLUMNS.index("feat_r10s_mOhm")] = 900.0  # a loose contact
    path = tmp_path / "odd.csv"
    write_cells(path, rows, range(5))
    assert main(["grade", "--cells", str(path), "--json", "--tiers", "2"]) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [c["out_of_domain"] for c in cells] == [[], ["feat_v_rest_V"], [], ["feat_r10s_mOhm"], []]
    assert "2 of 5 batteries have features outside the training range" in caplog.text
    assert main(["grade", "--cells", str(path), "--tiers", "2"]) == 0
    assert "outside training: feat_r10s_mOhm" in capsys.readouterr().out


def test_text_output(small_csv, capsys):
    assert main(["grade", "--cells", str(small_csv)]) == 0
    out = capsys.readouterr().out
    assert "soc_pct" in out and "mutual information with SOH" in out and "feat_r0p1s_mOhm" in out


def test_bad_file_exits_2_naming_it(tmp_path, capsys):
    path = tmp_path / "broken.csv"
    path.write_text("cell_id,feat_v_rest_V\n1,3.7\n")
    assert main(["grade", "--cells", str(path), "--json"]) == 2
    assert "broken.csv:1: missing required columns" in capsys.readouterr().err


def test_tampered_model_exits_1(small_csv, tmp_path, capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("soc_gan.onnx", "soc_gan.json"):
        shutil.copy(SHIPPED_DIR / name, folder / name)
    with (folder / "soc_gan.onnx").open("ab") as handle:
        handle.write(b"\0")
    assert main(["grade", "--cells", str(small_csv), "--model-dir", str(folder)]) == 1
    assert "model refused" in capsys.readouterr().err


def bench_grading(benchmark, tmp_path, features, n):
    """End to end: read an n-row CSV (rows resampled from the training file), 64 noise draws
    per battery through onnxruntime, SOH estimate, tiers."""
    rng = np.random.default_rng(0)
    rows = features[rng.integers(0, len(features), n)]
    path = tmp_path / "many.csv"
    write_cells(path, rows, range(n))
    model = SocModel.load()

    def grade():
        table = read_cells_csv(path)
        return grade_cells(model, table.cell_ids, feature_matrix(table), TierConfig())

    report = benchmark(grade)
    assert report["n_cells"] == n
    assert {c["tier"] for c in report["cells"]} == {1, 2, 3, 4}


@pytest.mark.bench
@pytest.mark.slow  # several seconds once; `make bench` measures it
def test_bench_grade_10000_batteries(benchmark, tmp_path, features):
    bench_grading(benchmark, tmp_path, features, 10_000)


@pytest.mark.bench
def test_bench_grade_1000_batteries(benchmark, tmp_path, features):
    bench_grading(benchmark, tmp_path, features, 1_000)
