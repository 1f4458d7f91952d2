"""The real-time core (rtcore's S14-S15 kernel) as a SIL controller: the same tick, no bus.

Owns `RtcoreController` (tests: tests/tools/hil/test_hil_rtcore_controller.py). One kernel over
all stations, built like the rtcore process builds it from a tag map
(`edge.rtloop.process.build_fixture`: marker i of the flattened (module, marker) array belongs to
zone i // markers-per-zone). Each tick it feeds the observed marker temperatures and applied
pressures to `kernel.tick` and maps the outputs as `edge.rtloop.loop.RtLoop` maps them to tags:
the second relief (kPa released) as a share of the clamp setpoint, the coolant inflow shared over
the zones by their area of action on top of the strategy's base flow, and in the safe state the
declared safe values (discharge off, full relief, full coolant). The strategy part (current,
clamp pressure, base coolant) is fixed here, as the supervisor would send it for one tier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import rtcore
from edge.rtloop.process import build_fixture
from rtcore.spec import Config, Setpoints
from tools.hil.plant import Command, Observation


@dataclass(frozen=True)
class Strategy:
    current_a: float = 5.0
    pressure_kpa: float = 150.0
    coolant_base_lpm: float = 4.0
    coolant_max_lpm: float = 20.0


class RtcoreController:
    def __init__(self, n_modules: int, n_markers: int, n_zones: int = 1, setpoints: Setpoints | None = None,
                 strategy: Strategy = Strategy(), period_s: float = 0.1, kernel_class=None, **config_fields):
        self.m, self.k, self.z = n_modules, n_markers, n_zones
        config = Config(n_markers=n_modules * n_markers, n_zones=n_modules * n_zones, period_s=period_s,
                        **config_fields)
        fixture = build_fixture(config.n_markers, config.n_zones)
        self.kernel = (kernel_class or rtcore.Kernel)(config, fixture, setpoints)
        self.strategy = strategy
        self.flags = 0

    def step(self, observation: Observation, dt_s: float) -> Command:
        s, m, z = self.strategy, self.m, self.z
        self.flags = self.kernel.tick(np.ascontiguousarray(observation.marker_temp_degc, dtype=float).ravel(),
                                      np.ascontiguousarray(observation.pressure_kpa, dtype=float).ravel())
        setpoint = np.full((m, z), s.pressure_kpa)
        if self.kernel.safe_state:
            return Command(np.zeros(m, bool), np.full(m, s.current_a), np.ones(m), setpoint,
                           np.ones((m, z)), np.full(m, s.coolant_max_lpm))
        relief = np.clip(np.asarray(self.kernel.relief2_kpa, float).reshape(m, z) / max(s.pressure_kpa, 1.0), 0, 1)
        area = np.asarray(self.kernel.coolant_area_mm2, float)
        share = area / area.sum() if area.sum() > 0 else np.full(area.size, 1.0 / area.size)
        extra = float(self.kernel.coolant_flow_lpm) * share.reshape(m, z).sum(axis=1)
        coolant = np.clip(s.coolant_base_lpm + extra, 0.0, s.coolant_max_lpm)
        return Command(~observation.tripped, np.full(m, s.current_a), np.ones(m), setpoint, relief, coolant)
