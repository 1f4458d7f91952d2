"""The bench's software-in-the-loop is edge's (edge/batterymodel/sil.py): re-exported for the bench
code (scenarios, expectations, batch). Tests: tests/edge/batterymodel/test_sil.py."""

from edge.batterymodel.sil import (Controller, HoldController, ModuleMetrics, SilConfig, SilMetrics, SilResult, Trace,
                                   isolated_stations, run_sil)

__all__ = ["Controller", "HoldController", "ModuleMetrics", "SilConfig", "SilMetrics", "SilResult", "Trace",
           "isolated_stations", "run_sil"]
