"""Each station's own state: which transitions are allowed and which battery it holds.

Owns `StationState`, the transition table `ALLOWED`, the transitions that need an operator's
clear (`NEEDS_CLEAR`) and `check_change`, which refuses a wrong change with a `TransitionRefused`
naming the station, the two states and why. The store (store.py) calls it before writing; the
flow never moves a station any other way. Tests: tests/edge/supervisor/test_stations.py.

The normal cycle, a battery per pass:
    empty -> loading (the robot places it) -> clamping (no current until every zone holds the
          tier's pressure) -> discharging -> resting -> discharging (it rebounded above the
          floor) ... -> resting -> done -> empty (the robot took it to the out lane, its record written)
- loading -> empty: the load was abandoned (the robot failed; the battery is not at the station).
- any state -> isolated: the real-time core isolated the station (its own fault latched).
- any state -> fault: the supervisor found the station unusable (a PLC fault, a bad reading).
- isolated -> empty and fault -> empty only with `operator_clear=True`: an operator cleared the
  station and took the battery away. isolated <-> fault either way (the other cause came too).
A station holds a battery in loading, clamping, discharging, resting and done, none when empty, and
keeps the one it had (or none) when it goes isolated or fault. A battery never changes
mid-cycle: only from empty does a station take a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class StationState(enum.Enum):
    EMPTY = "empty"
    LOADING = "loading"
    CLAMPING = "clamping"
    DISCHARGING = "discharging"
    RESTING = "resting"
    DONE = "done"
    ISOLATED = "isolated"
    FAULT = "fault"


St = StationState
_CYCLE = {
    St.EMPTY: {St.LOADING},
    St.LOADING: {St.CLAMPING, St.EMPTY},
    St.CLAMPING: {St.DISCHARGING},
    St.DISCHARGING: {St.RESTING},
    St.RESTING: {St.DISCHARGING, St.DONE},
    St.DONE: {St.EMPTY},
    St.ISOLATED: {St.EMPTY},
    St.FAULT: {St.EMPTY},
}
ALLOWED: Mapping[StationState, frozenset[StationState]] = MappingProxyType({
    state: frozenset((nexts | {St.ISOLATED, St.FAULT}) - {state}) for state, nexts in _CYCLE.items()
})
"""state -> the states it may go to."""
NEEDS_CLEAR = frozenset({(St.ISOLATED, St.EMPTY), (St.FAULT, St.EMPTY)})
"""Transitions allowed only on an operator's clear."""
HOLDS_BATTERY = frozenset({St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE})
MAY_HOLD_BATTERY = HOLDS_BATTERY | {St.ISOLATED, St.FAULT}


class TransitionRefused(ValueError):
    """A station change that is not allowed; nothing was written."""

    def __init__(self, station: int, before: StationState, after: StationState, why: str):
        self.station, self.before, self.after, self.why = station, before, after, why
        super().__init__(f"station {station}: {before.value} -> {after.value} refused: {why}")


def check_change(station: int, before: StationState, after: StationState, *, before_battery: str | None = None,
                 after_battery: str | None = None, operator_clear: bool = False) -> None:
    """Raise `TransitionRefused` unless `station` may go from `before` (holding `before_battery`)
    to `after` (holding `after_battery`)."""
    before, after = StationState(before), StationState(after)
    if after not in ALLOWED[before]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[before]))
        raise TransitionRefused(station, before, after, f"from {before.value} a station may go to {allowed}")
    if (before, after) in NEEDS_CLEAR and not operator_clear:
        raise TransitionRefused(station, before, after, "only after an operator clears the station")
    if after in HOLDS_BATTERY and not after_battery:
        raise TransitionRefused(station, before, after, f"a station in {after.value} holds a battery; give its id")
    if after not in MAY_HOLD_BATTERY and after_battery is not None:
        raise TransitionRefused(station, before, after, f"an {after.value} station holds no battery "
                                f"(got {after_battery!r})")
    if (before, after) != (St.EMPTY, St.LOADING) and after is not St.EMPTY and after_battery != before_battery:
        raise TransitionRefused(station, before, after, f"it holds battery {before_battery!r}, not "
                                f"{after_battery!r}; a new battery comes only with empty -> loading")
