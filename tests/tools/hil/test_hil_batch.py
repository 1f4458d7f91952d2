"""Same batch, several controllers (tools/hil/batch.py)."""

import numpy as np
import pytest

from edge.strategy.baseline import BaselineConfig
from tools.hil.batch import baseline_factory, compare_controllers, features
from edge.batterymodel.sil import SilConfig

pytestmark = pytest.mark.unit


def test_compare_runs_each_controller_on_a_fresh_plant(cells):
    sel = cells.select([3, 48, 60])
    seen = {}

    def spy(plant, feats):
        seen.update(feats)
        return baseline_factory(BaselineConfig(current_a=10.0))(plant, feats)

    out = compare_controllers(sel, {"baseline_1c": baseline_factory(), "baseline_2c": spy},
                              sil_config=SilConfig(dt_s=1.0, max_time_s=5400.0))
    assert set(seen) == set(features(sel)) and all(k.startswith("feat_") for k in seen)
    np.testing.assert_allclose(seen["feat_v_rest_V"], sel["feat_v_rest_V"])
    one, two = out["baseline_1c"], out["baseline_2c"]
    assert one["modules_finished"] == two["modules_finished"] == 3
    assert two["batch_time_s"] < one["batch_time_s"], "twice the current finishes sooner"
    assert two["peak_temp_degc"] > one["peak_temp_degc"], "and runs hotter"
