"""Bivariate copula families: log-density, maximum-likelihood fit on pseudo-observations, AIC.

Owns five families (Gaussian, Student-t, Clayton, Gumbel, Frank) plus independence, each as a
log-density log c(u, v; theta) on (0, 1)^2. Clayton and Gumbel model positive dependence
only; for a negative Kendall tau they are fitted to the 90-degree rotation (1 - u, v), which
leaves the mutual information unchanged. Parameters are fitted by maximum likelihood
(scipy.optimize, bounded), started from the Kendall-tau inversion. The best family by AIC
is kept (`fit_best_copula`). Tests: tests/edge/grading/test_grading_mutual_info.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

_EPS = 1e-12


@dataclass(frozen=True)
class CopulaFit:
    """A fitted copula: family, parameters, whether u was reflected, log-likelihood, AIC."""

    family: str
    params: tuple[float, ...]
    rotated: bool
    loglik: float
    n: int

    @property
    def aic(self) -> float:
        return 2.0 * len(self.params) - 2.0 * self.loglik

    def logpdf(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        u = 1.0 - np.asarray(u) if self.rotated else np.asarray(u)
        return LOGPDF[self.family](u, np.asarray(v), *self.params)


def pseudo_observations(x: np.ndarray) -> np.ndarray:
    """Ranks scaled into (0, 1): rank / (n + 1), ties averaged."""
    x = np.asarray(x, dtype=float)
    return stats.rankdata(x) / (len(x) + 1.0)


def _clip(u: np.ndarray) -> np.ndarray:
    return np.clip(u, _EPS, 1.0 - _EPS)


def logpdf_independence(u, v):
    return np.zeros(np.broadcast(u, v).shape)


def logpdf_gaussian(u, v, rho):
    a, b = special.ndtri(_clip(u)), special.ndtri(_clip(v))
    one = 1.0 - rho * rho
    return -0.5 * np.log(one) - (rho * rho * (a * a + b * b) - 2.0 * rho * a * b) / (2.0 * one)


def logpdf_student(u, v, rho, nu):
    a, b = stats.t.ppf(_clip(u), nu), stats.t.ppf(_clip(v), nu)
    one = 1.0 - rho * rho
    log_joint = (
        special.gammaln((nu + 2.0) / 2.0)
        - special.gammaln(nu / 2.0)
        - math.log(nu * math.pi)
        - 0.5 * math.log(one)
        - (nu + 2.0) / 2.0 * np.log1p((a * a - 2.0 * rho * a * b + b * b) / (nu * one))
    )
    return log_joint - stats.t.logpdf(a, nu) - stats.t.logpdf(b, nu)


def logpdf_clayton(u, v, theta):
    u, v = _clip(u), _clip(v)
    lu, lv = np.log(u), np.log(v)
    # s = u^-theta + v^-theta - 1, formed in logs to keep the corners finite.
    s = np.exp(-theta * lu) + np.exp(-theta * lv) - 1.0
    return math.log1p(theta) - (1.0 + theta) * (lu + lv) - (2.0 + 1.0 / theta) * np.log(s)


def logpdf_gumbel(u, v, theta):
    x, y = -np.log(_clip(u)), -np.log(_clip(v))
    lx, ly = np.log(x), np.log(y)
    big = np.logaddexp(theta * lx, theta * ly)  # log(x^theta + y^theta)
    a = np.exp(big / theta)  # (x^theta + y^theta)^(1/theta)
    return (
        -a
        + x
        + y
        + (theta - 1.0) * (lx + ly)
        - (2.0 - 1.0 / theta) * big
        + np.log(a + theta - 1.0)
    )


def logpdf_frank(u, v, theta):
    u, v = _clip(u), _clip(v)
    # c = theta (1 - e^-theta) e^{-theta(u+v)} / [(1 - e^-theta) - (1 - e^{-theta u})(1 - e^{-theta v})]^2
    e1 = -np.expm1(-theta)
    denom = e1 - (-np.expm1(-theta * u)) * (-np.expm1(-theta * v))
    return np.log(theta * e1) - theta * (u + v) - 2.0 * np.log(np.abs(denom))


LOGPDF = {
    "independence": logpdf_independence,
    "gaussian": logpdf_gaussian,
    "student": logpdf_student,
    "clayton": logpdf_clayton,
    "gumbel": logpdf_gumbel,
    "frank": logpdf_frank,
}

COPULA_FAMILIES: tuple[str, ...] = ("gaussian", "student", "clayton", "gumbel", "frank")


def _frank_tau(theta: float) -> float:
    if abs(theta) < 1e-6:
        return 0.0
    debye, _ = _debye1(theta)
    return 1.0 - 4.0 / theta * (1.0 - debye)


def _debye1(theta: float) -> tuple[float, float]:
    from scipy.integrate import quad

    t = abs(theta)
    value, err = quad(lambda s: s / np.expm1(s) if s > 0 else 1.0, 0.0, t)
    value /= t
    if theta < 0:  # D1(-x) = D1(x) + x/2
        value += t / 2.0
    return value, err


def _start(family: str, tau: float) -> tuple[list[float], list[tuple[float, float]]]:
    """Start value from the Kendall tau inversion, and bounds, for each family."""
    tau_pos = min(max(abs(tau), 0.01), 0.95)
    if family == "gaussian":
        return [math.sin(math.pi * tau / 2.0)], [(-0.999, 0.999)]
    if family == "student":
        return [math.sin(math.pi * tau / 2.0), 8.0], [(-0.999, 0.999), (2.05, 60.0)]
    if family == "clayton":
        return [2.0 * tau_pos / (1.0 - tau_pos)], [(1e-4, 60.0)]
    if family == "gumbel":
        return [1.0 / (1.0 - tau_pos)], [(1.0 + 1e-6, 40.0)]
    if family == "frank":
        # tau of Frank at theta = 80 is about 0.95: stronger dependence starts at the bound
        tau_frank = math.copysign(min(abs(tau), 0.95), tau)
        root = optimize.brentq(lambda th: _frank_tau(th) - tau_frank, -80.0, 80.0) if abs(tau) > 1e-3 else 0.1
        if abs(root) < 1e-3:
            root = 0.1
        return [root], [(-80.0, 80.0)]
    raise ValueError(f"unknown copula family {family!r}")


def fit_copula(u: np.ndarray, v: np.ndarray, family: str, tau: float | None = None) -> CopulaFit | None:
    """Maximum-likelihood fit of one family to pseudo-observations (u, v); None on failure."""
    if tau is None:
        tau = float(stats.kendalltau(u, v)[0])
    if family == "independence":
        return CopulaFit("independence", (), False, 0.0, len(u))
    rotated = family in ("clayton", "gumbel") and tau < 0
    uu = 1.0 - u if rotated else u
    start, bounds = _start(family, tau)
    fn = LOGPDF[family]

    def negloglik(params: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            total = float(np.sum(fn(uu, v, *params)))
        return -total if np.isfinite(total) else 1e300

    with np.errstate(all="ignore"):
        result = optimize.minimize(negloglik, np.asarray(start), method="L-BFGS-B", bounds=bounds)
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        return None
    params = tuple(float(p) for p in result.x)
    if family == "frank" and abs(params[0]) < 1e-6:
        return None
    return CopulaFit(family, params, rotated, float(-result.fun), len(u))


def fit_best_copula(
    u: np.ndarray, v: np.ndarray, families: tuple[str, ...] = COPULA_FAMILIES
) -> tuple[CopulaFit, list[CopulaFit]]:
    """Fit each family (and independence); return the best by AIC and all fits (best first)."""
    unknown = [f for f in families if f not in LOGPDF]
    if unknown:
        raise ValueError(f"unknown copula families {unknown}; known: {sorted(LOGPDF)}")
    tau = float(stats.kendalltau(u, v)[0])
    if not np.isfinite(tau):
        tau = 0.0
    fits = [fit_copula(u, v, family, tau) for family in ("independence", *families)]
    fits = [fit for fit in fits if fit is not None]
    fits.sort(key=lambda fit: fit.aic)
    return fits[0], fits
