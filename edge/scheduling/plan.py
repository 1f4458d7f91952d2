"""Plans: where and when every unit runs, and the traditional plan the paper compares with.

A `Plan` is a tuple of `Placement`s (unit, channel, start, end in minutes) plus the method that
made it. `traditional_plan` tests each module alone, item after item, with the required rests,
on its channel; the next module on that channel starts when the previous one has finished
(the paper's 2130 min on its example). `plan_from_json` reads what `schedule --json` printed.
Tests: tests/edge/scheduling/test_schedule_validate.py (traditional plan), test_schedule_cli.py,
test_schedule_input_errors.py (a running plan's unknown channel, huge minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.scheduling.instance import Instance, required_rest_min


PLAN_MAX_MIN = 2**31   # a loaded plan's minutes (CP-SAT works in int64; ~4000 years is enough)


@dataclass(frozen=True)
class Placement:
    unit_id: str
    module_id: str
    channel_id: str
    start_min: int
    end_min: int


@dataclass(frozen=True)
class Plan:
    placements: tuple[Placement, ...]
    method: str
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def makespan_min(self) -> int:
        return max((p.end_min for p in self.placements), default=0)

    def by_channel(self) -> dict[str, list[Placement]]:
        out: dict[str, list[Placement]] = {}
        for p in sorted(self.placements, key=lambda p: (p.start_min, p.unit_id)):
            out.setdefault(p.channel_id, []).append(p)
        return out

    def by_unit(self) -> dict[str, Placement]:
        return {p.unit_id: p for p in self.placements}

    def to_dict(self, instance: Instance) -> dict[str, Any]:
        """JSON form: per channel (in instance order) the ordered units with start and end."""
        per = self.by_channel()
        return {
            "channels": [
                {"channel": ch.id,
                 "units": [{"unit": p.unit_id, "module": p.module_id,
                            "start_min": p.start_min, "end_min": p.end_min} for p in per.get(ch.id, [])]}
                for ch in instance.channels
            ]
        }


def plan_from_starts(instance: Instance, starts: list[int], channels: list[int], method: str,
                     info: dict[str, Any] | None = None) -> Plan:
    """Build a Plan from per-unit (global index) start minutes and channel indices."""
    units = instance.units
    placements = tuple(
        Placement(u.id, instance.modules[u.module].id, instance.channels[channels[u.index]].id,
                  int(starts[u.index]), int(starts[u.index]) + u.duration_min)
        for u in units
    )
    return Plan(placements, method, dict(info or {}))


def module_chain_min(instance: Instance, module_index: int) -> int:
    """Length of a module tested alone in its listed task order: units plus required rests."""
    seq = [u for t in instance.modules[module_index].tasks for u in t.units]
    total = sum(u.duration_min for u in seq)
    total += sum(required_rest_min(a, b) for a, b in zip(seq, seq[1:]))
    return total


def traditional_plan(instance: Instance) -> Plan:
    """Each module alone, item after item in the listed order, one module after another per
    channel. A station wired to several channels goes to the one that is free first (ties: the
    first listed), modules taken in instance order."""
    wired = instance.channels_of_station()
    free_at = [0] * len(instance.channels)
    starts = [0] * len(instance.units)
    chans = [0] * len(instance.units)
    for m in instance.modules:
        ch = min(wired[m.station], key=free_at.__getitem__)   # ascending indices: ties to the first
        t = max(free_at[ch], m.release_min)
        prev = None
        for task in m.tasks:
            for u in task.units:
                if prev is not None:
                    t += required_rest_min(prev, u)
                starts[u.index], chans[u.index] = t, ch
                t += u.duration_min
                prev = u
        free_at[ch] = t
    return plan_from_starts(instance, starts, chans, "traditional")


def plan_from_json(instance: Instance, data: Any, source: str = "<memory>") -> Plan:
    """Read a plan printed by `schedule --json` (the whole object or its "plan" list); raises
    ValueError naming the source and the entry. Feasibility is the validator's job."""
    channels = data.get("plan") if isinstance(data, dict) else data
    method = data.get("method") if isinstance(data, dict) and isinstance(data.get("method"), str) else "loaded"
    if not isinstance(channels, list):
        raise ValueError(f"{source}: expected a list of channels under 'plan'")
    module_of = {u.id: instance.modules[u.module].id for u in instance.units}
    channel_ids = [c.id for c in instance.channels]
    placements = []
    for i, ch in enumerate(channels):
        if not isinstance(ch, dict) or not isinstance(ch.get("channel"), str) or not isinstance(ch.get("units"), list):
            raise ValueError(f"{source}: plan[{i}]: expected {{'channel': str, 'units': [...]}}")
        if ch["channel"] not in channel_ids:
            raise ValueError(f"{source}: plan[{i}].channel: channel {ch['channel'][:80]!r} is not in the instance "
                             f"(it has {', '.join(channel_ids[:10])}{' ...' if len(channel_ids) > 10 else ''})")
        for k, u in enumerate(ch["units"]):
            where = f"{source}: plan[{i}].units[{k}]"
            if not isinstance(u, dict) or not all(type(u.get(f)) is int and 0 <= u[f] < PLAN_MAX_MIN
                                                  for f in ("start_min", "end_min")):
                raise ValueError(f"{where}: expected unit, start_min and end_min (integers from 0 to "
                                 f"{PLAN_MAX_MIN - 1})")
            uid = u.get("unit")
            if not isinstance(uid, str) or uid not in module_of:
                raise ValueError(f"{where}: unit {str(uid)[:80]!r} is not in the instance")
            placements.append(Placement(uid, module_of[uid], ch["channel"], u["start_min"], u["end_min"]))
    return Plan(tuple(placements), method[:80])
