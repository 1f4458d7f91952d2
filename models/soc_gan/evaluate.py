"""Evaluate SOC predictors on the held-out cells of the fixed split, all in one run.

Owns the comparison the issue asks for: the shipped GAN (served through edge.grading.soc_model,
so the ONNX path is what is measured), its physics posterior alone (the generator's input
`phys_soc_pct`, edge.grading.soc_physics), the same GAN retrained without the MI constraint
(ablation), a rest-voltage lookup fitted on the training cells, a tuned small MLP and gradient
boosting (scikit-learn, small grids tuned by 3-fold cross-validation on the training cells only),
RMSE/MAE in SOC percentage points, interval coverage, and tier quality against SOH bins
(adjusted Rand index; also against true-SOC bins) beside k-means on the same criteria.

    nice -n 10 .venv/bin/python -m models.soc_gan.evaluate [--cells OTHER.csv] [--json out.json]

`--cells` evaluates the models trained on the split's training cells on another population
(e.g. one made by ../shared/data/gen_cells.py). Tests: tests/models/test_soc_gan.py (slow).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np
import torch
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from edge.grading.features import FEATURE_COLUMNS, feature_matrix, read_cells_csv, target_column
from edge.grading.soc_model import SHIPPED_DIR, SocModel
from edge.grading.tiers import TierConfig, assign_tiers
from models.soc_gan.data import load_split
from models.soc_gan.physics_fit import physics_inputs
from models.soc_gan.train import TrainConfig, predict_draws, train

log = logging.getLogger(__name__)
REST = FEATURE_COLUMNS.index("feat_v_rest_V")


def errors(pred: np.ndarray, truth: np.ndarray) -> dict:
    e = pred - truth
    return {"rmse_pp": float(np.sqrt(np.mean(e * e))), "mae_pp": float(np.mean(np.abs(e))),
            "max_abs_pp": float(np.max(np.abs(e)))}


def rest_voltage_lookup(x_train, y_train, x_test) -> np.ndarray:
    """Monotone lookup SOC(v_rest): training pairs sorted by voltage, smoothed, interpolated."""
    v, y = x_train[:, REST], y_train
    order = np.argsort(v)
    v, y = v[order], y[order]
    width = 15
    kernel = np.ones(width) / width
    ys = np.convolve(np.pad(y, width // 2, mode="edge"), kernel, mode="valid")
    ys = np.maximum.accumulate(ys)
    vu, idx = np.unique(v, return_index=True)
    return np.interp(x_test[:, REST], vu, ys[idx])


def tuned_mlp(x, y):
    grid = {"mlpregressor__hidden_layer_sizes": [(32, 32), (64, 64), (64, 64, 64)],
            "mlpregressor__alpha": [1e-4, 1e-3, 1e-2]}
    pipe = make_pipeline(StandardScaler(), MLPRegressor(max_iter=3000, learning_rate_init=1e-3, random_state=0))
    search = GridSearchCV(pipe, grid, cv=KFold(3, shuffle=True, random_state=0), scoring="neg_root_mean_squared_error")
    return search.fit(x, y)


def tuned_gb(x, y):
    grid = {"n_estimators": [300, 800], "max_depth": [2, 3, 4], "learning_rate": [0.05]}
    gb = GradientBoostingRegressor(subsample=0.8, random_state=0)
    search = GridSearchCV(gb, grid, cv=KFold(3, shuffle=True, random_state=0), scoring="neg_root_mean_squared_error")
    return search.fit(x, y)


def coverage(lo, hi, truth) -> float:
    return float(np.mean((truth >= lo) & (truth <= hi)))


def tier_quality(model: SocModel, x, soc_pred, soh_true, soc_true, n_tiers: int) -> dict:
    """ARI of our tiers and of k-means (same z-scored criteria) against SOH and true-SOC bins."""
    soh_est = model.soh(x)
    criteria = {"soc_pct": soc_pred, "soh": soh_est, "r0p1s_mOhm": x[:, FEATURE_COLUMNS.index("feat_r0p1s_mOhm")]}
    result = assign_tiers(criteria, TierConfig(n_tiers=n_tiers))
    z = np.column_stack(list(criteria.values()))
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    km = KMeans(n_tiers, n_init=10, random_state=0).fit_predict(z)
    edges = np.linspace(0, 1, n_tiers + 1)[1:-1]
    soh_bins = np.digitize(soh_true, np.quantile(soh_true, edges))
    soc_bins = np.digitize(soc_true, np.quantile(soc_true, edges))
    return {
        "n_tiers": n_tiers,
        "soh_est_rmse": float(np.sqrt(np.mean((soh_est - soh_true) ** 2))),
        "ari_tiers_vs_soh_bins": float(adjusted_rand_score(soh_bins, result.tiers)),
        "ari_kmeans_vs_soh_bins": float(adjusted_rand_score(soh_bins, km)),
        "ari_tiers_vs_soc_bins": float(adjusted_rand_score(soc_bins, result.tiers)),
        "ari_kmeans_vs_soc_bins": float(adjusted_rand_score(soc_bins, km)),
        "silhouette_initial": result.quality_initial,
        "silhouette_final": result.quality_final,
        "reassigned_by_mahalanobis": result.reassigned,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", help="evaluate on this population instead of the held-out split")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--tiers", type=int, default=4)
    parser.add_argument("--ablation-dir", help="an export of `train --lambda-mi 0 --out DIR` (else trained here)")
    parser.add_argument("--skip-ablation", action="store_true")
    parser.add_argument("--model-dir", help="evaluate the export in this folder instead of models/shipped")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    split = load_split()
    x_tr, y_tr = split.x_train, split.soc_train_pct
    if args.cells:
        table = read_cells_csv(args.cells)
        x_te, y_te = feature_matrix(table), 100.0 * target_column(table, "truth_soc")
        soh_te, population = target_column(table, "truth_soh"), args.cells
    else:
        x_te, y_te, soh_te, population = split.x_test, split.soc_test_pct, split.soh_test, "held-out split"
    out = {"population": population, "n_test": int(len(y_te)), "n_train": int(len(y_tr)), "soc": {}}

    model = SocModel.load(args.model_dir or SHIPPED_DIR)
    pred = model.predict(x_te)
    out["soc"]["gan (shipped onnx)"] = errors(pred.soc_pct, y_te)
    physics = model.generator_inputs(x_te)
    out["soc"]["physics posterior alone"] = errors(physics[:, -2], y_te)
    half = stats.norm.ppf(0.5 + pred.level / 2) * physics[:, -1]  # the posterior's band at the model's level
    out["physics_interval"] = {"level": pred.level, "coverage": coverage(physics[:, -2] - half, physics[:, -2] + half, y_te)}
    out["interval"] = {"level": pred.level, "coverage": coverage(pred.lo_pct, pred.hi_pct, y_te),
                       "mean_width_pp": float(np.mean(pred.hi_pct - pred.lo_pct))}
    if args.ablation_dir:
        ablation_model = SocModel.load(args.ablation_dir)
        if ablation_model.meta["training"]["config"]["lambda_mi"] != 0.0:
            parser.error(f"{args.ablation_dir}: lambda_mi is not 0, not the ablation")
        if {**ablation_model.meta["training"]["config"], "lambda_mi": 0} != {**model.meta["training"]["config"], "lambda_mi": 0}:
            parser.error(f"{args.ablation_dir}: trained with another config than the shipped model")
        out["soc"]["gan without MI constraint"] = errors(ablation_model.predict(x_te).soc_pct, y_te)
    elif not args.skip_ablation:
        started = time.monotonic()
        shipped = model.meta["training"]["config"]
        ablation = train(split, TrainConfig(**{**shipped, "lambda_mi": 0.0}))
        inputs = np.column_stack([x_te, physics_inputs(ablation.physics, x_te)])
        draws = predict_draws(ablation.generator, ablation.scaler.apply(inputs), 64, seed=0)
        out["soc"]["gan without MI constraint"] = errors(np.median(draws, axis=1), y_te)
        log.info("ablation trained in %.0f s", time.monotonic() - started)
    out["soc"]["rest-voltage lookup"] = errors(rest_voltage_lookup(x_tr, y_tr, x_te), y_te)
    mlp = tuned_mlp(x_tr, y_tr)
    out["soc"]["tuned MLP"] = {**errors(mlp.predict(x_te), y_te), "params": mlp.best_params_}
    gb = tuned_gb(x_tr, y_tr)
    out["soc"]["gradient boosting"] = {**errors(gb.predict(x_te), y_te), "params": gb.best_params_}
    out["tiers"] = tier_quality(model, x_te, pred.soc_pct, soh_te, y_te, args.tiers)
    for name, row in out["soc"].items():
        print(f"{name:28s} RMSE {row['rmse_pp']:.3f} pp  MAE {row['mae_pp']:.3f} pp")
    print(json.dumps({k: v for k, v in out.items() if k != "soc"}, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
