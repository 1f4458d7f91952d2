"""Fixture pressure and coolant: the two actuated physics of a discharge station.

Owns the laws that make pressure and relief matter, and what relief costs
(tests: tests/tools/hil/test_hil_plant.py, test_fixture_price.py, tests/edge/batterymodel/):

* stack resistance per cell interconnect (ohm), U-shaped in pressure, rising steeply as the
  clamp opens:
      R(p) = Rc·(p/p_ref)^-0.5 + Rb·(p/p_ref) + Ro·((p_knee - p_open)/(p - p_open))^2
  The first term is the pressed contact (Holm: constriction resistance ∝ force^-0.5), the second
  stands for separator/electrode compression; with Rb = Rc/2 they alone have their minimum
  exactly at p_ref = 150 kPa. The third is the opening contact: as the clamp force falls toward
  the opening pressure the load-bearing asperities and the fritted film give way and the
  resistance diverges (Ro = 3 mΩ at p_knee = 40 kPa; 0.14 mΩ at 150 kPa, 27 mΩ at 20 kPa).
  Below `open_kpa` the contact is open (infinite);
* the clamp's target is the setpoint reduced by relief, but relief releases it only down to
  the fixture's retention pressure `hold_kpa` (the end-stop springs keep the module located and
  its contacts touching): target = max(sp·(1 - relief), min(sp, hold_kpa)). Only a setpoint
  below `open_kpa` (unloading) opens the contact; full relief keeps it closed at 20 kPa, where
  the contact costs current (below);
* the price of relief: the station regulates its current with sense leads on the module and its
  force path through the fixture's contacts; its power stage can make up at most
  `path_drop_max_v` (0.5 V) of drop on that path (the compliance of its lead-drop compensation).
  A module's deliverable current is therefore path_drop_max_v / ΣR(p) over its interconnects:
  about 18 A with every zone at 150 kPa (above the 15 A station limit: no price), about 3.7 A
  with one of two zones fully relieved and 2.4 A with both (the commanded 5 A falls by about
  25 % and 53 %). See `deliverable_current_a`;
* the clamp actuator follows its target with a first-order lag, and its applied pressure carries
  a small ripple (hydraulic pump / servo dither), ±`ripple_frac` at `ripple_hz` with a seeded
  phase per zone, so that pressure varies and S15's pressure–temperature correlation can be
  estimated from data;
* the coolant film coefficient (W/m²K) grows with flow (Dittus-Boelter-like exponent 0.8) and
  with the share of the cell surface that relief opens to the coolant, per zone:
      h = h_natural + h_coolant_max · (flow / flow_max)^0.8 · (a_closed + (1 - a_closed)·relief)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.batterymodel.arrays import nan_to_num


@dataclass(frozen=True)
class FixtureConfig:
    p_ref_kpa: float = 150.0
    r_contact_ref_mohm: float = 3.0
    r_bulk_ref_mohm: float = 1.5
    r_open_mohm: float = 3.0
    """Opening-contact term at `knee_kpa` (mΩ per interconnect)."""
    knee_kpa: float = 40.0
    open_kpa: float = 10.0
    hold_kpa: float = 20.0
    """Retention pressure: full relief releases the clamp down to this, never below."""
    p_max_kpa: float = 400.0
    actuator_tau_s: float = 0.5
    ripple_frac: float = 0.025
    """Clamp ripple amplitude as a share of the applied pressure (0 = none)."""
    ripple_hz: float = 0.2
    path_drop_max_v: float = 0.5
    """Drop over the fixture's contacts the station's power stage can make up (V); the current it
    can deliver is path_drop_max_v / ΣR_fixture."""
    area_closed: float = 0.3
    h_coolant_max_w_m2k: float = 250.0
    flow_max_lpm: float = 20.0
    flow_exponent: float = 0.8

    def __post_init__(self) -> None:
        for name in ("p_ref_kpa", "r_contact_ref_mohm", "open_kpa", "p_max_kpa", "actuator_tau_s",
                     "h_coolant_max_w_m2k", "flow_max_lpm", "flow_exponent", "ripple_hz", "path_drop_max_v"):
            if not getattr(self, name) > 0:
                raise ValueError(f"fixture.{name} must be > 0, got {getattr(self, name)}")
        for name in ("r_bulk_ref_mohm", "r_open_mohm"):
            if getattr(self, name) < 0:
                raise ValueError(f"fixture.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.area_closed <= 1.0:
            raise ValueError(f"fixture.area_closed must be in [0, 1], got {self.area_closed}")
        if not 0.0 <= self.ripple_frac <= 0.1:
            raise ValueError(f"fixture.ripple_frac must be in [0, 0.1], got {self.ripple_frac}")
        if not self.open_kpa < self.knee_kpa < self.p_ref_kpa:
            raise ValueError(f"fixture: need open_kpa < knee_kpa < p_ref_kpa, got {self.open_kpa}, "
                             f"{self.knee_kpa}, {self.p_ref_kpa}")
        if not self.open_kpa * (1.0 + self.ripple_frac) < self.hold_kpa * (1.0 - self.ripple_frac) \
                or self.hold_kpa >= self.p_ref_kpa:
            raise ValueError(f"fixture.hold_kpa must lie above open_kpa (with the ripple) and below p_ref_kpa, "
                             f"got {self.hold_kpa}")


def stack_resistance_ohm(pressure_kpa: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Interconnect resistance (ohm) at the applied pressure; infinite where the contact is open."""
    p = np.asarray(pressure_kpa, dtype=float)
    closed = p >= cfg.open_kpa
    ratio = np.maximum(p, cfg.open_kpa) / cfg.p_ref_kpa
    gap = np.where(closed, np.maximum(p - cfg.open_kpa, 1e-9), 1.0)
    r = 1e-3 * (cfg.r_contact_ref_mohm * ratio**-0.5 + cfg.r_bulk_ref_mohm * ratio
                + cfg.r_open_mohm * ((cfg.knee_kpa - cfg.open_kpa) / gap) ** 2)
    return np.where(closed, r, np.inf)


