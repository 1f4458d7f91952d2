"""Mutual information between a state parameter and SOH (or SOC) as copula entropy (DESIGN.md S11).

Owns `fit_pair` (marginals by ML + best copula by AIC + I(X;Y)), `copula_mi` (the mutual
information of a fitted copula) and `mi_table` (one row per feature). I(X;Y) depends only on
the copula: I = integral of c log c over the unit square. The Gaussian copula has the closed form
-1/2 log(1 - rho^2); every other family is integrated numerically on a grid in normal-score
space (u = Phi(s), v = Phi(t)), where the integrand c(Phi(s), Phi(t)) phi(s) phi(t) log c is
smooth and decays like a Gaussian, so a trapezoid rule over [-8, 8]^2 converges quickly.
The marginals are fitted as the seed asks (they give the joint density `joint_logpdf`); the
copula is fitted to rank pseudo-observations so that a poor marginal fit cannot bias I.
Tests: tests/edge/grading/test_grading_mutual_info.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from edge.grading.copulas import COPULA_FAMILIES, CopulaFit, fit_best_copula, pseudo_observations
from edge.grading.marginals import FAMILIES, Criterion, MarginalFit, fit_marginal


@dataclass(frozen=True)
class MIConfig:
    """How marginals and copulas are chosen and how finely the MI integral is evaluated."""

    criterion: Criterion = Criterion.AIC
    marginal_families: tuple[str, ...] = tuple(FAMILIES)
    copula_families: tuple[str, ...] = COPULA_FAMILIES
    grid_points: int = 401
    grid_half_width: float = 8.0

    def __post_init__(self) -> None:
        if len(self.marginal_families) < 1 or len(self.copula_families) < 1:
            raise ValueError("MIConfig: at least one marginal and one copula family")
        if self.grid_points < 51 or self.grid_points % 2 == 0:
            raise ValueError(f"MIConfig.grid_points must be odd and >= 51, got {self.grid_points}")
        if not 4.0 <= self.grid_half_width <= 12.0:
            raise ValueError(f"MIConfig.grid_half_width must be in [4, 12], got {self.grid_half_width}")


@dataclass(frozen=True)
class PairMI:
    """The fitted model of one (X, Y) pair and its mutual information in nats."""

    name: str
    marginal_x: MarginalFit
    marginal_y: MarginalFit
    copula: CopulaFit
    mi_nats: float

    def joint_logpdf(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log f(x, y) = log c(F_X(x), F_Y(y)) + log f_X(x) + log f_Y(y)."""
        u, v = self.marginal_x.cdf(x), self.marginal_y.cdf(y)
        return self.copula.logpdf(u, v) + self.marginal_x.logpdf(x) + self.marginal_y.logpdf(y)

    def as_row(self) -> dict:
        return {
            "feature": self.name,
            "mi_nats": round(self.mi_nats, 6),
            "copula": self.copula.family + ("_rot90" if self.copula.rotated else ""),
            "copula_params": [round(p, 6) for p in self.copula.params],
            "marginal_x": self.marginal_x.family,
            "marginal_y": self.marginal_y.family,
        }


def gaussian_mi(rho: float) -> float:
    """Closed form for the Gaussian copula: -1/2 log(1 - rho^2) nats."""
    return -0.5 * math.log1p(-rho * rho)


def copula_mi(copula: CopulaFit, config: MIConfig = MIConfig()) -> float:
    """I = E_c[log c(U, V)] for a fitted copula, in nats (never negative)."""
    if copula.family == "independence":
        return 0.0
    if copula.family == "gaussian":
        return gaussian_mi(copula.params[0])
    return max(0.0, numerical_copula_mi(copula.logpdf, config))


def numerical_copula_mi(logpdf, config: MIConfig = MIConfig()) -> float:
    """Trapezoid rule for the copula entropy integral in normal-score coordinates."""
    s = np.linspace(-config.grid_half_width, config.grid_half_width, config.grid_points)
    h = s[1] - s[0]
    u = special.ndtr(s)
    log_phi = -0.5 * s * s - 0.5 * math.log(2.0 * math.pi)
    uu, vv = np.meshgrid(u, u, indexing="ij")
    with np.errstate(all="ignore"):
        logc = logpdf(uu, vv)
    log_weight = log_phi[:, None] + log_phi[None, :] + logc  # log of the joint density in (s, t)
    integrand = np.where(np.isfinite(log_weight), np.exp(log_weight) * np.where(np.isfinite(logc), logc, 0.0), 0.0)
    trapezoid = np.ones(config.grid_points)
    trapezoid[[0, -1]] = 0.5
    return float(h * h * trapezoid @ integrand @ trapezoid)


def fit_pair(name: str, x: np.ndarray, y: np.ndarray, config: MIConfig = MIConfig()) -> PairMI:
    """Marginals of x and y, the best copula of their pseudo-observations, and I(X;Y)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"{name}: x and y must be 1-D arrays of equal length")
    marginal_x, _ = fit_marginal(x, config.criterion, config.marginal_families)
    marginal_y, _ = fit_marginal(y, config.criterion, config.marginal_families)
    u, v = pseudo_observations(x), pseudo_observations(y)
    copula, _ = fit_best_copula(u, v, config.copula_families)
    return PairMI(name, marginal_x, marginal_y, copula, copula_mi(copula, config))


def mi_table(
    features: np.ndarray, names: tuple[str, ...], target: np.ndarray, config: MIConfig = MIConfig()
) -> list[PairMI]:
    """One `PairMI` per feature column against `target` (SOH in the seed), in column order."""
    features = np.asarray(features, dtype=float)
    if features.ndim != 2 or features.shape[1] != len(names):
        raise ValueError(f"features must be (n, {len(names)}), got {features.shape}")
    return [fit_pair(name, features[:, j], target, config) for j, name in enumerate(names)]
