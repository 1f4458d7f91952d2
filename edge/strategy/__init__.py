"""S12: the discharge strategy per tier (edge side): strategy and limits, the supervisor's current
setpoints, the evaluation score, the SQLite history, the game tree and the ONNX policy serving.
The SIL rollouts and the `plan` command live in tools/ (tools/plan.py). Tests: tests/edge/strategy/.
"""

from edge.strategy.model import NOMINAL_CAPACITY_AH, LimitSet, Strategy, StrategyError, TierLimits, check_strategy

__all__ = ["NOMINAL_CAPACITY_AH", "LimitSet", "Strategy", "StrategyError", "TierLimits", "check_strategy"]
