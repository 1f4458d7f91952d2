"""Marginal distributions of one state parameter (or SOH): maximum-likelihood fits, best by AIC/BIC.

Owns the candidate families (`FAMILIES`, eight scipy.stats continuous families), the fit of
each by scipy's maximum likelihood (`rv_continuous.fit`, location and scale free), the
information criterion that picks the best, and the fitted marginal's cdf/logpdf used to build
the joint density f(x, y) = c(F_X(x), F_Y(y)) f_X(x) f_Y(y) (DESIGN.md S11).

Data are standardised before fitting (fits are scale-equivariant; it keeps the optimiser in a
well-conditioned range) and the log-likelihood is reported in the original units.
Tests: tests/edge/grading/test_grading_marginals.py.
"""

from __future__ import annotations

import enum
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

log = logging.getLogger(__name__)


class Criterion(enum.Enum):
    AIC = "aic"
    BIC = "bic"


FAMILIES: dict[str, stats.rv_continuous] = {
    "norm": stats.norm,
    "logistic": stats.logistic,
    "gumbel_r": stats.gumbel_r,
    "gumbel_l": stats.gumbel_l,
    "skewnorm": stats.skewnorm,
    "lognorm": stats.lognorm,
    "gamma": stats.gamma,
    "weibull_min": stats.weibull_min,
}
"""Candidate families; the shape-free ones first (their fits cannot fail)."""


@dataclass(frozen=True)
class MarginalFit:
    """One fitted family: parameters in the original units, log-likelihood and both criteria."""

    family: str
    params: tuple[float, ...]
    loglik: float
    n: int

    @property
    def k(self) -> int:
        return len(self.params)

    @property
    def aic(self) -> float:
        return 2.0 * self.k - 2.0 * self.loglik

    @property
    def bic(self) -> float:
        return self.k * float(np.log(self.n)) - 2.0 * self.loglik

    def score(self, criterion: Criterion) -> float:
        return self.aic if criterion is Criterion.AIC else self.bic

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return FAMILIES[self.family].cdf(x, *self.params)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return FAMILIES[self.family].logpdf(x, *self.params)


def fit_family(x: np.ndarray, family: str) -> MarginalFit | None:
    """Maximum-likelihood fit of one family; None when the fit fails or is not finite."""
    x = np.asarray(x, dtype=float)
    mean, sd = float(np.mean(x)), float(np.std(x))
    if not sd > 0:
        return None
    z = (x - mean) / sd
    dist = FAMILIES[family]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            params_z = dist.fit(z)
        except (ValueError, RuntimeError, FloatingPointError) as exc:
            log.debug("fit of %s failed: %s", family, exc)
            return None
    # Back to original units: location and scale are the last two parameters.
    *shapes, loc, scale = params_z
    params = (*shapes, loc * sd + mean, scale * sd)
    with np.errstate(all="ignore"):
        loglik = float(np.sum(dist.logpdf(x, *params)))
    if not np.isfinite(loglik):
        return None
    return MarginalFit(family=family, params=tuple(float(p) for p in params), loglik=loglik, n=len(x))


def fit_marginal(
    x: np.ndarray, criterion: Criterion = Criterion.AIC, families: tuple[str, ...] = tuple(FAMILIES)
) -> tuple[MarginalFit, list[MarginalFit]]:
    """Fit every family; return the best by `criterion` and all successful fits (best first)."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown marginal families {unknown}; known: {sorted(FAMILIES)}")
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or len(x) < 8 or not np.all(np.isfinite(x)):
        raise ValueError("a marginal needs a 1-D array of at least 8 finite values")
    fits = [fit for fit in (fit_family(x, f) for f in families) if fit is not None]
    if not fits:
        raise ValueError("no marginal family could be fitted (constant data?)")
    fits.sort(key=lambda fit: fit.score(criterion))
    return fits[0], fits
