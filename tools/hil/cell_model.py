"""The bench's cell model is edge's (edge/batterymodel/cell_model.py): re-exported for bench code."""

from edge.batterymodel.cell_model import CellBank, EcmParams, default_ecm_path, resistance_scale

__all__ = ["CellBank", "EcmParams", "default_ecm_path", "resistance_scale"]
