"""The supervisor's current setpoints: profile x taper x derating, coulomb counting."""

import numpy as np
import pytest

from edge.strategy.model import Strategy
from edge.strategy.supervisor import StationDriver

pytestmark = pytest.mark.unit

S = Strategy(segments=((50, 2.0), (0, 1.0)), taper_v_per_cell=3.0, end_c_rate=0.2,
             derate_start_degc=40.0, derate_stop_degc=44.0, derate_floor=0.1, ramp_c_rate_per_s=1.0)


def test_profile_taper_and_derating():
    d = StationDriver([S] * 4, np.array([80.0, 30.0, 80.0, 80.0]), np.ones(4))
    amps = d.step(np.full(4, 1e-9), np.array([3.5, 3.5, 2.75, 3.5]), np.array([30.0, 30.0, 30.0, 42.0]), 10.0)
    assert np.allclose(amps, [10.0, 5.0, 5.0, 5.0])  # 2C; 1C below 50 %; half way down the taper; half derated


def test_lost_temperature_sensor_derates_to_the_floor_and_station_limit_holds():
    d = StationDriver([S.replace(segments=((0, 3.0),))] * 2, np.array([90.0, 90.0]), np.ones(2),
                      station_max_current_a=12.0)
    amps = d.step(np.full(2, 1e-9), np.full(2, 3.6), np.array([np.nan, 20.0]), 10.0)
    assert amps[0] == 0.1 * 15.0 and amps[1] == 12.0


def test_coulomb_counting_moves_the_profile_segment():
    d = StationDriver([S], np.array([51.0]), np.array([1.0]))  # 5 Ah
    assert d.profile_c_rate()[0] == 2.0
    d.step(np.array([10.0]), np.array([3.6]), np.array([25.0]), 36.0)  # 0.1 Ah = 2 %
    assert d.soc_pct[0] == 49.0 and d.profile_c_rate()[0] == 1.0


def test_soft_start_ramps_from_the_end_rate():
    d = StationDriver([S.replace(ramp_c_rate_per_s=0.1)], np.array([80.0]), np.array([1.0]))
    steps = [d.step(np.array([0.0]), np.array([3.6]), np.array([25.0]), 1.0)[0] for _ in range(20)]
    assert steps[0] == 0.2 * 5 + 0.5 and np.allclose(np.diff(steps[:17]), 0.5) and steps[-1] == 10.0
