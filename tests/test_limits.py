"""One source for the line's temperature levels and the shipped models' folder (edge/limits.py)."""

import pytest

from edge.batterymodel.sil import SilConfig
from edge.grading.soc_model import SHIPPED_DIR as GRADING_DIR
from edge.limits import MAXIMUM_SAFETY_DEGC, SHIPPED_MODELS_DIR, WARNING_DEGC
from edge.strategy.baseline import BaselineConfig
from edge.strategy.model import TierLimits
from edge.strategy.policy import SHIPPED_DIR as POLICY_DIR
from edge.supervisor.line import DEFAULT_MODELS_DIR

pytestmark = pytest.mark.unit


def test_every_warning_and_maximum_is_the_one_in_edge_limits():
    limits = TierLimits()
    assert limits.recommended.max_temp_degc == WARNING_DEGC == 45.0
    assert limits.maximum.max_temp_degc == MAXIMUM_SAFETY_DEGC == 55.0
    assert SilConfig().warning_temp_degc == WARNING_DEGC and BaselineConfig().warning_temp_degc == WARNING_DEGC


def test_every_shipped_models_folder_is_the_one_in_edge_limits():
    assert GRADING_DIR == POLICY_DIR == DEFAULT_MODELS_DIR == SHIPPED_MODELS_DIR
    assert (SHIPPED_MODELS_DIR / "soc_gan.onnx").is_file() and (SHIPPED_MODELS_DIR / "rl_policy.onnx").is_file()
