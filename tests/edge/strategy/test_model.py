"""Strategy, limits in three tiers, validation with errors naming the field."""

import pytest

from edge.strategy.model import LimitSet, Strategy, StrategyError, TierLimits, check_strategy, clamp_to_limits

pytestmark = pytest.mark.unit


def test_default_strategy_is_valid_and_hands_down_rtcore_setpoints():
    s = check_strategy(Strategy())
    sp = s.setpoints(correction_gain=0.0)
    assert sp.delta_t_threshold_degc == s.delta_t_threshold_degc and sp.correction_gain == 0.0


def test_c_rate_profile_against_soc():
    s = Strategy(segments=((70, 2.5), (20, 1.5), (0, 0.8)))
    assert [s.c_rate_at(x) for x in (90, 70, 50, 20, 5, -3)] == [2.5, 2.5, 1.5, 1.5, 0.8, 0.8]


@pytest.mark.parametrize("change, field", [
    (dict(segments=((50, 3.5), (0, 1.0))), "segments[0].c_rate"),
    (dict(segments=((20, 1.0), (50, 1.0), (0, 1.0))), "segments"),
    (dict(segments=((50, 1.0), (10, 1.0))), "segments"),
    (dict(pressure_kpa=500.0), "pressure_kpa"),
    (dict(derate_stop_degc=70.0), "derate_stop_degc"),
    (dict(end_c_rate=5.0), "end_c_rate"),
    (dict(taper_v_per_cell=2.4), "taper_v_per_cell"),
    (dict(coolant_base_lpm=float("nan")), "coolant_base_lpm"),
    (dict(check_interval_s=100.0), "rtcore setpoints refused"),
])
def test_bad_strategy_is_refused_naming_the_field(change, field):
    with pytest.raises(StrategyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        check_strategy(Strategy().replace(**change), where="tier 2")


def test_limits_must_nest():
    with pytest.raises(StrategyError, match="max_c_rate"):
        TierLimits(operating=LimitSet(3.5, 42, 100, 250, 16))


def test_round_trip_through_dict_and_unknown_field_named():
    s = Strategy(segments=((40, 2.2), (0, 1.1)), pressure_kpa=175.0)
    assert Strategy.from_dict(s.to_dict()) == s
    with pytest.raises(StrategyError, match="unknown fields"):
        Strategy.from_dict({**s.to_dict(), "bogus": 1})


def test_clamp_to_operating_limits():
    s = clamp_to_limits(Strategy(segments=((50, 3.0), (0, 2.8)), pressure_kpa=390.0), TierLimits().operating)
    assert s.max_c_rate() == TierLimits().operating.max_c_rate and s.pressure_kpa == 250.0
    check_strategy(s)
