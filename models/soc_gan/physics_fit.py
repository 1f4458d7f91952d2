"""Fit the physics side of the SOC model: the SOH estimate, the relaxation map and the ageing prior.

Owns `fit_physics` (on some cells: SohModel by ridge on quadratic terms with alpha by
cross-validation, the linear map from measured relaxation to the pulse's OCV drop, and the
prior table of those cells' degradation modes) and `physics_inputs` (the two derived generator
inputs of edge.grading.soc_physics). `oof_physics_inputs` gives training cells inputs made
without themselves: each fold's prior and SOH model exclude the fold, so that the generator
learns from inputs as good as the ones it will see on new batteries, not better.
truth_* columns enter only as targets and as the prior's ageing states, never as inputs of a
prediction. Tests: tests/models/test_soc_gan.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from edge.grading.electrochem import solve_windows
from edge.grading.soc_physics import PULSE_CHARGE_AH, PhysicsParams, SocPosterior, relaxation_terms
from edge.grading.soh_model import SohModel, quadratic_terms


@dataclass(frozen=True)
class Physics:
    params: PhysicsParams
    soh_model: SohModel

    def posterior(self) -> SocPosterior:
        return SocPosterior(self.params)


def fit_soh_model(x: np.ndarray, soh: np.ndarray, seed: int = 0) -> SohModel:
    mean, std = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    terms = quadratic_terms((x - mean) / std)
    ridge = RidgeCV(alphas=np.logspace(-3, 4, 15))
    out_of_fold = cross_val_predict(ridge, terms, soh, cv=KFold(5, shuffle=True, random_state=seed))
    ridge.fit(terms, soh)
    return SohModel(mean, std, ridge.coef_.copy(), float(ridge.intercept_), float(np.std(soh - out_of_fold)))


def true_ocv_drop_mv(ageing: np.ndarray, soc: np.ndarray, pulse_charge_ah: float) -> np.ndarray:
    """The OCV drop (mV) the pulse's charge makes at the true SOC of each cell (training only)."""
    windows = solve_windows(ageing[:, 0], ageing[:, 1], ageing[:, 2])
    return 1e3 * (windows.ocv_v(soc) - windows.ocv_v(soc - pulse_charge_ah / windows.cap_ah))


def fit_physics(x: np.ndarray, soh: np.ndarray, ageing: np.ndarray, soc_pct: np.ndarray, seed: int = 0) -> Physics:
    """x: feat_* (n, 14); soh fraction; ageing (n, 3) lli, lam_ne, lam_pe; SOC in %."""
    drop = true_ocv_drop_mv(ageing, soc_pct / 100.0, PULSE_CHARGE_AH)
    terms = relaxation_terms(x)
    relax = LinearRegression().fit(terms, drop)
    soh_model = fit_soh_model(x, soh, seed)
    params = PhysicsParams(
        prior_lli=tuple(ageing[:, 0].tolist()), prior_lam_ne=tuple(ageing[:, 1].tolist()),
        prior_lam_pe=tuple(ageing[:, 2].tolist()), prior_soh=tuple(soh.tolist()),
        relax_coef=tuple(relax.coef_.tolist()), relax_offset_mv=float(relax.intercept_),
        relax_sd_mv=float(np.std(drop - relax.predict(terms))), soh_sd=soh_model.sd,
    )
    return Physics(params, soh_model)


def physics_inputs(physics: Physics, x: np.ndarray) -> np.ndarray:
    """(n, 2): posterior mean and sd of SOC in %, from feat_* only."""
    mean, sd = physics.posterior().estimate(x, physics.soh_model.predict(x))
    return np.column_stack([mean, sd])


def oof_physics_inputs(x, soh, ageing, soc_pct, folds: int = 5, seed: int = 0) -> np.ndarray:
    out = np.empty((len(x), 2))
    for fit, held in KFold(folds, shuffle=True, random_state=seed).split(x):
        physics = fit_physics(x[fit], soh[fit], ageing[fit], soc_pct[fit], seed)
        out[held] = physics_inputs(physics, x[held])
    return out
