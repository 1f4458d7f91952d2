"""The traditional method (DESIGN.md "Baseline"): the controller the project must beat.

Owns `BaselineController` and `BaselineConfig` (tests: tests/tools/hil/test_hil_baseline.py).
No tiers: every module gets the same fixed strategy (a constant current of `current_a`, 1C of
the nominal 5 Ah cell by default, the clamp at `pressure_kpa`, coolant at a fixed `coolant_lpm`,
`coolant_relief_lpm` while released).
Relief only when a marker of a module reaches the warning temperature: release that module's
whole fixture (relief 1 in every zone, discharge off), wait until every marker of the module is
back in the safe range (<= `safe_temp_degc`), then clamp again and resume.

Defaults: warning 45 °C, safe 35 °C (a common pair for NMC discharge lines: warning well below
the 60 °C discharge limit of 21700 data sheets, safe near the top of the ambient band). Like the
traditional line it trusts its sensors: a NaN reading is ignored, a stuck one is believed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.batterymodel.plant import Command, Observation
from edge.limits import WARNING_DEGC


@dataclass(frozen=True)
class BaselineConfig:
    current_a: float = 5.0
    pressure_kpa: float = 150.0
    coolant_lpm: float = 4.0
    coolant_relief_lpm: float | None = None
    """Coolant while the fixture is released (None: `coolant_lpm`); a comparison gives it the same
    maximum as ours (tools/bench_discharge.LineBudget)."""
    warning_temp_degc: float = WARNING_DEGC
    safe_temp_degc: float = 35.0

    def __post_init__(self) -> None:
        if not self.current_a > 0:
            raise ValueError(f"baseline.current_a must be > 0, got {self.current_a}")
        if not self.pressure_kpa > 0:
            raise ValueError(f"baseline.pressure_kpa must be > 0, got {self.pressure_kpa}")
        if self.coolant_lpm < 0:
            raise ValueError(f"baseline.coolant_lpm must be >= 0, got {self.coolant_lpm}")
        if self.coolant_relief_lpm is not None and not self.coolant_relief_lpm >= self.coolant_lpm:
            raise ValueError(f"baseline.coolant_relief_lpm must be >= coolant_lpm, got {self.coolant_relief_lpm}")
        if not self.safe_temp_degc < self.warning_temp_degc:
            raise ValueError("baseline.safe_temp_degc must be below warning_temp_degc "
                             f"({self.safe_temp_degc} >= {self.warning_temp_degc})")


class BaselineController:
    """One fixed strategy; whole-fixture relief at the warning temperature until back to safe."""

    def __init__(self, n_modules: int, n_zones: int, config: BaselineConfig | None = None) -> None:
        self.cfg = config or BaselineConfig()
        self.relieving = np.zeros(n_modules, bool)
        self.n_zones = n_zones

    def step(self, observation: Observation, dt_s: float) -> Command:
        cfg = self.cfg
        temps = observation.marker_temp_degc
        seen = np.where(np.isfinite(temps), temps, -np.inf).max(axis=1)
        self.relieving |= seen >= cfg.warning_temp_degc
        self.relieving &= ~(seen <= cfg.safe_temp_degc)
        m = self.relieving.size
        return Command(
            discharge_on=~self.relieving & ~observation.tripped,
            current_a=np.full(m, cfg.current_a),
            load_ohm=np.full(m, 1.0),
            pressure_kpa=np.full((m, self.n_zones), cfg.pressure_kpa),
            relief=np.repeat(self.relieving.astype(float)[:, None], self.n_zones, axis=1),
            coolant_lpm=np.where(self.relieving, cfg.coolant_lpm if cfg.coolant_relief_lpm is None
                                 else cfg.coolant_relief_lpm, cfg.coolant_lpm),
        )
