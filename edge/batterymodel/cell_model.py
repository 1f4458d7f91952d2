"""Second-order Thevenin cell model (2-RC ECM) for a flat batch of cells, vectorised with NumPy.

Owns: the ECM parameters (`EcmParams`, loaded from `../shared/data/ecm_defaults.json`), the
ageing law, and `CellBank`, the electrical state of N cells (SOC, RC voltages) with one
explicit step. Equations (I > 0 = discharge, T in K, z = SOC of the cell's own capacity):

    dz/dt = -I / (3600 Q)
    v_k  <- a_k v_k + (1 - a_k) R_k I,            a_k = exp(-dt / tau_k),  k = 1, 2
    R_k(z, T, I) = R_k,fresh(z) · s(SOH) · exp(B (1/T - 1/298.15)) · exp(g_k (|I| - 5) / 5)
    R_0 additionally + r_contact (the cell's own contact/film resistance, truth_r_contact_mOhm)
    V    = OCV(z) + (T - 298.15) dU/dT(z) - I R_0 - v_1 - v_2
    q    = I (OCV_T - V) - I T dU/dT(z)                         (Bernardi heat, W)

Ageing: capacity and OCV come from the degradation modes (edge/grading/electrochem.py; capacity =
SOH × 5.153 Ah by construction); resistance grows as SOH falls by the law

    s(SOH) = 1 + K_R · (1 - SOH) ** P_R      (K_R = 2.77, P_R = 1.24)

fitted on cells_train.csv rows 0-199 (validation uses rows 500+): per cell the uniform factor on
the R tables that best matches its step-3 discharge voltage, then a least-squares fit of the law
to those factors (residual scatter 0.10, the cell-to-cell spread of kinetics in the data). The
10 s pulse resistance alone gives a close law (2.04, 1.10). Solid diffusion in aged graphite
(truth_dn_f) adds a surface-SOC lag, see DIFF_GAIN_FRESH_S; without it aged cells miss 3 % RMSE.

Tests: tests/edge/batterymodel/test_cell_model.py, tests/tools/hil/test_hil_validation.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.grading.electrochem import ElectrodeWindows, ocp_negative_v, ocp_positive_v

T_REF_K = 298.15
K_R = 2.77
P_R = 1.24
SOC_GRID = np.round(np.arange(-0.40, 1.0 + 1e-9, 0.01), 6)
"""Uniform SOC grid of all tables; below 0 the OCV follows the electrodes, R tables hold."""
# Graphite solid diffusion beyond the fresh cell (Chen2020: particle radius 5.86 µm, D 3.3e-14
# m²/s). Uniform-flux polynomial profile: surface-minus-mean SOC at steady state is
# (R²/15D)·I/(3600 Q); the fresh share is already inside the fitted R tables, so only the extra
# from the cell's diffusivity factor dn_f (truth_dn_f) acts: gain R²/15D·(1/dn_f - 1), with a
# first-order lag R²/(30 D dn_f). The factor 1.1 on the gain is fitted on rows 0-199 (step 3).
DIFF_GAIN_FRESH_S = 1.1 * (5.86e-6) ** 2 / (15.0 * 3.3e-14)
DIFF_TAU_FRESH_S = (5.86e-6) ** 2 / (30.0 * 3.3e-14)
_DZ = 0.01


def default_ecm_path() -> Path:
    from edge import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "data" / "ecm_defaults.json"


def resistance_scale(soh: np.ndarray) -> np.ndarray:
    """The ageing law s(SOH): factor on the fresh R0, R1, R2 tables."""
    soh = np.asarray(soh, dtype=float)
    return 1.0 + K_R * np.clip(1.0 - soh, 0.0, None) ** P_R


@dataclass(frozen=True)
class EcmParams:
    """Fresh-cell ECM and thermal constants, resampled on SOC_GRID (resistances in ohm)."""

    r0_ohm: np.ndarray
    r1_ohm: np.ndarray
    r2_ohm: np.ndarray
    dudt_v_per_k: np.ndarray
    tau1_s: float
    tau2_s: float
    current_exponent_g: tuple[float, float, float]
    arrhenius_b_k: float
    heat_capacity_j_per_k: float
    cooling_area_m2: float
    source: str = field(default="", compare=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> "EcmParams":
        path = Path(path) if path is not None else default_ecm_path()
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the ECM defaults: {exc}") from exc
        need = ("soc_nodes", "R0_mOhm", "R1_mOhm", "R2_mOhm", "tau1_s", "tau2_s", "current_exponent_g",
                "B_K", "Cth_J_per_K", "A_cool_m2", "ocv_soc", "dUdT_mV_per_K")
        missing = [k for k in need if k not in raw]
        if missing:
            raise ValueError(f"{path}: missing fields {missing}")
        nodes = np.asarray(raw["soc_nodes"], dtype=float)
        grid = np.clip(SOC_GRID, 0.0, 1.0)

        def table(key: str, nodes_: np.ndarray, scale: float) -> np.ndarray:
            values = np.asarray(raw[key], dtype=float)
            if values.shape != nodes_.shape or not np.all(np.isfinite(values)):
                raise ValueError(f"{path}: field {key} must hold {nodes_.size} finite numbers")
            return np.interp(grid, nodes_, values) * scale

        g = tuple(float(v) for v in raw["current_exponent_g"])
        if len(g) != 3:
            raise ValueError(f"{path}: field current_exponent_g must hold 3 numbers")
        return cls(
            r0_ohm=table("R0_mOhm", nodes, 1e-3),
            r1_ohm=table("R1_mOhm", nodes, 1e-3),
            r2_ohm=table("R2_mOhm", nodes, 1e-3),
            dudt_v_per_k=table("dUdT_mV_per_K", np.asarray(raw["ocv_soc"], dtype=float), 1e-3),
            tau1_s=float(raw["tau1_s"]),
            tau2_s=float(raw["tau2_s"]),
            current_exponent_g=g,  # type: ignore[arg-type]
            arrhenius_b_k=float(raw["B_K"]),
            heat_capacity_j_per_k=float(raw["Cth_J_per_K"]),
            cooling_area_m2=float(raw["A_cool_m2"]),
            source=str(path),
        )


def electrode_tables(windows: ElectrodeWindows) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative OCP (V, 25 °C) of each cell on SOC_GRID: two (n_cells, n_grid) arrays."""
    w = ElectrodeWindows(*(np.asarray(a)[:, None] for a in (
        windows.cap_ah, windows.x100, windows.y100, windows.q_neg_ah, windows.q_pos_ah)))
    x, y = w.stoichiometry(SOC_GRID[None, :])
    return ocp_positive_v(y), ocp_negative_v(x)


