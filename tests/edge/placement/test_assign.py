"""Tier assignment (edge/placement/assign.py): hand-computed optima, the validator, the edge
cases and re-assignment stability."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from edge.placement.assign import (AssignError, Block, ChannelLoad, assign_tiers, check_assignment,
                                   most_waiting_makespan_s)

from .lines import ch, random_line

pytestmark = pytest.mark.unit


TWO = [ch("A", (0, 1)), ch("B", (2, 3))]
SPLIT = {1: [100.0] * 4, 2: [300.0] * 3}   # the naive rule: 500 s; optimum 400 s (worked out below)


def test_hand_computed_optimum_beats_the_most_waiting_rule():
    # most-waiting: A takes tier 1 (4 waiting), B tier 2 (3 vs 2): B runs 2 x 300, A 2 x 2 x 100,
    # then A the last tier-2 one from 200 to 500. Optimum: each channel one block of tier 2
    # (2 and 1 batteries, 300 s) and one of tier 1 (2 batteries, 100 s): 400 s. Tier 2 on one
    # channel alone needs 600 s; tier 1 on one channel 200 s after 300 s: 500 s.
    a = assign_tiers(TWO, SPLIT, overhead_s=0.0)
    assert a.predicted_makespan_s == 400.0
    assert most_waiting_makespan_s(TWO, SPLIT, overhead_s=0.0) == 500.0
    assert a.lower_bound_s == 325.0   # 1300 s of work over 4 stations
    assert sorted(len(b.batteries) for bs in a.blocks.values() for b in bs if b.tier == 1) == [2, 2]
    assert set(a.channel_tier) == {"A", "B"}
    assert check_assignment(TWO, SPLIT, a) == []


def test_overhead_is_added_to_every_battery():
    a = assign_tiers([ch("A", (0,))], {1: [100.0, 50.0]}, overhead_s=10.0)
    assert a.predicted_makespan_s == 170.0
    assert [p.end_s - p.start_s for p in a.station_plan[0]] == [110.0, 60.0]


def test_validator_refuses_two_tiers_on_a_channel_at_once():
    a = assign_tiers(TWO, SPLIT, overhead_s=0.0)
    name = next(n for n, bs in a.blocks.items() if len(bs) == 2)
    first, second = a.blocks[name]
    # start the second block's batteries while the first block still runs
    moved = tuple(replace(p, start_s=p.start_s - 50.0, end_s=p.end_s - 50.0) for p in second.batteries)
    bad = replace(a, blocks={**a.blocks, name: (first, replace(second, batteries=moved))})
    problems = check_assignment(TWO, SPLIT, bad)
    assert any(p.startswith("tier_mixed") and repr(name) in p for p in problems)


def test_validator_refuses_a_missing_battery_and_an_overlap_on_a_station():
    a = assign_tiers(TWO, SPLIT, overhead_s=0.0)
    name, blocks = next(iter(a.blocks.items()))
    dropped = replace(blocks[0], batteries=blocks[0].batteries[1:])
    problems = check_assignment(TWO, SPLIT, replace(a, blocks={**a.blocks, name: (dropped, *blocks[1:])}))
    assert any(p.startswith("missing_unit") for p in problems)
    p0, p1 = blocks[0].batteries[:2]
    same = replace(p1, station=p0.station, start_s=p0.start_s, end_s=p0.start_s + (p1.end_s - p1.start_s))
    problems = check_assignment(TWO, SPLIT, replace(a, blocks={**a.blocks, name: (
        replace(blocks[0], batteries=(p0, same, *blocks[0].batteries[2:])), *blocks[1:])}))
    assert any(p.startswith("channel_overlap") for p in problems)


def test_validator_refuses_an_unusable_station_and_a_start_before_free():
    chans = [ch("A", (0, 1), usable=(True, False)), ch("B", (2, 3), busy=(500.0, 0.0))]
    w = {1: [100.0, 100.0]}
    a = assign_tiers(chans, w, overhead_s=0.0)
    assert check_assignment(chans, w, a) == []
    assert all(p.station != 1 for ps in a.station_plan.values() for p in ps)
    assert all(p.start_s >= 500.0 for p in a.station_plan.get(2, ()))
    plan = [p for bs in a.blocks.values() for b in bs for p in b.batteries]
    bad_station = replace(a, blocks={"A": (Block(1, 0.0, 100.0, (replace(plan[0], station=1, start_s=0.0, end_s=100.0),
                                                                 replace(plan[1], station=0, start_s=0.0, end_s=100.0))),)})
    assert any(p.startswith("station_unusable") for p in check_assignment(chans, w, bad_station))
    early = replace(a, blocks={"B": (Block(1, 0.0, 200.0, (replace(plan[0], station=2, start_s=0.0, end_s=100.0),
                                                           replace(plan[1], station=3, start_s=0.0, end_s=100.0))),)})
    assert any(p.startswith("channel_overlap") for p in check_assignment(chans, w, early))


def test_a_channel_holding_a_tier_keeps_it_until_empty():
    chans = [ch("A", (0, 1), tier=3, busy=(400.0, 100.0)), ch("B", (2, 3))]
    w = {1: [100.0] * 8}
    a = assign_tiers(chans, w, overhead_s=0.0)
    assert a.channel_tier["A"] == 3
    assert check_assignment(chans, w, a) == []
    for b in a.blocks.get("A", ())[1:]:
        assert b.tier == 1 and all(p.start_s >= 400.0 for p in b.batteries)
    # 8 x 100 s: B alone 400 s; A can help only after 400 s: optimum 400 s (B takes all)
    assert a.predicted_makespan_s == 400.0
    assert a.lower_bound_s == 400.0


def test_no_waiting_battery():
    chans = [ch("A", (0, 1), tier=2, busy=(300.0, 0.0)), ch("B", (2, 3))]
    a = assign_tiers(chans, {}, overhead_s=0.0)
    assert a.channel_tier == {"A": 2}
    assert a.predicted_makespan_s == 300.0 and a.lower_bound_s == 300.0
    assert a.note == "no battery waiting" and a.station_plan == {}


def test_all_stations_unusable_is_a_clear_result():
    chans = [ch("A", (0, 1), usable=(False, False)), ch("B", (2,), usable=(False,))]
    a = assign_tiers(chans, {1: [10.0], 2: [20.0, 30.0]})
    assert a.channel_tier == {} and a.blocks == {}
    assert a.unplaced == {1: 1, 2: 2}
    assert math.isinf(a.predicted_makespan_s) and math.isinf(a.lower_bound_s)
    assert "no usable station" in a.note


def test_more_tiers_than_channels_say_which_go_first():
    chans = [ch("A", (0, 1))]
    w = {1: [100.0, 100.0], 2: [500.0, 500.0, 500.0, 500.0], 3: [50.0]}
    a = assign_tiers(chans, w, overhead_s=0.0)
    # one channel: every tier in its own block, one after another: 100 + 1000 + 50
    assert a.predicted_makespan_s == 1150.0
    assert [b.tier for b in a.blocks["A"]] == list(a.tier_order)
    assert a.channel_tier == {"A": a.tier_order[0]}
    assert a.quota("A") == len(w[a.tier_order[0]])
    assert check_assignment(chans, w, a) == []


def test_locked_channel_takes_only_its_tier():
    chans = [ch("A", (0, 1), tier=1, busy=(math.inf, 0.0), usable=(False, True)), ch("B", (2,))]
    w = {1: [100.0, 100.0], 2: [100.0]}
    a = assign_tiers(chans, w, overhead_s=0.0)
    assert all(b.tier == 1 for b in a.blocks["A"])
    assert check_assignment(chans, w, a) == []
    only = assign_tiers(chans[:1], w, overhead_s=0.0)
    assert only.unplaced == {2: 1} and math.isinf(only.predicted_makespan_s)


def test_reassignment_keeps_an_empty_channels_tier_when_it_costs_nothing():
    w = {1: [100.0, 100.0], 2: [100.0, 100.0]}
    first = assign_tiers(TWO, w, overhead_s=0.0)
    assert first.predicted_makespan_s == 100.0
    swapped = {n: 3 - t for n, t in first.channel_tier.items()}   # an equally good choice
    again = assign_tiers(TWO, w, overhead_s=0.0, previous=replace(first, channel_tier=swapped))
    assert again.channel_tier == swapped and again.predicted_makespan_s == 100.0
    # a battery finished early, nothing else changed: the same tiers
    assert assign_tiers(TWO, w, overhead_s=0.0, previous=first).channel_tier == first.channel_tier


def test_reassignment_flips_when_the_previous_tier_costs_too_much():
    chans = [ch("A", (0, 1)), ch("B", (2, 3), usable=(True, False))]
    w = {1: [100.0], 2: [300.0, 300.0]}
    best = assign_tiers(chans, w, overhead_s=0.0)
    assert best.channel_tier == {"A": 2, "B": 1} and best.predicted_makespan_s == 300.0
    prev = replace(best, channel_tier={"A": 1, "B": 2})   # B alone with tier 2 would need 600 s
    assert assign_tiers(chans, w, overhead_s=0.0, previous=prev).channel_tier == {"A": 2, "B": 1}


def test_isolating_a_station_reassigns_and_keeps_held_tiers():
    chans, w = random_line(3)
    a = assign_tiers(chans, w)
    # the flow loaded the first block, then station 1 is isolated
    held = [replace(c, tier=a.channel_tier[c.name], busy_until_s=tuple(1000.0 for _ in c.stations))
            for c in chans]
    held[0] = replace(held[0], usable=(True, False, True, True))
    b = assign_tiers(held, w, previous=a)
    assert b.channel_tier == a.channel_tier
    assert check_assignment(held, w, b) == []
    assert 1 not in b.station_plan


@pytest.mark.parametrize("seed", range(5))
def test_never_worse_than_the_most_waiting_rule_on_random_lines(seed):
    chans, w = random_line(seed)
    a = assign_tiers(chans, w, seed=seed)
    assert check_assignment(chans, w, a) == []
    # measured ratios to the flow's rule, seeds 0-4: 0.92, 0.96, 0.94, 0.94, 0.87
    assert a.lower_bound_s <= a.predicted_makespan_s < 0.97 * most_waiting_makespan_s(chans, w)


def test_bad_inputs_name_the_field():
    with pytest.raises(AssignError, match=r"channels\[0\] \('A'\)\.busy_until_s: 1 values for 2 stations"):
        assign_tiers([ChannelLoad("A", (0, 1), None, (0.0,), (True, True))], {})
    with pytest.raises(AssignError, match=r"waiting\[2\]\[1\]"):
        assign_tiers(TWO, {2: [10.0, -1.0]})
    with pytest.raises(AssignError, match=r"channels\[1\] \('B'\)\.stations\[0\]: station 1 is already in channel 'A'"):
        assign_tiers([ch("A", (0, 1)), ch("B", (1, 2))], {})
    with pytest.raises(AssignError, match=r"inf is for an unusable station only"):
        assign_tiers([ch("A", (0,), busy=(math.inf,))], {})
    with pytest.raises(ValueError, match="time_limit_s"):
        assign_tiers(TWO, {}, time_limit_s=0.0)
