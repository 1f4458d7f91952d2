"""The plan validator: every constraint of the problem checked on any plan, by any method.

`check_plan(instance, plan)` returns a list of `Violation`s (empty = feasible); `assert_valid`
raises `PlanError` with all of them. Kinds: a unit missing, placed twice or unknown; a channel
not wired to the unit's station; a unit whose end - start differs from its duration
(interrupted or stretched); two units overlapping on a channel; a station served by two
channels at once; module order broken (units of a module out of order, or, with task_order
first_fixed, the first task not first or two tasks interleaved); a rest shorter than required
between consecutive units; a unit starting before its module's release or before re-planning
time; a unit that re-planning had to keep (started or finished) moved.

Tests: tests/edge/scheduling/test_schedule_validate.py.
"""

from __future__ import annotations

from bisect import bisect_left

from dataclasses import dataclass
from enum import Enum

from edge.scheduling.instance import Instance, TaskOrder, Unit, required_rest_min
from edge.scheduling.plan import Placement, Plan


class ViolationKind(str, Enum):
    MISSING_UNIT = "missing_unit"
    DUPLICATE_UNIT = "duplicate_unit"
    UNKNOWN_UNIT = "unknown_unit"
    WRONG_MODULE = "wrong_module"
    CHANNEL_NOT_WIRED = "channel_not_wired"
    INTERRUPTED = "interrupted"          # end - start != duration (non-interruption)
    NEGATIVE_START = "negative_start"
    CHANNEL_OVERLAP = "channel_overlap"
    STATION_OVERLAP = "station_overlap"
    ORDER = "order"
    REST = "rest"
    RELEASE = "release"
    FROZEN_MOVED = "frozen_moved"


@dataclass(frozen=True)
class Violation:
    kind: ViolationKind
    message: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


class PlanError(ValueError):
    def __init__(self, violations: list[Violation], method: str):
        self.violations = violations
        lines = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"plan by {method!r} is infeasible ({len(violations)} violation(s)):\n{lines}{more}")


def check_plan(instance: Instance, plan: Plan, frozen: dict[str, Placement] | None = None,
               not_before_min: int = 0) -> list[Violation]:
    """All violations of `plan` against `instance`. `frozen` units must keep their placement;
    every other unit must start at or after `not_before_min` (re-planning)."""
    out: list[Violation] = []
    units = instance.unit_by_id()
    placed = _check_units(instance, plan, units, out)
    _check_channels(instance, placed, units, out)
    _check_overlaps(placed, lambda p: p.channel_id, ViolationKind.CHANNEL_OVERLAP, "channel", out)
    station = {m.id: m.station for m in instance.modules}
    _check_overlaps(placed, lambda p: station.get(p.module_id, "?"), ViolationKind.STATION_OVERLAP,
                    "station", out)
    _check_modules(instance, placed, out)
    _check_replan(placed, frozen or {}, not_before_min, out)
    return out


def assert_valid(instance: Instance, plan: Plan, frozen: dict[str, Placement] | None = None,
                 not_before_min: int = 0) -> Plan:
    violations = check_plan(instance, plan, frozen, not_before_min)
    if violations:
        raise PlanError(violations, plan.method)
    return plan


def _check_units(instance: Instance, plan: Plan, units: dict[str, Unit], out: list[Violation]) -> dict[str, Placement]:
    placed: dict[str, Placement] = {}
    for p in plan.placements:
        u = units.get(p.unit_id)
        if u is None:
            out.append(Violation(ViolationKind.UNKNOWN_UNIT, f"unit {p.unit_id!r} is not in the instance"))
            continue
        if p.unit_id in placed:
            out.append(Violation(ViolationKind.DUPLICATE_UNIT, f"unit {p.unit_id!r} is placed more than once"))
            continue
        placed[p.unit_id] = p
        module = instance.modules[u.module]
        if p.module_id != module.id:
            out.append(Violation(ViolationKind.WRONG_MODULE,
                                 f"unit {p.unit_id!r} belongs to module {module.id!r}, plan says {p.module_id!r}"))
        if p.end_min - p.start_min != u.duration_min:
            out.append(Violation(ViolationKind.INTERRUPTED,
                                 f"unit {p.unit_id!r} runs {p.start_min}-{p.end_min} min, "
                                 f"duration is {u.duration_min} min"))
        if p.start_min < 0:
            out.append(Violation(ViolationKind.NEGATIVE_START, f"unit {p.unit_id!r} starts at {p.start_min} min"))
        if p.start_min < module.release_min:
            out.append(Violation(ViolationKind.RELEASE,
                                 f"unit {p.unit_id!r} starts at {p.start_min} min, module {module.id!r} "
                                 f"is released at {module.release_min} min"))
    for uid in units:
        if uid not in placed:
            out.append(Violation(ViolationKind.MISSING_UNIT, f"unit {uid!r} is not placed"))
    return placed


