"""The bench's thermal model is edge's (edge/batterymodel/thermal.py): re-exported for bench code."""

from edge.batterymodel.thermal import MarkerMap, ThermalConfig, step_chain

__all__ = ["MarkerMap", "ThermalConfig", "step_chain"]
