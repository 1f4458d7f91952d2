"""StationDriver's C-rate profile for every station at once equals Strategy.c_rate_at per station."""

import numpy as np
import pytest

from edge.strategy.model import Strategy
from edge.strategy.supervisor import StationDriver

pytestmark = pytest.mark.unit


def test_profile_c_rate_is_c_rate_at_per_station():
    strategies = [Strategy(segments=((70.0, 2.5), (20.0, 1.5), (0.0, 0.8))), Strategy(segments=((0.0, 1.2),)),
                  Strategy(segments=((50.0, 2.0), (10.0, 1.6)))]
    socs = np.array([95.0, 70.0, 69.9, 20.0, 5.0, -3.0, np.nan, 50.0, 10.0, 9.99])
    for soc in socs:
        driver = StationDriver(strategies, np.full(3, soc), np.full(3, 0.9))
        want = [s.c_rate_at(soc) for s in strategies]
        np.testing.assert_array_equal(driver.profile_c_rate(), want)
