"""edge.grading.marginals: ML fits of the candidate families and the AIC/BIC choice."""

import numpy as np
import pytest
from scipy import stats

from edge.grading.marginals import FAMILIES, Criterion, fit_family, fit_marginal

pytestmark = pytest.mark.unit


def test_at_least_five_families():
    assert len(FAMILIES) >= 5


@pytest.mark.parametrize(
    "truth, sample",
    [
        ("norm", lambda rng: rng.normal(3.7, 0.2, 2000)),
        ("gumbel_r", lambda rng: stats.gumbel_r.rvs(40.0, 5.0, size=2000, random_state=rng)),
        ("lognorm", lambda rng: stats.lognorm.rvs(0.9, 0.0, 30.0, size=2000, random_state=rng)),
    ],
)
def test_the_generating_family_wins(truth, sample):
    x = sample(np.random.default_rng(1))
    best, fits = fit_marginal(x, Criterion.BIC)
    assert best.family == truth, [(f.family, round(f.bic, 1)) for f in fits[:3]]
    assert [f.bic for f in fits] == sorted(f.bic for f in fits)


def test_normal_fit_matches_the_closed_form_mle():
    x = np.random.default_rng(2).normal(50.0, 7.0, 500)
    fit = fit_family(x, "norm")
    assert fit.params == pytest.approx((x.mean(), x.std()), rel=1e-6)
    assert fit.loglik == pytest.approx(stats.norm.logpdf(x, x.mean(), x.std()).sum(), rel=1e-9)
    assert fit.aic == pytest.approx(4 - 2 * fit.loglik)
    assert fit.bic == pytest.approx(2 * np.log(500) - 2 * fit.loglik)


def test_criterion_changes_the_choice_by_its_penalty():
    x = np.random.default_rng(3).normal(0.0, 1.0, 60)
    _, fits = fit_marginal(x, Criterion.AIC)
    for fit in fits:
        assert fit.score(Criterion.BIC) - fit.score(Criterion.AIC) == pytest.approx(fit.k * (np.log(60) - 2))


def test_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown marginal"):
        fit_marginal(np.arange(20.0), families=("cauchyish",))
    with pytest.raises(ValueError, match="at least 8"):
        fit_marginal(np.arange(3.0))
    with pytest.raises(ValueError, match="no marginal family"):
        fit_marginal(np.ones(20))