def diffusion_factor_for_soh(soh: np.ndarray) -> np.ndarray:
    """Graphite diffusivity factor when only SOH is known: the data generator's median law."""
    g = np.clip((1.0 - np.asarray(soh, dtype=float)) / 0.4, 0.0, None)
    return 1.0 / (1.0 + 2.0 * g)


class CellBank:
    """Electrical state of a flat batch of cells; `evaluate` then `advance` steps it by dt."""

    def __init__(self, params: EcmParams, windows: ElectrodeWindows, soc: np.ndarray,
                 soh: np.ndarray, r_contact_ohm: np.ndarray, diff_factor: np.ndarray | None = None,
                 cap_scale: np.ndarray | None = None, r_scale_extra: np.ndarray | None = None) -> None:
        n = np.asarray(soc).size
        self.p = params
        self.cap_ah = np.asarray(windows.cap_ah, dtype=float).reshape(n).copy()
        if cap_scale is not None:
            self.cap_ah *= np.asarray(cap_scale, dtype=float).reshape(n)
        pos, neg = electrode_tables(windows)
        self.pos_flat, self.neg_flat = pos.ravel(), neg.ravel()
        self.row0 = np.arange(n) * SOC_GRID.size
        soh = np.asarray(soh, dtype=float).reshape(n)
        self.r_scale = resistance_scale(soh)
        if r_scale_extra is not None:
            self.r_scale = self.r_scale * np.asarray(r_scale_extra, dtype=float).reshape(n)
        self.r_contact_ohm = np.asarray(r_contact_ohm, dtype=float).reshape(n)
        dn = diffusion_factor_for_soh(soh) if diff_factor is None else np.asarray(diff_factor, float).reshape(n)
        if np.any(~np.isfinite(dn)) or np.any(dn <= 0.0) or np.any(dn > 1.0):
            raise ValueError(f"diffusion factor must be in (0, 1], got {dn}")
        self.diff_gain_s = DIFF_GAIN_FRESH_S * (1.0 / dn - 1.0)
        self.diff_tau_s = DIFF_TAU_FRESH_S / dn
        self.soc = np.asarray(soc, dtype=float).reshape(n).copy()
        self.v1 = np.zeros(n)
        self.v2 = np.zeros(n)
        self.dz_surf = np.zeros(n)
        self.n = n

    @staticmethod
    def _index(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.clip(z, SOC_GRID[0], SOC_GRID[-1]) - SOC_GRID[0]) / _DZ
        i = np.minimum(pos.astype(np.int64), SOC_GRID.size - 2)
        f = pos - i
        return i, f, 1.0 - f

    def evaluate(self, current_a: np.ndarray, temp_k: np.ndarray) -> dict[str, np.ndarray]:
        """Terminal voltage, heat and resistances at the present state (no state change)."""
        p = self.p
        i, f, g = self._index(self.soc)
        k = self.row0 + i
        ocv = (self.pos_flat[k] * g + self.pos_flat[k + 1] * f
               - self.neg_flat[k] * g - self.neg_flat[k + 1] * f)
        j, fs, gs = self._index(self.soc - self.dz_surf)
        ks = self.row0 + j
        ocv_surf = (self.pos_flat[k] * g + self.pos_flat[k + 1] * f
                    - self.neg_flat[ks] * gs - self.neg_flat[ks + 1] * fs)
        dudt = p.dudt_v_per_k[i] * g + p.dudt_v_per_k[i + 1] * f
        arr = self.r_scale * np.exp(p.arrhenius_b_k * (1.0 / temp_k - 1.0 / T_REF_K))
        di = (np.abs(current_a) - 5.0) / 5.0
        g0, g1, g2 = p.current_exponent_g
        r0 = (p.r0_ohm[i] * g + p.r0_ohm[i + 1] * f) * arr * np.exp(g0 * di) + self.r_contact_ohm
        r1 = (p.r1_ohm[i] * g + p.r1_ohm[i + 1] * f) * arr * np.exp(g1 * di)
        r2 = (p.r2_ohm[i] * g + p.r2_ohm[i + 1] * f) * arr * np.exp(g2 * di)
        entropic = (temp_k - T_REF_K) * dudt
        ocv_t = ocv + entropic
        emf = ocv_surf + entropic - self.v1 - self.v2
        volt = emf - current_a * r0
        heat = current_a * (ocv_t - volt) - current_a * temp_k * dudt
        return {"ocv_t_v": ocv_t, "emf_v": emf, "voltage_v": volt, "heat_w": heat,
                "r0_ohm": r0, "r1_ohm": r1, "r2_ohm": r2, "dudt_v_per_k": dudt}

    def advance(self, current_a: np.ndarray, r1_ohm: np.ndarray, r2_ohm: np.ndarray, dt_s: float) -> None:
        """Move SOC, the RC voltages and the surface-SOC lag on by dt_s at the given currents."""
        a1 = np.exp(-dt_s / self.p.tau1_s)
        a2 = np.exp(-dt_s / self.p.tau2_s)
        ad = np.exp(-dt_s / self.diff_tau_s)
        rate = current_a / (3600.0 * self.cap_ah)
        self.v1 = a1 * self.v1 + (1.0 - a1) * r1_ohm * current_a
        self.v2 = a2 * self.v2 + (1.0 - a2) * r2_ohm * current_a
        self.dz_surf = ad * self.dz_surf + (1.0 - ad) * self.diff_gain_s * rate
        self.soc = self.soc - rate * dt_s

    def charge_ah(self) -> np.ndarray:
        """Charge left above SOC 0 (the 2.5 V rest point) per cell, Ah."""
        return np.clip(self.soc, 0.0, None) * self.cap_ah
