"""S12: the discharge strategy per tier (edge side): strategy and limits, the supervisor's current
setpoints, the evaluation score, the SQLite history, the game tree and the ONNX policy serving,
the planner (planner.py: grade_cells_table, plan_tiers) with its SIL rollouts on the battery model
(rollout.py, loop_controller.py, edge/batterymodel) and the `plan` command (cli.py). README.md
documents the API. Tests: tests/edge/strategy/.
"""

from edge.strategy.model import NOMINAL_CAPACITY_AH, LimitSet, Strategy, StrategyError, TierLimits, check_strategy

__all__ = ["NOMINAL_CAPACITY_AH", "LimitSet", "Strategy", "StrategyError", "TierLimits", "check_strategy"]
