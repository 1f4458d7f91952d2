"""edge.grading.tiers: SOC clusters, entropy weights, centre quality, Mahalanobis fallback."""

import numpy as np
import pytest

from edge.grading.tiers import (
    TierConfig,
    assign_tiers,
    entropy_weights,
    mahalanobis_assign,
    simplified_silhouette,
    top_battery,
)

pytestmark = pytest.mark.unit


def well_separated(rng, n_per=50):
    soc = np.concatenate([rng.normal(m, 2.0, n_per) for m in (15, 45, 80)])
    soh = rng.uniform(0.6, 0.95, len(soc))
    r = 80 - 50 * soh + rng.normal(0, 1, len(soc))
    return {"soc_pct": soc, "soh": soh, "r0p1s_mOhm": r}, np.repeat([1, 2, 3], n_per)


def test_separated_soc_groups_become_tiers_numbered_by_soc():
    criteria, truth = well_separated(np.random.default_rng(0))
    result = assign_tiers(criteria, TierConfig(n_tiers=3, quality_threshold=-1.0))
    assert not result.reassigned
    assert np.array_equal(result.tiers, truth)
    assert np.all(np.diff(result.centres[:, 0]) > 0)
    # each centre is a real battery of its tier
    for k, row in enumerate(result.centre_rows):
        assert result.tiers[row] == k + 1
        assert np.allclose(result.centres[k], [criteria[c][row] for c in result.criteria])


def test_entropy_weights_favour_the_discriminating_criterion():
    t = np.column_stack([np.full(10, 0.5), np.linspace(0.0, 1.0, 10)])
    w = entropy_weights(t)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(0.0, abs=1e-12) and w[1] == pytest.approx(1.0)


def test_top_battery_is_the_most_typical_one():
    values = np.array([[10.0, 0.7], [12.0, 0.8], [11.0, 0.75], [30.0, 0.9], [11.2, 0.76]])
    row, w = top_battery(values)
    assert row == 4  # the median battery on both criteria
    assert w.shape == (2,)


def test_low_quality_triggers_mahalanobis_reassignment():
    rng = np.random.default_rng(1)
    criteria = {"soc_pct": rng.uniform(5, 95, 400), "soh": rng.uniform(0.6, 0.95, 400),
                "r0p1s_mOhm": rng.uniform(20, 80, 400)}
    high = assign_tiers(criteria, TierConfig(n_tiers=4, quality_threshold=0.99))
    low = assign_tiers(criteria, TierConfig(n_tiers=4, quality_threshold=-1.0))
    assert high.reassigned and not low.reassigned
    assert high.quality_initial == pytest.approx(low.quality_initial)
    assert set(np.unique(high.tiers)) <= {1, 2, 3, 4}
    assert not np.array_equal(high.tiers, low.tiers)


def test_mahalanobis_uses_the_covariance():
    """Clusters tight along x (sd 0.05) and wide along y (sd 2): a point 0.9 along x from centre 0
    is Euclid-nearer to it, but 18 within-cluster sd away; it goes to centre 1, and every
    cluster point keeps its label."""
    offsets = np.array([(dx, dy) for dx in (-0.05, 0.05) for dy in np.linspace(-2.0, 2.0, 10)])
    centres = np.array([[0.0, 0.0], [1.0, 3.0]])
    z = np.vstack([centres[0] + offsets, centres[1] + offsets, [[0.9, 0.5]]])
    labels = np.array([0] * 20 + [1] * 20 + [0])
    euclid = np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert euclid[-1] == 0
    got = mahalanobis_assign(z, labels, centres)
    assert got.tolist() == [0] * 20 + [1] * 20 + [1]


def test_simplified_silhouette_values():
    centres = np.array([[0.0, 0.0], [2.0, 0.0]])
    on_centres = np.array([[0.0, 0.0], [2.0, 0.0]])
    assert simplified_silhouette(on_centres, np.array([0, 1]), centres) == pytest.approx(1.0)
    assert simplified_silhouette(on_centres, np.array([1, 0]), centres) == pytest.approx(-1.0)
    # (1, 0) is as far from both; (0.5, 0): own 0.5, other 1.5 -> 2/3
    assert simplified_silhouette(np.array([[1.0, 0.0], [0.5, 0.0]]), np.array([0, 0]), centres) == pytest.approx(1 / 3)
    assert simplified_silhouette(on_centres, np.array([0, 0]), centres[:1]) == 0.0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_tiers"):
        TierConfig(n_tiers=0)
    with pytest.raises(ValueError, match="silhouette"):
        TierConfig(quality_threshold=2.0)
    with pytest.raises(ValueError, match="soc_pct"):
        assign_tiers({"soh": np.ones(5)})
    with pytest.raises(ValueError, match="cannot fill"):
        assign_tiers({"soc_pct": np.arange(3.0)}, TierConfig(n_tiers=4))


def test_quantiles_are_numpys():
    from edge.grading.tiers import quantiles

    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 7, 100, 1001):
        values = rng.normal(50, 20, n)
        for k in (1, 2, 3, 4, 7):
            qs = (np.arange(k) + 0.5) / k
            np.testing.assert_array_equal(quantiles(values, qs), np.quantile(values, qs))
    ties = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 9.0])
    np.testing.assert_array_equal(quantiles(ties, [0.0, 0.3, 0.5, 1.0]), np.quantile(ties, [0.0, 0.3, 0.5, 1.0]))


def test_median_columns_are_numpys():
    from edge.grading.tiers import median_columns

    rng = np.random.default_rng(8)
    for n in (1, 2, 3, 4, 9, 100, 101):
        values = rng.normal(50, 20, (n, 3))
        values[: n // 3, 1] = 7.25  # ties
        np.testing.assert_array_equal(median_columns(values), np.median(values, axis=0))
