"""Scheduling the module tests over channels and stations (seed 001, Cai & Liu 2022).

Instances (`instance.py`, schema ../shared/scheduling/instance_schema.json) -> plans
(`plan.py`, with the traditional plan) checked by `validate.py`; `decode.py` turns a unit
sequence into a feasible schedule for every method: the paper's ant colony (`aco.py`), local
search (`local.py`), CP-SAT (`cpsat.py`), combined in `best.py`; `bound.py` lower bounds;
`replan.py` dynamic re-planning; `generate.py` seeded instances; `gantt.py`; `cli.py` the
`schedule` command; `budget.py` the checked time limit and the deadline every stage polls.
Tests: tests/edge/scheduling/.
"""

from edge.scheduling.aco import AcoParams, Heuristic, run_aco
from edge.scheduling.best import Method, Solution, solve
from edge.scheduling.bound import lower_bound
from edge.scheduling.budget import Deadline, TimeLimitError, check_time_limit_s
from edge.scheduling.instance import Instance, InstanceError, instance_from_dict, load_instance, read_json
from edge.scheduling.plan import Placement, Plan, traditional_plan
from edge.scheduling.replan import Disruption, replan
from edge.scheduling.validate import PlanError, Violation, ViolationKind, assert_valid, check_plan

__all__ = [
    "AcoParams", "Deadline", "Disruption", "Heuristic", "Instance", "InstanceError", "Method", "Placement", "Plan",
    "PlanError", "Solution", "TimeLimitError", "Violation", "ViolationKind", "assert_valid", "check_plan",
    "check_time_limit_s", "instance_from_dict", "load_instance", "lower_bound", "read_json", "replan", "run_aco",
    "solve", "traditional_plan",
]
