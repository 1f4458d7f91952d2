"""Evaluation rules (S12): one stated score from SIL metrics plus expert rules (hard limits per tier).

Owns `Score` and `score_metrics`. Tests: tests/edge/strategy/test_score.py.

Lower cost is better; `value = -cost` is what the game tree maximises. With the metrics of one
rollout (edge/batterymodel/sil.py names) and the reference time `ref_time_s` (the traditional method's
batch time for the same modules, or a fixed scale):

    cost = batch_time_s / ref_time_s                                   (discharge time)
         + 0.05 · max(0, residual_pct - residual_plan_pct)              (residual charge above the planning
                                                                          target, 12 %: 15 % less the model's error)
         + 0.005 · residual_pct                                         (residual charge, any)
         - 0.05 · min(mean_c_rate, 3) / 3                               (mean rate, a small bonus)
         + 0.02 · max(0, peak_temp_degc - operating.max_temp_degc)      (peak temperature above operating)
         + 0.01 · relief_events                                         (relief events)

Expert rules (any breach makes the outcome infeasible: cost += 10 per breach, listed in
`violations`): peak temperature above the recommended-safety limit; any time above the warning
temperature; a module that did not finish; peak temperature above maximum safety (+10 more).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.strategy.model import NOMINAL_CAPACITY_AH, TierLimits

INFEASIBLE_COST = 10.0


@dataclass(frozen=True)
class Score:
    cost: float
    violations: tuple[str, ...]

    @property
    def value(self) -> float:
        return -self.cost

    @property
    def feasible(self) -> bool:
        return not self.violations


def mean_c_rate(metrics: dict) -> float:
    """Mean discharge rate over the batch: charge drawn per module per hour of batch time, in C."""
    t_h = max(metrics["batch_time_s"], 1.0) / 3600.0
    return metrics["discharged_ah"] / max(metrics["modules"], 1) / t_h / NOMINAL_CAPACITY_AH


def score_metrics(metrics: dict, limits: TierLimits = TierLimits(), ref_time_s: float = 3600.0) -> Score:
    if ref_time_s <= 0:
        raise ValueError(f"score: ref_time_s must be > 0, got {ref_time_s}")
    for key in ("batch_time_s", "residual_pct", "peak_temp_degc", "relief_events", "time_above_warning_s",
                "modules", "modules_finished", "discharged_ah"):
        if key not in metrics:
            raise KeyError(f"score: metrics lack {key!r}")
    cost = (metrics["batch_time_s"] / ref_time_s
            + 0.05 * max(0.0, metrics["residual_pct"] - limits.residual_plan_pct)
            + 0.005 * metrics["residual_pct"]
            - 0.05 * min(mean_c_rate(metrics), 3.0) / 3.0
            + 0.02 * max(0.0, metrics["peak_temp_degc"] - limits.operating.max_temp_degc)
            + 0.01 * metrics["relief_events"])
    violations = []
    if metrics["peak_temp_degc"] > limits.recommended.max_temp_degc:
        violations.append(f"peak {metrics['peak_temp_degc']:.1f} °C above recommended safety "
                          f"{limits.recommended.max_temp_degc} °C")
    if metrics["peak_temp_degc"] > limits.maximum.max_temp_degc:
        violations.append(f"peak {metrics['peak_temp_degc']:.1f} °C above maximum safety {limits.maximum.max_temp_degc} °C")
        cost += INFEASIBLE_COST
    if metrics["time_above_warning_s"] > 0:
        violations.append(f"{metrics['time_above_warning_s']:.0f} s above the warning temperature")
    if metrics["modules_finished"] < metrics["modules"]:
        violations.append(f"{metrics['modules'] - metrics['modules_finished']} modules unfinished")
    return Score(cost + INFEASIBLE_COST * len(violations), tuple(violations))
