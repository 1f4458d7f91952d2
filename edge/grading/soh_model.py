"""SOH estimate from the arrival-test state parameters: ridge regression on quadratic terms.

Owns `quadratic_terms` (the standardised features and every product z_i z_j, i <= j) and
`SohModel` (scaler, coefficients and intercept as stored under `soh_model` in the SOC model's
metadata). Fitted by models/soc_gan/physics_fit.py; served here with numpy only.
Tests: tests/edge/grading/test_grading_soc_physics.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def quadratic_terms(z: np.ndarray) -> np.ndarray:
    """[z, z_i * z_j for i <= j] for each row of z (n, d) -> (n, d + d (d + 1) / 2)."""
    z = np.asarray(z, dtype=float)
    i, j = np.triu_indices(z.shape[1])
    return np.hstack([z, z[:, i] * z[:, j]])


@dataclass(frozen=True)
class SohModel:
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    sd: float
    """Spread of the estimate's error on validation cells (fraction of rated capacity)."""

    @classmethod
    def from_dict(cls, data: dict, n_features: int) -> SohModel:
        """From `as_dict` output (its `kind` is a label for readers, ignored here)."""
        n_terms = n_features + n_features * (n_features + 1) // 2
        model = cls(np.asarray(data["mean"], float), np.asarray(data["std"], float),
                    np.asarray(data["coef"], float), float(data["intercept"]), float(data["sd"]))
        if model.mean.shape != (n_features,) or model.std.shape != (n_features,) or np.any(model.std <= 0):
            raise ValueError(f"soh_model: mean and std must hold {n_features} values, std > 0")
        if model.coef.shape != (n_terms,) or model.sd <= 0:
            raise ValueError(f"soh_model: coef must hold {n_terms} quadratic-term coefficients, sd > 0")
        return model

    def as_dict(self) -> dict:
        return {"kind": "ridge on quadratic terms of the standardised feat_* columns",
                "mean": self.mean.tolist(), "std": self.std.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept, "sd": self.sd}

    def predict(self, features: np.ndarray) -> np.ndarray:
        return quadratic_terms((np.asarray(features, float) - self.mean) / self.std) @ self.coef + self.intercept