def deliverable_current_a(path_resistance_ohm: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Most current (A) the station can drive through a fixture path of this total resistance."""
    r = np.asarray(path_resistance_ohm, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(r > 0, cfg.path_drop_max_v / np.where(r > 0, r, 1.0), np.inf)


def relief_fraction(relief_kpa: np.ndarray, setpoint_kpa: np.ndarray) -> np.ndarray:
    """Relief as a fraction of the clamp setpoint, from relief given as kPa released (tag maps)."""
    sp = np.asarray(setpoint_kpa, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(sp > 0, np.asarray(relief_kpa, dtype=float) / sp, 1.0)
    return np.clip(nan_to_num(frac, nan=1.0), 0.0, 1.0)


def pressure_target_kpa(setpoint_kpa: np.ndarray, relief: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Clamp target: the setpoint reduced by the relief fraction, not below the retention pressure
    (unless the setpoint itself is below it), within [0, p_max]."""
    sp = np.clip(nan_to_num(np.asarray(setpoint_kpa, float), nan=0.0), 0.0, cfg.p_max_kpa)
    rel = np.clip(nan_to_num(np.asarray(relief, float), nan=1.0), 0.0, 1.0)
    return np.maximum(sp * (1.0 - rel), np.minimum(sp, cfg.hold_kpa))


def actuate(applied_kpa: np.ndarray, target_kpa: np.ndarray, dt_s: float, cfg: FixtureConfig) -> np.ndarray:
    """First-order lag of the clamp actuator."""
    a = np.exp(-dt_s / cfg.actuator_tau_s)
    return a * applied_kpa + (1.0 - a) * target_kpa


def ripple_factor(t_s: float, phase_rad: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Multiplicative clamp ripple at time t_s: 1 + ripple_frac·sin(2π·ripple_hz·t + phase)."""
    return 1.0 + cfg.ripple_frac * np.sin(2.0 * np.pi * cfg.ripple_hz * t_s + np.asarray(phase_rad, float))


def coolant_h_w_m2k(flow_lpm: np.ndarray, relief: np.ndarray, cfg: FixtureConfig) -> np.ndarray:
    """Coolant film coefficient added to natural convection (W/m²K) at a flow and a relief."""
    flow = np.clip(nan_to_num(np.asarray(flow_lpm, float), nan=0.0), 0.0, cfg.flow_max_lpm)
    rel = np.clip(nan_to_num(np.asarray(relief, float), nan=1.0), 0.0, 1.0)
    area = cfg.area_closed + (1.0 - cfg.area_closed) * rel
    return cfg.h_coolant_max_w_m2k * (flow / cfg.flow_max_lpm) ** cfg.flow_exponent * area
