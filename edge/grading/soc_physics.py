"""SOC from the rest voltage by Bayes over the ageing states of the training population (S11).

The rest voltage is the OCV plus an unknown offset (hysteresis, incomplete relaxation: up to
+-10 mV in the data). Which SOC an OCV means depends on how the cell aged (edge.grading.
electrochem): the same 3.70 V is a different SOC after loss of lithium than after loss of
graphite. The arrival test tells us about the ageing in two ways, and this module weighs them:

- the SOH estimate (edge.grading.soh_model) against each prior cell's SOH, Gaussian with the
  estimate's own validation spread;
- the relaxation after the 10 s pulse: the rest voltage before minus after
  (`feat_v_rest_V - feat_v_relax60s_V`) is mostly the OCV drop of the pulse's charge, which is
  the local slope of the OCV curve: flat on a graphite plateau, steep between them. The rest is
  overpotential not yet relaxed after 60 s, which grows with resistance. A linear map fitted on
  the training cells (`relaxation_terms`: the measured drop, the three DC resistances, the sag
  from 5 s to 10 s of the pulse, the cell temperature) estimates the OCV drop (mV) with a known
  spread, compared with the drop each prior cell would show at its SOC.

For each battery, each prior ageing state k (the degradation modes of the training cells,
never the battery's own) and each offset h on a uniform grid, SOC_kh = OCV_k^-1(v_rest - h);
the weights are the two likelihoods. The result is the posterior mean and standard deviation
of SOC, in %: two derived state parameters the SOC generator takes beside the feat_* columns.
Tables: per prior state, SOC and OCV drop on a uniform voltage grid, so one battery costs
index arithmetic only; the sum runs in float32 over (state, battery, offset) blocks of 32
batteries, one gather a grid point (within 1e-5 pp of the float64 sum; 10 000 batteries 1.37 s,
was 1.47 s, best of 3: the gathers of about 490 states x 21 offsets a battery are the cost). Tests: tests/edge/grading/test_grading_soc_physics.py, tests/edge/grading/test_grading_fast_reader.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.grading.electrochem import solve_windows
from edge.grading.features import FEATURE_COLUMNS

SOC_GRID = np.linspace(0.0, 1.0, 2001)
V_GRID_LO_V, V_GRID_HI_V, V_GRID_STEP_V = 2.4, 4.3, 0.0005
V_GRID = np.arange(V_GRID_LO_V, V_GRID_HI_V + V_GRID_STEP_V / 2, V_GRID_STEP_V)
DERIVED_COLUMNS = ("phys_soc_pct", "phys_soc_sd_pct")
"""The generator's inputs after the feat_* columns: posterior mean and sd of SOC (%)."""
RELAXATION_TERMS = ("drop_rest_to_relax60s_mV", "feat_r0p1s_mOhm", "feat_r1s_mOhm", "feat_r10s_mOhm",
                    "sag_p5s_to_p10s_mV", "feat_t_cell_C")
SOH_CUTOFF_SD = 5.0
PULSE_CHARGE_AH = 5.0 * 10.0 / 3600.0
"""Charge the arrival test's pulse removes: 5 A for 10 s."""
_COL = {name: FEATURE_COLUMNS.index(name) for name in FEATURE_COLUMNS}


def relaxation_terms(features: np.ndarray) -> np.ndarray:
    """(n, 6) in RELAXATION_TERMS order, from feat_* columns (n, 14) in FEATURE_COLUMNS order."""
    x = np.asarray(features, dtype=float)
    return np.column_stack([
        1e3 * (x[:, _COL["feat_v_rest_V"]] - x[:, _COL["feat_v_relax60s_V"]]),
        x[:, _COL["feat_r0p1s_mOhm"]], x[:, _COL["feat_r1s_mOhm"]], x[:, _COL["feat_r10s_mOhm"]],
        1e3 * (x[:, _COL["feat_v_p5s_V"]] - x[:, _COL["feat_v_p10s_V"]]),
        x[:, _COL["feat_t_cell_C"]],
    ])


