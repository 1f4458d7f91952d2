"""S12 RL policy: value-function approximation (Q over strategy modifications) trained by Bellman
updates on history records, explored in SIL rollouts of the battery model (edge.strategy.planner.evaluate_requests),
exported to ONNX for edge/strategy/policy.py. See MODEL_CARD.md. Tests: tests/models/test_rl_policy.py.
"""
