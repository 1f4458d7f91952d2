"""Fixture pressure and coolant: the two actuated physics of a discharge station.

Owns the laws that make pressure and relief matter (tests: tests/tools/hil/test_hil_plant.py):

* stack resistance per cell interconnect, U-shaped in pressure,
      R(p) = Rc·(p/p_ref)^-0.5 + Rb·(p/p_ref)
  (contact resistance ∝ p^-0.5; the bulk term stands for separator/electrode compression).
  With Rb = Rc/2 the minimum sits exactly at p_ref = 150 kPa (0.15 MPa);
* below `open_kpa` the pressed contact opens and the string carries no current;
* the clamp actuator follows its target (setpoint × (1 - relief)) with a first-order lag;
* coolant film coefficient grows with flow (Dittus-Boelter-like exponent 0.8) and with the share
  of the cell surface that relief opens to the coolant:
      h = h_natural + h_coolant_max · (flow / flow_max)^0.8 · (a_closed + (1 - a_closed)·relief)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FixtureConfig:
    p_ref_kpa: float = 150.0
    r_contact_ref_mohm: float = 3.0
    r_bulk_ref_mohm: float = 1.5
    open_kpa: float = 10.0
    p_max_kpa: float = 400.0
    actuator_tau_s: float = 0.5
    area_closed: float = 0.3
    h_coolant_max_w_m2k: float = 250.0
    flow_max_lpm: float = 20.0
    flow_exponent: float = 0.8

    def __post_init__(self) -> None:
        for name in ("p_ref_kpa", "r_contact_ref_mohm", "open_kpa", "p_max_kpa", "actuator_tau_s",
                     "h_coolant_max_w_m2k", "flow_max_lpm", "flow_exponent"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fixture.{name} must be > 0, got {getattr(self, name)}")
        if self.r_bulk_ref_mohm < 0:
            raise ValueError(f"fixture.r_bulk_ref_mohm must be >= 0, got {self.r_bulk_ref_mohm}")
        if not 0.0 <= self.area_closed <= 1.0:
            raise ValueError(f"fixture.area_closed must be in [0, 1], got {self.area_closed}")
        if self.open_kpa >= self.p_ref_kpa:
            raise ValueError("fixture.open_kpa must be below p_ref_kpa")


def stack_resistance_ohm(pressure_kpa: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Interconnect resistance (ohm) at the applied pressure; infinite where the contact is open."""
    p = np.asarray(pressure_kpa, dtype=float)
    ratio = np.maximum(p, cfg.open_kpa) / cfg.p_ref_kpa
    r = 1e-3 * (cfg.r_contact_ref_mohm * ratio**-0.5 + cfg.r_bulk_ref_mohm * ratio)
    return np.where(p < cfg.open_kpa, np.inf, r)


def relief_fraction(relief_kpa: np.ndarray, setpoint_kpa: np.ndarray) -> np.ndarray:
    """Relief as a fraction of the clamp setpoint, from relief given as kPa released (tag maps)."""
    sp = np.asarray(setpoint_kpa, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(sp > 0, np.asarray(relief_kpa, dtype=float) / sp, 1.0)
    return np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)


def pressure_target_kpa(setpoint_kpa: np.ndarray, relief: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Clamp target: the setpoint reduced by the relief fraction, within [0, p_max]."""
    sp = np.clip(np.nan_to_num(np.asarray(setpoint_kpa, float), nan=0.0), 0.0, cfg.p_max_kpa)
    rel = np.clip(np.nan_to_num(np.asarray(relief, float), nan=1.0), 0.0, 1.0)
    return sp * (1.0 - rel)


def actuate(applied_kpa: np.ndarray, target_kpa: np.ndarray, dt_s: float, cfg: FixtureConfig) -> np.ndarray:
    """First-order lag of the clamp actuator."""
    a = np.exp(-dt_s / cfg.actuator_tau_s)
    return a * applied_kpa + (1.0 - a) * target_kpa


def coolant_h_w_m2k(flow_lpm: np.ndarray, relief: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Coolant film coefficient added to natural convection (W/m²K) at a flow and a relief."""
    flow = np.clip(np.nan_to_num(np.asarray(flow_lpm, float), nan=0.0), 0.0, cfg.flow_max_lpm)
    rel = np.clip(np.nan_to_num(np.asarray(relief, float), nan=1.0), 0.0, 1.0)
    area = cfg.area_closed + (1.0 - cfg.area_closed) * rel
    return cfg.h_coolant_max_w_m2k * (flow / cfg.flow_max_lpm) ** cfg.flow_exponent * area
