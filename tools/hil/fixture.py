"""The bench's fixture model is edge's (edge/batterymodel/fixture.py): re-exported for bench code."""

from edge.batterymodel.fixture import (FixtureConfig, coolant_h_w_m2k, deliverable_current_a, pressure_target_kpa,
                                       relief_fraction, stack_resistance_ohm)

__all__ = ["FixtureConfig", "coolant_h_w_m2k", "deliverable_current_a", "pressure_target_kpa", "relief_fraction",
           "stack_resistance_ohm"]