@dataclass(frozen=True)
class PhysicsParams:
    """Everything the posterior needs; stored under `physics` in the model metadata."""

    prior_lli: tuple[float, ...]
    prior_lam_ne: tuple[float, ...]
    prior_lam_pe: tuple[float, ...]
    prior_soh: tuple[float, ...]
    relax_coef: tuple[float, ...]
    """OCV drop (mV) = relax_coef . relaxation_terms + relax_offset_mv."""
    relax_offset_mv: float
    relax_sd_mv: float
    soh_sd: float
    hyst_half_width_v: float = 0.010
    hyst_points: int = 21
    pulse_charge_ah: float = PULSE_CHARGE_AH

    def __post_init__(self) -> None:
        n = len(self.prior_lli)
        if n == 0 or any(len(p) != n for p in (self.prior_lam_ne, self.prior_lam_pe, self.prior_soh)):
            raise ValueError("physics prior: lli, lam_ne, lam_pe and soh must be non-empty and of one length")
        if len(self.relax_coef) != len(RELAXATION_TERMS):
            raise ValueError(f"physics: relax_coef must hold {len(RELAXATION_TERMS)} values {RELAXATION_TERMS}")
        if min(self.relax_sd_mv, self.soh_sd, self.pulse_charge_ah) <= 0 or self.hyst_half_width_v < 0 or self.hyst_points < 1:
            raise ValueError("physics: spreads and the pulse charge must be > 0, the offset grid non-empty")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> PhysicsParams:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class SocPosterior:
    """Posterior mean and sd of SOC (%) from rest voltage, relaxation and SOH estimate."""

    def __init__(self, params: PhysicsParams):
        self.params = params
        n = len(params.prior_lli)
        # float32 tables: half the memory traffic; SOC to ~1e-5 pp, far below the +-10 mV offset's reach
        self._soc = np.empty((n, len(V_GRID)), dtype=np.float32)
        self._drop_mv = np.empty((n, len(V_GRID)), dtype=np.float32)
        ageing = np.array([params.prior_lli, params.prior_lam_ne, params.prior_lam_pe], dtype=float)[:, :, None]
        windows = solve_windows(*ageing)  # each field (n, 1)
        curves = windows.ocv_v(SOC_GRID[None, :])  # (n, len(SOC_GRID)), rising with SOC
        for k in range(n):
            soc = np.interp(V_GRID, curves[k], SOC_GRID)
            self._soc[k] = soc
            pulse_soc = params.pulse_charge_ah / windows.cap_ah[k, 0]
            self._drop_mv[k] = 1e3 * (V_GRID - np.interp(soc - pulse_soc, SOC_GRID, curves[k]))
        self._prior_soh = np.asarray(params.prior_soh)
        self._offsets_v = np.linspace(-params.hyst_half_width_v, params.hyst_half_width_v, params.hyst_points)
        # one gather a grid point: [SOC, its rise to the next point, drop scaled by the spread, its rise]
        scale = np.float32(np.sqrt(0.5) / params.relax_sd_mv)
        pair = np.empty((n, len(V_GRID), 4), dtype=np.float32)
        pair[:, :, 0] = self._soc
        pair[:, :-1, 1] = np.diff(self._soc, axis=1)
        pair[:, -1, 1] = 0.0
        pair[:, :, 2] = self._drop_mv * scale
        pair[:, :-1, 3] = np.diff(self._drop_mv * scale, axis=1)
        pair[:, -1, 3] = 0.0
        self._pair = pair
        self._drop_scale = scale

    def estimated_drop_mv(self, features: np.ndarray) -> np.ndarray:
        """OCV drop of the pulse (mV) estimated from the measured relaxation, feat_* columns (n, 14)."""
        return relaxation_terms(features) @ np.asarray(self.params.relax_coef) + self.params.relax_offset_mv

    def estimate(self, features: np.ndarray, soh_est: np.ndarray, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) of SOC in %, one value per battery, from feat_* columns (n, 14) and the SOH estimate.

        Float32 over the (state, battery, offset) cube, one gather per grid point (SOC, drop and
        their rises to the next point), the weights left unnormalised (mean = sum w·soc / sum w,
        sd from the second moment, sums in float64)."""
        features = np.asarray(features, dtype=float)
        v_rest_v = features[:, _COL["feat_v_rest_V"]]
        soh_est = np.asarray(soh_est, dtype=float)
        drop = (self.estimated_drop_mv(features) * self._drop_scale).astype(np.float32)
        p = self.params
        mean = np.empty(len(v_rest_v))
        sd = np.empty(len(v_rest_v))
        # Batteries in order of SOH estimate, so that each chunk spans a narrow SOH range and the
        # prior states more than SOH_CUTOFF_SD spreads from all of it (SOH weight < 4e-6) are skipped.
        order = np.argsort(soh_est, kind="stable")
        h = len(self._offsets_v)
        for a in range(0, len(v_rest_v), chunk):
            b = order[a : a + chunk]
            near = np.abs(self._prior_soh[:, None] - soh_est[b][None, :]).min(axis=1) <= SOH_CUTOFF_SD * p.soh_sd
            states = np.flatnonzero(near) if near.any() else np.arange(len(self._prior_soh))
            ocv = v_rest_v[b, None] - self._offsets_v[None, :]  # (n, H) candidate OCVs
            pos = (ocv - V_GRID_LO_V) / V_GRID_STEP_V
            i = np.clip(np.floor(pos).astype(np.int64), 0, len(V_GRID) - 2).ravel()
            t = np.clip(pos - np.floor(pos), 0.0, 1.0).astype(np.float32).ravel()
            t = np.where(pos.ravel() < 0, 0.0, np.where(pos.ravel() >= len(V_GRID) - 1, 1.0, t)).astype(np.float32)
            flat = (states[:, None] * len(V_GRID) + i[None, :]).ravel()
            g = self._pair.reshape(-1, 4).take(flat, axis=0).reshape(len(states), len(i), 4)  # (K, n*H, 4)
            soc = g[:, :, 0] + t * g[:, :, 1]  # (K, n*H)
            u = g[:, :, 2] + t * g[:, :, 3]
            u -= np.repeat(drop[b], h)[None, :]
            log_w = np.multiply(u, u, out=u)
            np.negative(log_w, out=log_w)
            soh_term = (-0.5 * ((soh_est[b][None, :] - self._prior_soh[states, None]) / p.soh_sd) ** 2)
            log_w += np.repeat(soh_term.astype(np.float32), h, axis=1)
            log_w = log_w.reshape(len(states), len(b), h)
            log_w -= log_w.max(axis=(0, 2), keepdims=True)
            w = np.exp(log_w, out=log_w).reshape(len(states), -1)
            w_soc = w * soc
            s0 = w.reshape(len(states), len(b), h).sum(axis=(0, 2), dtype=np.float64)
            s1 = w_soc.reshape(len(states), len(b), h).sum(axis=(0, 2), dtype=np.float64)
            s2 = (w_soc * soc).reshape(len(states), len(b), h).sum(axis=(0, 2), dtype=np.float64)
            m = s1 / s0
            mean[b] = m
            sd[b] = np.sqrt(np.clip(s2 / s0 - m * m, 0.0, None))
        return 100.0 * mean, 100.0 * sd
