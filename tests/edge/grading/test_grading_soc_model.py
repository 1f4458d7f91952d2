"""edge.grading.soc_model: serving the shipped generator, and refusing a model that does not match."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import feature_matrix, read_cells_csv, target_column
from edge.grading.soc_model import SHIPPED_DIR, ModelIntegrityError, SocModel

pytestmark = pytest.mark.integration

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def model():
    return SocModel.load()


@pytest.fixture(scope="module")
def cells():
    table = read_cells_csv(TRAIN_CSV).subset(np.arange(200))
    return feature_matrix(table), 100 * target_column(table, "truth_soc"), target_column(table, "truth_soh")


@pytest.fixture
def copy_dir(tmp_path):
    for name in ("soc_gan.onnx", "soc_gan.json"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    return tmp_path


def test_predicts_soc_interval_and_soh(model, cells):
    x, soc, soh = cells
    pred = model.predict(x)
    assert pred.soc_pct.shape == (200,)
    assert np.all((pred.lo_pct <= pred.soc_pct) & (pred.soc_pct <= pred.hi_pct))
    assert np.all((0 <= pred.lo_pct) & (pred.hi_pct <= 100))
    # these rows include training cells, so this checks wiring, not generalisation
    assert np.sqrt(np.mean((pred.soc_pct - soc) ** 2)) < 5.0
    assert np.sqrt(np.mean((model.soh(x) - soh) ** 2)) < 0.05
    again = model.predict(x)
    assert np.array_equal(again.soc_pct, pred.soc_pct)  # fixed noise seed: reproducible


def test_refuses_a_tampered_model(copy_dir):
    data = bytearray((copy_dir / "soc_gan.onnx").read_bytes())
    data[-10] ^= 0xFF
    (copy_dir / "soc_gan.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"soc_gan\.onnx: sha256 .* does not match"):
        SocModel.load(copy_dir)


def edit_meta(folder, change):
    meta = json.loads((folder / "soc_gan.json").read_text())
    change(meta)
    (folder / "soc_gan.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(format="other/1"), "format"),
        (lambda m: m["feature_order"].reverse(), "feature_order"),
        (lambda m: m["scaler"]["std"].pop(), "scaler"),
        (lambda m: m["inputs"][0].update(name="x"), "input names"),
        (lambda m: m["inputs"][1].update(shape=["batch", 9]), "has shape"),
        (lambda m: m.pop("model_sha256"), "lacks"),
        (lambda m: m.update(model_file="gone.onnx"), "not found"),
        (lambda m: m["generator_inputs"].reverse(), "generator_inputs"),
        (lambda m: m["domain"]["min"].pop(), "domain"),
        (lambda m: m["domain"].update(min=[v + 1e3 for v in m["domain"]["max"]]), "domain"),
        (lambda m: m["physics"]["prior_soh"].pop(), "physics: .*one length"),
        (lambda m: m["physics"]["relax_coef"].pop(), "physics: relax_coef"),
        (lambda m: m["soh_model"]["coef"].pop(), "soh_model: coef"),
        (lambda m: m["soh_model"].pop("sd"), "soh_model"),
    ],
)
def test_refuses_metadata_that_does_not_match(copy_dir, change, message):
    edit_meta(copy_dir, change)
    with pytest.raises(ModelIntegrityError, match=message) as info:
        SocModel.load(copy_dir)
    assert str(copy_dir) in str(info.value)


def test_refuses_missing_or_broken_metadata(tmp_path):
    with pytest.raises(ModelIntegrityError, match="metadata not found"):
        SocModel.load(tmp_path)
    (tmp_path / "soc_gan.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        SocModel.load(tmp_path)


def test_edge_serves_without_importing_models_or_torch():
    code = (
        "import sys\n"
        "from edge.grading.cli import grade_cells\n"
        "from edge.grading.soc_model import SocModel\n"
        "SocModel.load()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('models', 'torch'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)


@pytest.mark.parametrize("name, measured_rmse_pp", [("cells_unseen.csv", 1.83), ("cells_unseen_seed11.csv", 1.89)])
def test_unseen_population_accuracy_and_coverage(model, name, measured_rmse_pp):
    """Two populations gen_cells.py made with seeds 7 (200 cells) and 11 (600) (training used seed 1).

    A regression guard for the shipped model; measured at export: RMSE 1.83 / 1.89 pp, coverage 77 %.
    The README's bar on its own unseen population: tuned MLP 1.94, gradient boosting 2.00.
    """
    table = read_cells_csv(REPO_ROOT / "tests" / "data" / name)
    x, soc = feature_matrix(table), 100 * target_column(table, "truth_soc")
    pred = model.predict(x)
    rmse = np.sqrt(np.mean((pred.soc_pct - soc) ** 2))
    assert rmse == pytest.approx(measured_rmse_pp, abs=0.01)
    assert rmse < 1.94
    assert 0.7 <= np.mean((soc >= pred.lo_pct) & (soc <= pred.hi_pct)) <= 0.9


def test_chunks_on_two_threads_predict_what_one_thread_predicts(monkeypatch):
    from edge.grading import soc_model

    monkeypatch.setattr(soc_model, "threads_now", lambda cap: cap)  # whatever else runs on the machine
    model = SocModel.load()
    rng = np.random.default_rng(11)
    low, high = (np.asarray(model.meta["domain"][k]) for k in ("min", "max"))
    x = low + rng.uniform(0, 1, (2600, len(low))) * (high - low)  # 3 chunks of 1024, the last short
    x_std = model.standardise(x)
    monkeypatch.setattr(soc_model, "GENERATOR_THREADS", 1)
    one = model.predict_standardised(x_std, n_draws=16)
    monkeypatch.setattr(soc_model, "GENERATOR_THREADS", 2)
    two = model.predict_standardised(x_std, n_draws=16)
    for a, b in ((one.soc_pct, two.soc_pct), (one.lo_pct, two.lo_pct), (one.hi_pct, two.hi_pct)):
        np.testing.assert_array_equal(a, b)
    assert len(one.soc_pct) == 2600 and np.ptp(one.soc_pct) > 20
    chunk2 = model.predict_standardised(x_std[2048:], n_draws=16, seed=2)  # chunk k: seed + k
    np.testing.assert_array_equal(chunk2.soc_pct, two.soc_pct[2048:])
