"""The traditional method lives in edge (edge/strategy/baseline.py: the planner's reference):
re-exported for the bench code. Tests: tests/tools/hil/test_hil_baseline.py."""

from edge.strategy.baseline import BaselineConfig, BaselineController

__all__ = ["BaselineConfig", "BaselineController"]
