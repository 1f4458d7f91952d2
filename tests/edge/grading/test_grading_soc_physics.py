"""edge.grading.soc_physics and soh_model: the physics posterior of SOC and the SOH estimate."""

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.electrochem import solve_windows
from edge.grading.features import FEATURE_COLUMNS, feature_matrix, read_cells_csv
from edge.grading.soc_physics import RELAXATION_TERMS, PhysicsParams, SocPosterior, relaxation_terms
from edge.grading.soh_model import SohModel, quadratic_terms

pytestmark = pytest.mark.unit

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
REST = FEATURE_COLUMNS.index("feat_v_rest_V")
RELAX = FEATURE_COLUMNS.index("feat_v_relax60s_V")
DROP_ONLY = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def electrode_window(lli, lam_ne, lam_pe):
    """One cell's windows, scalar in and out."""
    return solve_windows(np.array(lli), np.array(lam_ne), np.array(lam_pe))


def params(prior, **kw):
    prior = np.atleast_2d(prior)
    base = dict(prior_lli=tuple(prior[:, 0]), prior_lam_ne=tuple(prior[:, 1]), prior_lam_pe=tuple(prior[:, 2]),
                prior_soh=tuple(prior[:, 3]), relax_coef=DROP_ONLY, relax_offset_mv=0.0, relax_sd_mv=0.3, soh_sd=0.03)
    return PhysicsParams(**{**base, **kw})


def features_at(v_rest_v, drop_mv, n=1):
    x = np.zeros((n, len(FEATURE_COLUMNS)))
    x[:, REST] = v_rest_v
    x[:, RELAX] = np.asarray(v_rest_v) - np.asarray(drop_mv) / 1e3
    return x


def test_one_known_ageing_state_and_no_offset_inverts_the_ocv_curve():
    ageing = (0.12, 0.05, 0.08)
    window = electrode_window(*ageing)
    socs = np.array([0.1, 0.4, 0.75])
    posterior = SocPosterior(params([(*ageing, 0.8)], hyst_half_width_v=0.0, hyst_points=1))
    mean, sd = posterior.estimate(features_at(window.ocv_v(socs), 1.0, 3), np.full(3, 0.8))
    assert mean == pytest.approx(100 * socs, abs=0.05)
    assert np.all(sd < 1e-4)  # no spread: what is left is the float32 moments' rounding (~2e-6 pp)


def test_the_offset_allowance_widens_the_posterior():
    ageing = (0.12, 0.05, 0.08, 0.8)
    v = electrode_window(*ageing[:3]).ocv_v(0.5)
    narrow = SocPosterior(params([ageing], hyst_half_width_v=0.002))
    wide = SocPosterior(params([ageing], hyst_half_width_v=0.010))
    assert wide.estimate(features_at(v, 1.0), [0.8])[1][0] > 3 * narrow.estimate(features_at(v, 1.0), [0.8])[1][0]


def test_the_relaxation_picks_the_ageing_state_whose_slope_it_matches():
    # two training cells of SOH 0.60 that got there differently (cell 57 lost far more positive material)
    states = [(0.3318, 0.236863, 0.180207, 0.60), (0.281226, 0.172599, 0.0187908, 0.60)]
    v = 3.65
    posterior = SocPosterior(params(states, hyst_half_width_v=0.0, hyst_points=1))
    socs, drops = [], []
    for lli, ne, pe, _ in states:
        window = electrode_window(lli, ne, pe)
        grid = np.linspace(0, 1, 20001)
        soc = float(np.interp(v, window.ocv_v(grid), grid))
        socs.append(100 * soc)
        drops.append(1e3 * float(window.ocv_v(soc) - window.ocv_v(soc - posterior.params.pulse_charge_ah / window.cap_ah)))
    assert abs(socs[0] - socs[1]) > 2 and abs(drops[0] - drops[1]) > 1.5  # the test means something
    for k in range(2):
        mean, _ = posterior.estimate(features_at(v, drops[k]), [0.8])
        assert mean[0] == pytest.approx(socs[k], abs=0.3)


def test_posterior_on_real_cells_beats_a_single_curve_and_states_its_spread():
    table = read_cells_csv(TRAIN_CSV)
    c = table.columns
    prior = np.column_stack([c["truth_lli"], c["truth_lam_ne"], c["truth_lam_pe"], c["truth_soh"]])[:300]
    x, soc, soh = feature_matrix(table)[300:500], 100 * c["truth_soc"][300:500], c["truth_soh"][300:500]
    posterior = SocPosterior(params(prior, relax_sd_mv=1e3))  # SOH evidence only
    mean, sd = posterior.estimate(x, soh + np.random.default_rng(0).normal(0, 0.03, len(soh)))
    fresh = electrode_window(0.0, 0.0, 0.0)  # the fresh cell's OCV curve
    grid = np.linspace(0, 1, 2001)
    one_curve = 100 * np.interp(x[:, REST], fresh.ocv_v(grid), grid)
    rmse = np.sqrt(np.mean((mean - soc) ** 2))
    assert rmse < 0.5 * np.sqrt(np.mean((one_curve - soc) ** 2))
    assert rmse < 2.5
    inside = np.mean(np.abs(mean - soc) < 1.2816 * sd)  # nominal 80 %
    assert 0.65 < inside < 0.95


