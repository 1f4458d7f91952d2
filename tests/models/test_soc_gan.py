"""models.soc_gan: split, losses, ONNX parity with PyTorch (<= 1e-5 % SOC), and a training smoke test."""

import json

import numpy as np
import pytest
import torch

from edge import REPO_ROOT
from edge.grading.features import FEATURE_COLUMNS
from edge.grading.soc_model import SHIPPED_DIR, SocModel
from models.soc_gan.data import held_out_mask, load_split, sha256_file
from models.soc_gan.export import check_parity, export_onnx
from models.soc_gan.gan import NOISE_DIM, Generator, build_generator, ecdf_normal_scores, gaussian_mi_columns, mi_penalty, sample_crps


@pytest.fixture(scope="module")
def split():
    return load_split()


def shipped_generator() -> Generator:
    meta = json.loads((SHIPPED_DIR / "soc_gan.json").read_text())
    state_path = SHIPPED_DIR / meta["torch_state"]["file"]
    assert sha256_file(state_path) == meta["torch_state"]["sha256"]
    state = meta["torch_state"]
    gen = build_generator(len(FEATURE_COLUMNS), state["hidden"], state.get("members", 1))
    gen.load_state_dict(torch.load(state_path, weights_only=True))
    return gen.eval()


def test_split_is_fixed_disjoint_and_held_out(split):
    assert len(split.ids_test) == 200 and len(split.ids_train) == 800
    assert not set(split.ids_test.tolist()) & set(split.ids_train.tolist())
    ids = np.arange(1000)
    assert np.array_equal(held_out_mask(ids), held_out_mask(ids[::-1])[::-1])  # by cell_id, not by row order


def test_shipped_metadata_names_the_training_data(split):
    meta = json.loads((SHIPPED_DIR / "soc_gan.json").read_text())
    assert meta["training"]["data_sha256"] == split.data_sha256
    assert meta["training"]["n_test_cells_held_out"] == 200
    assert meta["model_sha256"] == sha256_file(SHIPPED_DIR / "soc_gan.onnx")


def test_onnxruntime_matches_pytorch_for_the_shipped_model(split):
    gen = shipped_generator()
    model = SocModel.load()
    x_std = model.standardise(split.x_test)
    gap = check_parity(gen, SHIPPED_DIR / "soc_gan.onnx", x_std, seed=3)
    assert gap <= 1e-5


def test_export_of_a_fresh_generator_is_faithful(tmp_path):
    torch.manual_seed(0)
    gen = Generator(len(FEATURE_COLUMNS), np.linspace(0.2, 1.0, len(FEATURE_COLUMNS)), 50.0, 26.0).eval()
    export_onnx(gen, tmp_path / "g.onnx")
    x = np.random.default_rng(1).standard_normal((500, len(FEATURE_COLUMNS)))
    assert check_parity(gen, tmp_path / "g.onnx", x) <= 1e-5


def test_sample_crps_matches_the_definition():
    draws = torch.tensor([[0.0, 1.0, 3.0]])
    y = torch.tensor([[1.0]])
    # E|X - y| = (1 + 0 + 2) / 3; E|X - X'| over ordered pairs i != j = (1 + 3 + 2) * 2 / 6
    assert sample_crps(draws, y).item() == pytest.approx(1.0 - 0.5 * 2.0)


def test_mi_penalty_bites_only_when_information_is_lost():
    rng = np.random.default_rng(2)
    truth = rng.standard_normal(400)
    feature = truth + 0.1 * rng.standard_normal(400)
    knots = torch.sort(torch.tensor(truth, dtype=torch.float32)).values
    scores = torch.tensor(feature[:, None], dtype=torch.float32)
    t = torch.tensor(truth, dtype=torch.float32)
    target = gaussian_mi_columns(ecdf_normal_scores(t, knots).reshape(-1, 1), scores)
    assert target.item() > 1.5  # corr ~0.995 -> about 2.3 nats
    active = torch.ones(1)
    keeps = mi_penalty(t, scores, knots, target * 0.9, active)
    loses = mi_penalty(torch.tensor(rng.standard_normal(400), dtype=torch.float32), scores, knots, target * 0.9, active)
    assert keeps.item() == 0.0
    assert loses.item() > 0.5


@pytest.mark.slow
def test_training_smoke_exports_a_model_edge_accepts(split, tmp_path):
    from models.soc_gan.export import export
    from models.soc_gan.train import TrainConfig, fit_soh_ridge, train

    torch.set_num_threads(1)
    result = train(split, TrainConfig(max_epochs=30, min_epochs=10, warmup_start_epoch=5, warmup_epochs=5))
    export(result, split, fit_soh_ridge(split, result.scaler), tmp_path)
    model = SocModel.load(tmp_path)
    pred = model.predict(split.x_test[:20])
    assert np.all(np.isfinite(pred.soc_pct))
