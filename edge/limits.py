"""The line's temperature levels and the shipped models' folder: the one source every layer of
edge/ reads (the tier limits of edge/strategy/model.py, the SIL and the traditional method of
edge/batterymodel and edge/strategy/baseline.py, the grading and policy loaders, the line file's
default). rtcore/spec.py keeps its own defaults: rtcore imports nothing of edge, and the tier's
limits reach the core per station (edge/strategy/model.py `station_limits`).
Tests: tests/test_limits.py."""

from edge import REPO_ROOT

WARNING_DEGC = 45.0
"""Recommended safety: the warning temperature (the seed's traditional method releases the
fixture here; the tier limits' recommended maximum)."""
MAXIMUM_SAFETY_DEGC = 55.0
"""Maximum safety: a station at or above it is stopped (the tier limits' maximum)."""
SHIPPED_MODELS_DIR = REPO_ROOT / "models" / "shipped"
"""The models the product ships (SOC GAN and RL policy, ONNX with their metadata)."""