def test_relaxation_terms_are_named_and_in_units():
    x = features_at(3.700, 4.0)
    x[0, FEATURE_COLUMNS.index("feat_v_p5s_V")] = 3.610
    x[0, FEATURE_COLUMNS.index("feat_v_p10s_V")] = 3.605
    x[0, FEATURE_COLUMNS.index("feat_r10s_mOhm")] = 40.0
    terms = dict(zip(RELAXATION_TERMS, relaxation_terms(x)[0]))
    assert terms["drop_rest_to_relax60s_mV"] == pytest.approx(4.0)
    assert terms["sag_p5s_to_p10s_mV"] == pytest.approx(5.0)
    assert terms["feat_r10s_mOhm"] == 40.0


@pytest.mark.parametrize("change, message", [
    (dict(prior_soh=(0.8, 0.7)), "one length"),
    (dict(relax_coef=(1.0,)), "relax_coef"),
    (dict(relax_sd_mv=0.0), "spreads"),
])
def test_physics_params_refuse_inconsistent_values(change, message):
    with pytest.raises(ValueError, match=message):
        params([(0.1, 0.0, 0.0, 0.8)], **change)
    assert PhysicsParams.from_dict(params([(0.1, 0.0, 0.0, 0.8)]).as_dict()) == params([(0.1, 0.0, 0.0, 0.8)])


def test_quadratic_terms_and_soh_model():
    z = np.array([[1.0, 2.0, 3.0]])
    assert quadratic_terms(z).tolist() == [[1, 2, 3, 1, 2, 3, 4, 6, 9]]
    model = SohModel(np.zeros(3), np.ones(3), np.r_[np.zeros(3), 1.0, np.zeros(5)], 0.5, 0.02)
    assert model.predict(z)[0] == pytest.approx(1.5)
    data = model.as_dict()
    assert SohModel.from_dict(data, 3).predict(z)[0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="coef must hold 9"):
        SohModel.from_dict({**data, "coef": [0.0] * 3}, 3)


def reference_posterior(posterior, x, soh):
    """The same Bayes sum in float64 with the log-weights shifted by their maximum: every prior
    state, every offset, np.interp on the tables (mean, sd in %)."""
    p, grid = posterior.params, np.linspace(2.4, 4.3, posterior.soc_table.shape[0])
    drop = posterior.estimated_drop_mv(x)
    out = []
    for b in range(len(x)):
        ocv = x[b, REST] - posterior._offsets_v
        soc = np.array([np.interp(ocv, grid, posterior.soc_table[:, k].astype(float)) for k in range(len(p.prior_lli))])
        model_drop = np.array([np.interp(ocv, grid, posterior.drop_table_mv[:, k].astype(float))
                               for k in range(len(p.prior_lli))])
        log_w = -0.5 * ((drop[b] - model_drop) / p.relax_sd_mv) ** 2
        log_w += (-0.5 * ((soh[b] - np.asarray(p.prior_soh)) / p.soh_sd) ** 2)[:, None]
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        m = (w * soc).sum()
        out.append((100 * m, 100 * np.sqrt((w * (soc - m) ** 2).sum())))
    return np.array(out).T


def test_a_battery_no_prior_state_explains_is_summed_again_shifted():
    """A drop 40 mV from every state's (log-weights below -2 000: every float32 weight underflows)
    and an SOH 12 spreads from the prior still get the posterior of the states least unlike them."""
    states = [(0.12, 0.05, 0.08, 0.80), (0.20, 0.10, 0.02, 0.70), (0.05, 0.02, 0.15, 0.85)]
    posterior = SocPosterior(params(states))
    x = features_at(np.array([3.61, 3.75, 3.9012, 4.05]), np.array([45.0, 2.0, 3.0, 1.5]), 4)
    soh = np.array([0.80, 1.2, 0.75, 0.82])
    mean, sd = posterior.estimate(x, soh)
    ref_mean, ref_sd = reference_posterior(posterior, x, soh)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))
    np.testing.assert_allclose(mean, ref_mean, atol=1e-3)
    np.testing.assert_allclose(sd, ref_sd, atol=1e-3)
    assert np.ptp(mean) > 20


def test_the_posterior_is_per_battery_whatever_its_neighbours():
    """Grouping batteries by grid row must not mix them: one battery alone or among 300 others,
    the same numbers (to float32 rounding), and no battery leaves the file's order."""
    table = read_cells_csv(TRAIN_CSV, limit=300)
    x = feature_matrix(table)
    posterior = SocPosterior(params(np.column_stack([table.columns[k] for k in
                                                      ("truth_lli", "truth_lam_ne", "truth_lam_pe", "truth_soh")])[:100]))
    soh = table.columns["truth_soh"]
    mean, sd = posterior.estimate(x, soh)
    for b in (0, 17, 299):
        alone = posterior.estimate(x[b:b + 1], soh[b:b + 1])
        assert alone[0][0] == pytest.approx(mean[b], abs=1e-4)
        assert alone[1][0] == pytest.approx(sd[b], abs=1e-4)
    assert posterior.estimate(x[:0], soh[:0])[0].shape == (0,)