def _check_channels(instance: Instance, placed: dict[str, Placement], units: dict[str, Unit],
                    out: list[Violation]) -> None:
    index = {ch.id: ch.index for ch in instance.channels}
    wired = instance.channels_of_station()      # ascending channel indices per station
    for p in placed.values():
        station = instance.modules[units[p.unit_id].module].station
        chs, ch = wired.get(station, ()), index.get(p.channel_id, -1)
        i = bisect_left(chs, ch)
        if not (i < len(chs) and chs[i] == ch):
            out.append(Violation(ViolationKind.CHANNEL_NOT_WIRED,
                                 f"unit {p.unit_id!r} on channel {p.channel_id!r}, which is not wired to "
                                 f"station {station!r}"))


def _check_overlaps(placed: dict[str, Placement], key, kind: ViolationKind, what: str,
                    out: list[Violation]) -> None:
    groups: dict[str, list[Placement]] = {}
    for p in placed.values():
        groups.setdefault(key(p), []).append(p)
    for name, ps in groups.items():
        ps.sort(key=lambda p: (p.start_min, p.end_min))
        latest = ps[0] if ps else None
        for p in ps[1:]:
            if p.start_min < latest.end_min:
                if kind is ViolationKind.STATION_OVERLAP and p.channel_id == latest.channel_id:
                    pass  # same channel: reported as a channel overlap (and order/rest)
                else:
                    out.append(Violation(kind, f"{what} {name!r}: {latest.unit_id!r} "
                                               f"({latest.start_min}-{latest.end_min}) overlaps {p.unit_id!r} "
                                               f"({p.start_min}-{p.end_min})"))
            if p.end_min > latest.end_min:
                latest = p


def _check_modules(instance: Instance, placed: dict[str, Placement], out: list[Violation]) -> None:
    for m in instance.modules:
        listed = [u for t in m.tasks for u in t.units if u.id in placed]
        if not listed:
            continue
        actual = sorted(listed, key=lambda u: (placed[u.id].start_min, u.index))
        if instance.task_order is TaskOrder.FIXED:
            if [u.id for u in actual] != [u.id for u in listed]:
                first_bad = next(a for a, b in zip(actual, listed) if a.id != b.id)
                out.append(Violation(ViolationKind.ORDER,
                                     f"module {m.id!r}: units out of the listed order (first out of place: "
                                     f"{first_bad.id!r} at {placed[first_bad.id].start_min} min)"))
            seq = listed
        else:
            _check_task_blocks(m.id, actual, out)
            seq = actual
        for a, b in zip(seq, seq[1:]):
            pa, pb = placed[a.id], placed[b.id]
            need = required_rest_min(a, b)
            gap = pb.start_min - pa.end_min
            if gap < 0:
                if instance.task_order is TaskOrder.FIRST_FIXED or [u.id for u in actual] == [u.id for u in listed]:
                    out.append(Violation(ViolationKind.ORDER, f"module {m.id!r}: {b.id!r} starts at "
                                                              f"{pb.start_min} min before {a.id!r} ends at {pa.end_min} min"))
            elif gap < need:
                out.append(Violation(ViolationKind.REST, f"module {m.id!r}: rest {a.id!r} -> {b.id!r} is "
                                                         f"{gap} min, at least {need} min required"))


def _check_task_blocks(module_id: str, actual: list[Unit], out: list[Violation]) -> None:
    """first_fixed: the first task's units first; every task whole and in its own order."""
    tasks_seen: list[int] = []
    last_pos: dict[int, int] = {}
    for u in actual:
        if not tasks_seen or tasks_seen[-1] != u.task:
            if u.task in last_pos:
                out.append(Violation(ViolationKind.ORDER, f"module {module_id!r}: task {u.task + 1} is "
                                                          f"interleaved with another task at {u.id!r}"))
                return
            tasks_seen.append(u.task)
        if u.position != last_pos.get(u.task, -1) + 1:
            out.append(Violation(ViolationKind.ORDER, f"module {module_id!r}: unit {u.id!r} out of its task's order"))
            return
        last_pos[u.task] = u.position
    if tasks_seen and tasks_seen[0] != 0:
        out.append(Violation(ViolationKind.ORDER, f"module {module_id!r}: the first task must run first "
                                                  f"(task {tasks_seen[0] + 1} ran first)"))


def _check_replan(placed: dict[str, Placement], frozen: dict[str, Placement], not_before_min: int,
                  out: list[Violation]) -> None:
    for uid, p in placed.items():
        f = frozen.get(uid)
        if f is not None:
            if (f.channel_id, f.start_min, f.end_min) != (p.channel_id, p.start_min, p.end_min):
                out.append(Violation(ViolationKind.FROZEN_MOVED,
                                     f"unit {uid!r} had started ({f.channel_id} {f.start_min}-{f.end_min}) "
                                     f"but the plan moves it to {p.channel_id} {p.start_min}-{p.end_min}"))
        elif p.start_min < not_before_min:
            out.append(Violation(ViolationKind.RELEASE,
                                 f"unit {uid!r} had not started at {not_before_min} min but the plan "
                                 f"starts it at {p.start_min} min"))
