"""The flow's tier plan: when to ask edge/placement/assign.py which tier each channel takes, and
what to tell it.

Owns `predicted_discharge_s` (a battery's discharge time from its grade and its tier's strategy:
the charge from its SOC down to `END_SOC_PCT`, at each strategy segment's C-rate, capped by the
line's current limit), `ChannelTiers` (the last `Assignment`, the causes of a new one: a batch
queued, a station isolated, a battery that finished early by more than `EARLY_MARGIN`) and
`channel_loads` (each channel's tier now, each station's predicted seconds until free, usable).
The flow (flow.py) takes, for an empty channel, the plan's tier when a battery of it waits in an
inbox slot; else the tier most batteries wait in among those in the slots (the rule before S13),
so that a slot full of another tier never blocks the line. Tests: tests/edge/supervisor/test_flow.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

from edge.placement.assign import AssignError, Assignment, ChannelLoad, assign_tiers
from edge.strategy.model import NOMINAL_CAPACITY_AH
from edge.supervisor.stations import StationState as St

log = logging.getLogger(__name__)

END_SOC_PCT = 10.0  # where a discharge ends, about (the route's cut-off and the rest)
EARLY_MARGIN = 0.2  # a battery done this share before its prediction asks for a new plan
ASSIGN_TIME_LIMIT_S = 0.3


def predicted_discharge_s(battery: Mapping, max_current_a: float) -> float:
    """Seconds to discharge `battery` (a queued battery: soc_pct, soh_est, strategy) to END_SOC_PCT."""
    capacity_ah = NOMINAL_CAPACITY_AH * min(max(float(battery["soh_est"]), 0.3), 1.2)
    upper, t_s = float(battery["soc_pct"]), 0.0
    for seg in battery["strategy"]["segments"]:
        low = max(float(seg["soc_from_pct"]), END_SOC_PCT)
        if upper > low:
            current_a = min(max(float(seg["c_rate"]), 0.05) * NOMINAL_CAPACITY_AH, max_current_a)
            t_s += (upper - low) / 100.0 * capacity_ah / current_a * 3600.0
        upper = min(upper, float(seg["soc_from_pct"]))
    return t_s


def channel_loads(channels, recs, batteries: Mapping[str, Mapping], predicted: Mapping[str, float],
                  now_s: float, causes: Sequence[int]) -> list[ChannelLoad]:
    """What the flow knows of each channel now (assign.py's `ChannelLoad`)."""
    out = []
    for channel in channels:
        tiers, busy, usable = set(), [], []
        for s in channel.stations:
            rec = recs[s]
            isolated = rec.state in (St.ISOLATED, St.FAULT) or (len(causes) > s and causes[s])
            usable.append(not isolated)
            if rec.battery_id in batteries and rec.state not in (St.EMPTY,):
                tiers.add(int(batteries[rec.battery_id]["tier"]))  # an isolated one locks its tier
                left = predicted.get(rec.battery_id, 0.0)
                if rec.state is St.DISCHARGING:
                    left -= now_s - float(rec.data.get("start_s", now_s))
                elif rec.state is St.RESTING:
                    left = float(rec.data.get("rest_until", now_s)) - now_s
                elif rec.state is St.DONE:
                    left = 0.0
                busy.append(math.inf if isolated else max(0.0, left))
            else:
                busy.append(math.inf if isolated and rec.battery_id else 0.0)
        tier = min(tiers) if tiers else None
        out.append(ChannelLoad(channel.name, tuple(channel.stations), tier, tuple(busy), tuple(usable)))
    return out


class ChannelTiers:
    """The last assignment and whether the flow should ask for a new one."""

    def __init__(self, time_limit_s: float = ASSIGN_TIME_LIMIT_S):
        self.time_limit_s = time_limit_s
        self.assignment: Assignment | None = None
        self.stale = True
        self.why = "start"
        self.calls = 0

    def need(self, why: str) -> None:
        self.stale, self.why = True, why

    def update(self, loads: Sequence[ChannelLoad], waiting: Mapping[int, Sequence[float]]) -> Assignment | None:
        """A new assignment when one is due (None kept on an AssignError: the flow's rule goes on)."""
        if not self.stale:
            return self.assignment
        self.stale = False
        if not waiting:
            return self.assignment
        try:
            self.assignment = assign_tiers(loads, waiting, time_limit_s=self.time_limit_s, previous=self.assignment)
            self.calls += 1
            log.info("tier plan (%s): %s, predicted makespan %.0f s (bound %.0f s)", self.why,
                     self.assignment.channel_tier, self.assignment.predicted_makespan_s,
                     self.assignment.lower_bound_s)
        except AssignError as exc:
            log.warning("tier plan refused (%s): %s; the flow's own rule goes on", self.why, exc)
        return self.assignment

    def tier_for(self, channel: str) -> int | None:
        return self.assignment.channel_tier.get(channel) if self.assignment is not None else None
