"""The plausibility checks of one slot's frame (edge/placement/vision.py): real figures, each
check able to refuse on its own, the first failing check as the reason, every figure kept."""

from __future__ import annotations

import json
import math

import pytest

from edge.placement.vision import (NO_BATTERY, FrameWatch, Refusal, SlotFrame, VisionRules, check_frame)

pytestmark = pytest.mark.unit

RULES = VisionRules(positive_mm=(-40.0, 0.0), negative_mm=(40.0, 0.0), tolerance_mm=3.0,
                    min_confidence_pct=80.0, max_frame_age_s=2.0)


def frame(**kw) -> SlotFrame:
    base = dict(slot=1, battery_id=17, frame=5, polarity=1, confidence_pct=95.0,
                positive_mm=(-39.2, 0.6), negative_mm=(40.5, -0.4))
    return SlotFrame(**(base | kw))


def test_a_good_frame_passes_with_every_figure():
    v = check_frame(frame(), 0.4, RULES)
    assert v.ok and v.reason == "" and v.failures == ()
    assert v.positive_offset_mm == pytest.approx(math.hypot(0.8, 0.6))  # 1.0 mm
    assert v.negative_offset_mm == pytest.approx(math.hypot(0.5, 0.4))
    assert (v.slot, v.battery_id, v.frame, v.polarity, v.confidence_pct) == (1, 17, 5, 1, 95.0)
    assert v.frame_age_s == 0.4 and v.tolerance_mm == 3.0 and v.min_confidence_pct == 80.0


def test_a_reversed_battery_is_refused_for_its_polarity_first():
    # reversed: the terminals swap ends too, so both are 80 mm off
    v = check_frame(frame(polarity=-1, positive_mm=(40.1, 0.0), negative_mm=(-40.2, 0.1)), 0.1, RULES)
    assert not v.ok
    assert v.reason.startswith(Refusal.POLARITY.value) and "reversed" in v.reason
    assert len(v.failures) == 3  # polarity and both terminals
    assert v.positive_offset_mm == pytest.approx(80.1)


def test_low_confidence_is_refused_and_the_limit_itself_passes():
    assert not check_frame(frame(confidence_pct=79.9), 0.1, RULES).ok
    v = check_frame(frame(confidence_pct=55.0), 0.1, RULES)
    assert v.reason == "confidence below the minimum: 55.0 % (min 80 %)"
    assert check_frame(frame(confidence_pct=80.0), 0.1, RULES).ok


@pytest.mark.parametrize("terminal, seen, ok", [
    ("positive_mm", (-37.01, 0.0), True),   # 2.99 mm
    ("positive_mm", (-36.99, 0.0), False),  # 3.01 mm
    ("negative_mm", (42.2, 2.2), False),    # 3.11 mm along the diagonal
    ("negative_mm", (42.0, 2.0), True),     # 2.83 mm
])
def test_each_terminal_must_lie_within_the_tolerance(terminal, seen, ok):
    v = check_frame(frame(**{terminal: seen}), 0.1, RULES)
    assert v.ok is ok, v
    if not ok:
        name = terminal.split("_")[0]
        assert v.reason.startswith(f"{Refusal.TERMINAL_OFFSET.value}: {name} terminal")


def test_a_stale_or_unseen_frame_is_refused():
    v = check_frame(frame(), 2.5, RULES)
    assert not v.ok and v.reason == "no fresh frame: frame 5 2.50 s old (max 2 s)"
    assert "never seen to arrive" in check_frame(frame(), math.inf, RULES).reason
    assert check_frame(frame(), 2.0, RULES).ok


def test_an_empty_slot_and_nan_figures_are_refused():
    assert check_frame(frame(battery_id=NO_BATTERY), 0.1, RULES).reason == Refusal.EMPTY.value
    v = check_frame(frame(confidence_pct=math.nan, negative_mm=(math.nan, 0.0)), 0.1, RULES)
    assert not v.ok and v.reason.startswith(Refusal.NOT_FINITE.value) and len(v.failures) == 2
    d = v.to_dict()
    assert d["confidence_pct"] is None and d["negative_offset_mm"] is None
    json.dumps(d, allow_nan=False)  # the store refuses NaN


def test_a_frame_is_read_from_the_tags_per_slot():
    values = {"vision_battery_id": (3, 0, -1, 9), "vision_frame": (10, 11, 12, 13), "vision_polarity": (1, -1, 0, 1),
              "vision_confidence_pct": (90.0, 91.0, 0.0, 93.0),
              "vision_terminal_x_mm": (-40, 40, 40.5, -40.5, 0, 0, -41, 41),
              "vision_terminal_y_mm": (0.1, 0.2, 0.3, 0.4, 0, 0, 0.7, 0.8)}
    f = SlotFrame.from_tags(values, 1)
    assert (f.battery_id, f.frame, f.polarity, f.confidence_pct) == (0, 11, -1, 91.0)
    assert f.positive_mm == (40.5, 0.3) and f.negative_mm == (-40.5, 0.4)
    assert SlotFrame.from_tags(values, 3).negative_mm == (41.0, 0.8)
    assert SlotFrame.from_tags({}, 0).battery_id == NO_BATTERY


def test_a_frame_is_fresh_only_once_the_supervisor_saw_its_counter_move():
    watch = FrameWatch(2)
    assert watch.update(0, 7, 100.0) == math.inf  # first sight after a start: not seen arriving
    assert watch.update(0, 7, 101.0) == math.inf
    assert watch.update(0, 8, 101.5) == 0.0
    assert watch.update(0, 8, 103.0) == pytest.approx(1.5)
    assert watch.update(0, 8, 104.0) == pytest.approx(2.5)  # the camera stopped: stale after 2 s
    assert watch.update(1, 3, 104.0) == math.inf  # slots are watched each on its own


def test_rules_refuse_nonsense():
    with pytest.raises(ValueError, match="tolerance_mm"):
        VisionRules(tolerance_mm=0.0)
    with pytest.raises(ValueError, match="min_confidence_pct"):
        VisionRules(min_confidence_pct=120.0)
