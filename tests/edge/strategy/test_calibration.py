"""The calibrated table and gains (edge/strategy/calibration.py) and how Strategy carries them."""

import dataclasses
import math

import pytest

from edge.strategy import calibration
from edge.strategy.calibration import THRESHOLD_TABLE, threshold_for_c_rate
from edge.strategy.model import Strategy, StrategyError, check_strategy

pytestmark = pytest.mark.unit


def test_table_rows_are_measured_and_keep_the_stated_margin_over_normal_heating():
    rates = [row[0] for row in THRESHOLD_TABLE]
    assert rates == sorted(rates) and rates[0] <= 0.5 and rates[-1] >= 3.0
    for c, theta, interval, normal_max, _ in THRESHOLD_TABLE:
        assert normal_max > 0, f"{c}C: not measured"
        assert 2.0 <= interval <= 8.0
        want = calibration.THETA_MARGIN_FACTOR * normal_max + calibration.THETA_MARGIN_DEGC
        assert want - 1e-9 <= theta < want + 0.05 + 1e-9  # rounded up to 0.05 K
        assert theta > normal_max


def test_threshold_for_c_rate_takes_the_row_at_or_above_the_rate():
    for c, theta, interval, *_ in THRESHOLD_TABLE:
        assert threshold_for_c_rate(c) == (theta, interval)
    # between two rows: the higher rate's row (its normal heating is faster)
    lo, hi = THRESHOLD_TABLE[1], THRESHOLD_TABLE[2]
    assert threshold_for_c_rate((lo[0] + hi[0]) / 2) == (hi[1], hi[2])
    assert threshold_for_c_rate(0.1) == THRESHOLD_TABLE[0][1:3]
    assert threshold_for_c_rate(5.0) == THRESHOLD_TABLE[-1][1:3]
    for bad in (0.0, -1.0, math.nan, math.inf, "1C"):
        with pytest.raises(ValueError, match="c_rate"):
            threshold_for_c_rate(bad)


def test_strategy_defaults_are_the_calibrated_values_and_reach_the_core():
    s = check_strategy(Strategy())
    assert (s.delta_t_threshold_degc, s.check_interval_s) == threshold_for_c_rate(s.max_c_rate())
    sp = s.setpoints()
    assert sp.relief_gain_kpa_per_degc_per_s == calibration.RELIEF_GAIN_KPA_PER_DEGC_PER_S
    assert sp.coolant_gain_lpm_per_cm2_degc_per_s == calibration.COOLANT_GAIN_LPM_PER_CM2_DEGC_PER_S
    assert sp.correction_gain == calibration.CORRECTION_GAIN
    assert sp.coupling_decay_per_tick == calibration.COUPLING_DECAY_PER_TICK
    assert sp.relief_hold_s == calibration.RELIEF_HOLD_S
    assert sp.relief_release_degc == calibration.RELIEF_RELEASE_DEGC
    assert (sp.warning_degc, sp.temp_limit_degc) == (45.0, 55.0)  # the tier's limits, not the core's 60
    traded = s.replace(relief_gain_kpa_per_degc_per_s=123.0, coupling_decay_per_tick=0.7).setpoints()
    assert traded.relief_gain_kpa_per_degc_per_s == 123.0 and traded.coupling_decay_per_tick == 0.7
    assert s.setpoints(correction_gain=0.0).correction_gain == 0.0


def test_with_calibrated_thresholds_follows_the_highest_c_rate():
    s = Strategy(segments=((50.0, 3.0), (0.0, 1.0))).with_calibrated_thresholds()
    assert (s.delta_t_threshold_degc, s.check_interval_s) == threshold_for_c_rate(3.0)


def test_old_history_records_without_the_new_fields_load_with_defaults():
    old = Strategy().to_dict()
    for name in ("relief_gain_kpa_per_degc_per_s", "coolant_gain_lpm_per_cm2_degc_per_s", "coupling_decay_per_tick",
                 "relief_hold_s", "relief_release_degc"):
        old.pop(name)
    loaded = Strategy.from_dict(old)
    assert loaded == Strategy()
    assert Strategy.from_dict(Strategy().replace(coolant_gain_lpm_per_cm2_degc_per_s=1.5).to_dict()) \
        == Strategy().replace(coolant_gain_lpm_per_cm2_degc_per_s=1.5)


@pytest.mark.parametrize("field, value", [
    ("relief_gain_kpa_per_degc_per_s", -1.0),
    ("coolant_gain_lpm_per_cm2_degc_per_s", -0.1),
    ("coupling_decay_per_tick", -0.5),
    ("relief_hold_s", -1.0),
    ("relief_release_degc", 80.0),
    ("relief_gain_kpa_per_degc_per_s", math.nan),
])
def test_bad_gains_are_refused_naming_the_field(field, value):
    with pytest.raises(StrategyError, match=field):
        check_strategy(Strategy().replace(**{field: value}), where="tier 1")


def test_every_new_field_is_a_float_field():
    names = {f.name for f in dataclasses.fields(Strategy)}
    assert {"relief_gain_kpa_per_degc_per_s", "coolant_gain_lpm_per_cm2_degc_per_s", "coupling_decay_per_tick",
            "correction_gain"} <= names
