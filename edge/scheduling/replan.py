"""Dynamic re-planning (the paper's open point, sec. 4 (3)): while a plan runs, units or modules
arrive, or a unit overruns; re-plan what has not started and keep what has.

`replan(instance, plan, Disruption(now_min=..., ...))`:
1. builds the new instance: overrun units get their new duration, new tasks are appended to
   their modules, new modules are added with `release_min = max(own, now)`;
2. keeps every unit of the running plan that started before `now` where it was (channel and
   start), except one that could not have started as planned because a kept unit before it on
   its channel or in its module now ends later (an overrun): that unit, and the rest of its
   module, go back to planning;
3. plans the free units (no earlier than `now`) with the chosen method around the kept ones,
   and validates the result (kept units unmoved, nothing free before `now`).

Tests: tests/edge/scheduling/test_schedule_replan.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from edge.scheduling.best import Method, Solution, solve
from edge.scheduling.budget import Deadline
from edge.scheduling.decode import Frozen
from edge.scheduling.instance import Instance, InstanceError, instance_from_dict, instance_to_dict, required_rest_min
from edge.scheduling.plan import PLAN_MAX_MIN, Plan


@dataclass(frozen=True)
class Disruption:
    now_min: int
    new_modules: tuple[dict[str, Any], ...] = ()                # schema-form module objects
    new_tasks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # module id -> tasks
    overruns: dict[str, int] = field(default_factory=dict)     # unit id -> new duration_min

    def __post_init__(self):
        if not 0 <= self.now_min < PLAN_MAX_MIN:
            raise ValueError(f"now_min must be from 0 to {PLAN_MAX_MIN - 1}, got {self.now_min}")


@dataclass(frozen=True)
class Replanned:
    instance: Instance
    solution: Solution
    kept: tuple[str, ...]        # unit ids kept as they ran
    released: tuple[str, ...]    # started-by-plan unit ids that had to be re-planned (overrun knock-on)

    @property
    def plan(self) -> Plan:
        return self.solution.plan


def apply_disruption(instance: Instance, d: Disruption) -> Instance:
    """The instance after the disruption (raises InstanceError naming the bad field)."""
    data = instance_to_dict(instance)
    data["name"] = f"{instance.name}@{d.now_min}min"
    units = {u["id"]: u for m in data["modules"] for t in m["tasks"] for u in t["units"]}
    problems = [f"overruns.{uid}: no such unit" for uid in d.overruns if uid not in units]
    problems += [f"overruns.{uid}: duration_min must be an integer >= 1, got {v!r}"
                 for uid, v in d.overruns.items() if not isinstance(v, int) or v < 1]
    by_id = {m["id"]: m for m in data["modules"]}
    problems += [f"new_tasks.{mid}: no such module" for mid in d.new_tasks if mid not in by_id]
    if problems:
        raise InstanceError(f"disruption at {d.now_min} min", problems)
    for uid, minutes in d.overruns.items():
        units[uid]["duration_min"] = minutes
    for mid, tasks in d.new_tasks.items():
        base = len(by_id[mid]["tasks"])
        for j, task in enumerate(copy.deepcopy(tasks)):
            for k, u in enumerate(task.get("units", [])):
                if isinstance(u, dict):
                    u.setdefault("id", f"{mid}.T{base + j + 1}.U{k + 1}")
            by_id[mid]["tasks"].append(task)
    for m in copy.deepcopy(list(d.new_modules)):
        if isinstance(m, dict):
            m["release_min"] = max(int(m.get("release_min", 0) or 0), d.now_min)
        data["modules"].append(m)
    return instance_from_dict(data, source=f"{instance.source} + disruption at {d.now_min} min")


def kept_units(new: Instance, plan: Plan, now_min: int) -> tuple[dict[int, tuple[int, int]], list[str]]:
    """Units of `plan` that started before `now_min` and still fit (new durations): index ->
    (channel, start); and the ids that the plan had started but that must be re-planned."""
    units = new.unit_by_id()
    ch_index = {c.id: c.index for c in new.channels}
    started = sorted((p for p in plan.placements if p.start_min < now_min and p.unit_id in units),
                     key=lambda p: (p.start_min, p.unit_id))
    channel_free = [0] * len(new.channels)
    module_last: dict[int, tuple[int, int]] = {}     # module -> (unit index, end)
    blocked_modules: set[int] = set()
    kept: dict[int, tuple[int, int]] = {}
    released: list[str] = []
    for p in started:
        u = units[p.unit_id]
        ch = ch_index[p.channel_id]
        ok = u.module not in blocked_modules and p.start_min >= channel_free[ch]
        prev = module_last.get(u.module)
        if ok and prev is not None:
            prev_unit = new.units[prev[0]]
            ok = p.start_min >= prev[1] + required_rest_min(prev_unit, u)
        if not ok:
            blocked_modules.add(u.module)
            released.append(u.id)
            continue
        end = p.start_min + u.duration_min
        kept[u.index] = (ch, p.start_min)
        channel_free[ch] = max(channel_free[ch], end)
        module_last[u.module] = (u.index, end)
    return kept, released


def replan(instance: Instance, plan: Plan, d: Disruption, method: Method | str = Method.BEST,
           time_limit_s: float | None = None, seed: int = 0, deadline: Deadline | None = None) -> Replanned:
    """`time_limit_s` and `deadline` as for `best.solve`."""
    new = apply_disruption(instance, d)
    kept, released = kept_units(new, plan, d.now_min)
    frozen = Frozen(kept, d.now_min)
    solution = solve(new, method, time_limit_s, seed, frozen=frozen, deadline=deadline)
    ids = tuple(new.units[u].id for u in sorted(kept))
    return Replanned(new, solution, ids, tuple(released))
