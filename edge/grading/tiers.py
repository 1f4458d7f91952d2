"""Tiers (echelon classes) of batteries: SOC clusters, entropy-weight centres, Mahalanobis fallback.

Owns `TierConfig` and `assign_tiers` (DESIGN.md S11), defined as follows:
1. Initial clusters: one-dimensional k-means on SOC (quantile start, Lloyd iterations).
2. In each cluster, each criterion (SOC, SOH estimate, resistance, ...) is turned into a
   typicality t = 1 - |x - cluster median| / cluster range (1 = most typical). The entropy
   weight method weighs the criteria: p_ij = t_ij / sum_i t_ij, e_j = -sum_i p_ij ln p_ij / ln m,
   w_j = (1 - e_j) / sum_k (1 - e_k). The battery with the highest score sum_j w_j t_ij is the
   top battery; its criteria values are the cluster centre.
3. Quality of the centres: the simplified silhouette (Hruschka et al., 2004) in z-scored
   criteria space, mean over batteries of (b - a) / max(a, b), a = distance to the own centre,
   b = distance to the nearest other centre. O(n k), so it scales to 10 000 batteries.
4. If the quality is below `quality_threshold`, every battery joins the nearest centre by
   Mahalanobis distance under the pooled within-cluster covariance of the initial clusters.
Tiers are numbered 1..N by ascending SOC of their centres. Tests: tests/edge/grading/test_grading_tiers.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TierConfig:
    n_tiers: int = 4
    quality_threshold: float = 0.5
    kmeans_iterations: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.n_tiers <= 20:
            raise ValueError(f"TierConfig.n_tiers must be in 1..20, got {self.n_tiers}")
        if not -1.0 <= self.quality_threshold <= 1.0:
            raise ValueError(f"TierConfig.quality_threshold is a silhouette in [-1, 1], got {self.quality_threshold}")


@dataclass(frozen=True)
class TierResult:
    tiers: np.ndarray  # 1..N per battery
    criteria: tuple[str, ...]
    centres: np.ndarray  # (N, n_criteria), raw units, row t-1 = tier t
    centre_rows: np.ndarray  # index of the top battery of each tier
    weights: np.ndarray  # (N, n_criteria) entropy weights of the initial clusters
    quality_initial: float
    quality_final: float
    reassigned: bool


def quantiles(values: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """`np.quantile(values, qs)` (linear, the same numbers) without its import of numpy.ma (25 ms
    of a grade's start): the order statistics and numpy's interpolation, from the upper one when
    the fraction is at least 0.5."""
    ordered = np.sort(np.asarray(values, dtype=float))
    pos = np.asarray(qs, dtype=float) * (len(ordered) - 1)
    below = np.floor(pos).astype(np.int64)
    frac = pos - below
    a, b = ordered[below], ordered[np.minimum(below + 1, len(ordered) - 1)]
    diff = b - a
    return np.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac)


def median_columns(values: np.ndarray) -> np.ndarray:
    """`np.median(values, axis=0)` of finite values (the same numbers: the mean of the two middle
    ones) without its NaN check's import of numpy.ma."""
    n = len(values)
    part = np.partition(values, sorted({(n - 1) // 2, n // 2}), axis=0)
    return (part[(n - 1) // 2] + part[n // 2]) / 2


def kmeans_1d(values: np.ndarray, k: int, iterations: int) -> np.ndarray:
    """Labels 0..k-1 of a 1-D k-means started at the quantiles (deterministic)."""
    centres = quantiles(values, (np.arange(k) + 0.5) / k)
    labels = np.zeros(len(values), dtype=int)
    for _ in range(iterations):
        labels = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
        new = np.array([values[labels == j].mean() if np.any(labels == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def entropy_weights(typicality: np.ndarray) -> np.ndarray:
    """Entropy weight method over the columns of a non-negative (m, p) matrix."""
    m, p = typicality.shape
    if m < 2:
        return np.full(p, 1.0 / p)
    col = typicality.sum(axis=0)
    share = np.where(col > 0, typicality / np.where(col > 0, col, 1.0), 1.0 / m)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(share > 0, share * np.log(share), 0.0)
    entropy = -plogp.sum(axis=0) / np.log(m)
    diversity = np.clip(1.0 - entropy, 0.0, None)
    return diversity / diversity.sum() if diversity.sum() > 0 else np.full(p, 1.0 / p)


def top_battery(values: np.ndarray) -> tuple[int, np.ndarray]:
    """Row of the highest entropy-weighted typicality score in one cluster, and the weights."""
    median = median_columns(values)
    spread = values.max(axis=0) - values.min(axis=0)
    typicality = 1.0 - np.abs(values - median) / np.where(spread > 0, spread, 1.0)
    weights = entropy_weights(typicality)
    return int(np.argmax(typicality @ weights)), weights


def simplified_silhouette(z: np.ndarray, labels: np.ndarray, centres_z: np.ndarray) -> float:
    if len(centres_z) < 2:
        return 0.0
    dist = np.sqrt(((z[:, None, :] - centres_z[None, :, :]) ** 2).sum(axis=2))
    own = dist[np.arange(len(z)), labels]
    dist[np.arange(len(z)), labels] = np.inf
    other = dist.min(axis=1)
    denom = np.maximum(np.maximum(own, other), 1e-12)
    return float(np.mean((other - own) / denom))


def mahalanobis_assign(z: np.ndarray, labels: np.ndarray, centres_z: np.ndarray) -> np.ndarray:
    """Nearest centre by Mahalanobis distance under the pooled within-cluster covariance."""
    resid = z - centres_z[labels]
    cov = resid.T @ resid / max(len(z) - len(centres_z), 1) + 1e-6 * np.eye(z.shape[1])
    inv = np.linalg.inv(cov)
    diff = z[:, None, :] - centres_z[None, :, :]
    d2 = np.einsum("nkp,pq,nkq->nk", diff, inv, diff)
    return np.argmin(d2, axis=1)


def assign_tiers(criteria: dict[str, np.ndarray], config: TierConfig = TierConfig(), soc_key: str = "soc_pct") -> TierResult:
    """Tiers for n batteries; `criteria` maps a name to an (n,) array and must hold `soc_key`."""
    if soc_key not in criteria:
        raise ValueError(f"criteria must include {soc_key!r} (initial clusters are by SOC)")
    names = tuple(criteria)
    values = np.column_stack([np.asarray(criteria[name], dtype=float) for name in names])
    n = len(values)
    if not np.all(np.isfinite(values)):
        raise ValueError("criteria must be finite for every battery")
    if n < config.n_tiers:
        raise ValueError(f"{n} batteries cannot fill {config.n_tiers} tiers")
    soc = values[:, names.index(soc_key)]
    labels = kmeans_1d(soc, config.n_tiers, config.kmeans_iterations)
    present = np.flatnonzero(np.bincount(labels, minlength=config.n_tiers))  # np.unique imports numpy.ma
    labels = np.searchsorted(present, labels)  # drop empty clusters
    k = len(present)
    centre_rows, weights = np.zeros(k, dtype=int), np.zeros((k, len(names)))
    for j in range(k):
        rows = np.flatnonzero(labels == j)
        top, weights[j] = top_battery(values[rows])
        centre_rows[j] = rows[top]
    mu, sd = values.mean(axis=0), values.std(axis=0)
    z = (values - mu) / np.where(sd > 0, sd, 1.0)
    centres_z = z[centre_rows]
    quality = simplified_silhouette(z, labels, centres_z)
    final, reassigned = labels, False
    if quality < config.quality_threshold and k > 1:
        final, reassigned = mahalanobis_assign(z, labels, centres_z), True
    quality_final = simplified_silhouette(z, final, centres_z) if reassigned else quality
    order = np.argsort(values[centre_rows, names.index(soc_key)], kind="stable")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(1, k + 1)
    return TierResult(
        tiers=rank[final], criteria=names, centres=values[centre_rows][order], centre_rows=centre_rows[order],
        weights=weights[order], quality_initial=quality, quality_final=quality_final, reassigned=reassigned,
    )
