"""Each station's state: every allowed transition, and refusals that name station, from and to."""

from __future__ import annotations

import itertools

import pytest

from edge.supervisor.stations import ALLOWED, StationState, TransitionRefused, check_change

pytestmark = pytest.mark.unit

E, L, C, D, R, DONE, I, F = (StationState(v) for v in
                             ("empty", "loading", "clamping", "discharging", "resting", "done", "isolated", "fault"))
# Written out by hand: (from, to, needs an operator's clear).
EXPECTED = {
    (E, L, False), (E, I, False), (E, F, False),
    (L, C, False), (L, E, False), (L, I, False), (L, F, False),
    (C, D, False), (C, I, False), (C, F, False),
    (D, R, False), (D, I, False), (D, F, False),
    (R, D, False), (R, DONE, False), (R, I, False), (R, F, False),
    (DONE, E, False), (DONE, I, False), (DONE, F, False),
    (I, E, True), (I, F, False),
    (F, E, True), (F, I, False),
}
HOLDS = {L, C, D, R, DONE}


def batteries_for(before, after):
    """Battery ids that make a well-formed change between the two states."""
    before_battery = "B1" if before in HOLDS else None
    if after is E:
        return before_battery, None
    if (before, after) == (E, L):
        return None, "B1"
    return before_battery, before_battery


@pytest.mark.parametrize("before, after, clear", sorted(EXPECTED, key=lambda t: (t[0].value, t[1].value)),
                         ids=lambda v: v.value if isinstance(v, StationState) else str(v))
def test_every_allowed_transition(before, after, clear):
    before_battery, after_battery = batteries_for(before, after)
    check_change(3, before, after, before_battery=before_battery, after_battery=after_battery, operator_clear=clear)
    if clear:
        with pytest.raises(TransitionRefused, match=f"station 3: {before.value} -> empty refused: only after an operator"):
            check_change(3, before, after, before_battery=before_battery, after_battery=after_battery)


def test_the_table_is_exactly_the_expected_one():
    assert {(b, a) for b, a, _ in EXPECTED} == {(b, a) for b, nexts in ALLOWED.items() for a in nexts}


REFUSED = [(b, a) for b, a in itertools.product(StationState, StationState)
           if (b, a) not in {(x, y) for x, y, _ in EXPECTED}]


@pytest.mark.parametrize("before, after", REFUSED, ids=lambda v: v.value)
def test_every_other_transition_is_refused_with_station_from_and_to(before, after):
    before_battery, after_battery = batteries_for(before, after)
    with pytest.raises(TransitionRefused) as info:
        check_change(5, before, after, before_battery=before_battery, after_battery=after_battery, operator_clear=True)
    assert str(info.value).startswith(f"station 5: {before.value} -> {after.value} refused")
    assert (info.value.station, info.value.before, info.value.after) == (5, before, after)


def test_a_rebound_cycle():
    path = [(E, None), (L, "M7"), (C, "M7"), (D, "M7"), (R, "M7"), (D, "M7"), (R, "M7"), (DONE, "M7"), (E, None)]
    for (before, bb), (after, ab) in zip(path, path[1:]):
        check_change(0, before, after, before_battery=bb, after_battery=ab)


@pytest.mark.parametrize("before, after, bb, ab, why", [
    (E, L, None, None, "holds a battery"),
    (L, C, "A", "B", "a new battery comes only with empty -> loading"),
    (C, D, "A", "B", "a new battery comes only with empty -> loading"),
    (R, D, "A", None, "holds a battery"),
    (DONE, E, "A", "A", "holds no battery"),
    (E, I, None, "A", "a new battery comes only with empty -> loading"),
    (D, I, "A", "B", "a new battery comes only"),
    (I, E, "A", "A", "holds no battery"),
])
def test_battery_ids_must_follow_the_station(before, after, bb, ab, why):
    with pytest.raises(TransitionRefused, match=why):
        check_change(1, before, after, before_battery=bb, after_battery=ab, operator_clear=True)


def test_isolated_and_fault_keep_the_battery_they_had():
    check_change(2, D, I, before_battery="A", after_battery="A")
    check_change(2, I, F, before_battery="A", after_battery="A")
    check_change(2, E, F, before_battery=None, after_battery=None)
