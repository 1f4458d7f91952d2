"""Serve the shipped SOC generator with onnxruntime; refuse a model that does not match its metadata.

Owns `SocModel.load` (reads models/shipped/soc_gan.json, checks the format, the sha256 of the
.onnx file, the session's input/output names and shapes, the feature order, the generator
inputs, the scaler, the physics and SOH parameters, and raises `ModelIntegrityError` naming the
file on any mismatch), `SocModel.predict` (feat_* columns -> the physics posterior of
edge.grading.soc_physics -> the generator's inputs -> median and calibrated interval of
several noise draws, in % SOC) and the SOH estimate (edge.grading.soh_model) stored in the
same metadata. edge never imports models/: it reads the files export.py wrote; the integrity rules are
edge/onnx_model.py's.
Tests: tests/edge/grading/test_grading_soc_model.py, tests/models/test_soc_gan.py (parity).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import REPO_ROOT
from edge.grading.features import FEATURE_COLUMNS
from edge.grading.soc_physics import DERIVED_COLUMNS, PhysicsParams, SocPosterior
from edge.grading.soh_model import SohModel
from edge.onnx_model import ModelIntegrityError, open_session, read_metadata

__all__ = ["ModelIntegrityError", "SocModel", "SocPrediction", "SHIPPED_DIR"]

SHIPPED_DIR = REPO_ROOT / "models" / "shipped"
METADATA_FILE = "soc_gan.json"
FORMAT = "discharge-edge/soc-gan/2"
GENERATOR_INPUTS = (*FEATURE_COLUMNS, *DERIVED_COLUMNS)
DOMAIN_MARGIN = 0.1
"""A feature further outside its training range (metadata `domain`, min and max over the training
cells) than this fraction of the range is outside what the model was fitted on: the battery is
graded, and flagged."""
_REQUIRED_KEYS = ("format", "model_file", "model_sha256", "inputs", "outputs", "feature_order",
                  "generator_inputs", "scaler", "domain", "prediction", "physics", "soh_model", "mi_table_soh", "training")


_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class SocPrediction:
    soc_pct: np.ndarray
    lo_pct: np.ndarray
    hi_pct: np.ndarray
    level: float


def _read_metadata(path: Path) -> tuple[dict, PhysicsParams, SohModel]:
    """The checked metadata, and the physics and SOH parts built from it."""
    meta = read_metadata(path, FORMAT, _REQUIRED_KEYS, "run models/soc_gan/train.py")
    if meta["feature_order"] != list(FEATURE_COLUMNS):
        raise ModelIntegrityError(f"{path}: feature_order differs from edge.grading.features.FEATURE_COLUMNS")
    if meta["generator_inputs"] != list(GENERATOR_INPUTS):
        raise ModelIntegrityError(f"{path}: generator_inputs differ from feat_* + {list(DERIVED_COLUMNS)}")
    n = len(GENERATOR_INPUTS)
    scaler = meta["scaler"]
    if len(scaler.get("mean", [])) != n or len(scaler.get("std", [])) != n or min(scaler["std"]) <= 0:
        raise ModelIntegrityError(f"{path}: scaler must hold {n} means and {n} positive stds")
    domain = meta["domain"]
    if (len(domain.get("min", [])) != len(FEATURE_COLUMNS) or len(domain.get("max", [])) != len(FEATURE_COLUMNS)
            or any(lo > hi for lo, hi in zip(domain["min"], domain["max"]))):
        raise ModelIntegrityError(f"{path}: domain must hold {len(FEATURE_COLUMNS)} training minima <= maxima")
    parts = []
    for key, build in (("physics", PhysicsParams.from_dict),
                       ("soh_model", lambda d: SohModel.from_dict(d, len(FEATURE_COLUMNS)))):
        try:
            parts.append(build(meta[key]))
        except KeyError as exc:
            raise ModelIntegrityError(f"{path}: {key}: missing {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{path}: {key}: {exc}") from exc
    return meta, parts[0], parts[1]


class SocModel:
    """The shipped generator plus everything its metadata says about using it."""

    def __init__(self, session, meta: dict, metadata_path: Path, physics: PhysicsParams, soh: SohModel):
        self._session = session
        self.meta = meta
        self.metadata_path = metadata_path
        self._mean = np.asarray(meta["scaler"]["mean"], dtype=np.float64)
        self._std = np.asarray(meta["scaler"]["std"], dtype=np.float64)
        self._noise_dim = int(meta["inputs"][1]["shape"][1])
        self._dtype = _DTYPES[meta["inputs"][0]["dtype"]]
        self._soh = soh
        self.posterior = SocPosterior(physics)

    @classmethod
    def load(cls, folder: str | Path = SHIPPED_DIR) -> SocModel:
        meta_path = Path(folder) / METADATA_FILE
        meta, physics, soh = _read_metadata(meta_path)
        session, model_path = open_session(meta_path, meta)
        if meta["inputs"][0]["shape"][1] != len(GENERATOR_INPUTS):
            raise ModelIntegrityError(f"{model_path}: input width differs from the {len(GENERATOR_INPUTS)} generator inputs")
        return cls(session, meta, meta_path, physics, soh)

    @property
    def interval_level(self) -> float:
        return float(self.meta["prediction"]["interval_level"])

    def generator_inputs(self, features: np.ndarray) -> np.ndarray:
        """feat_* columns (n, 14) in feature_order -> (n, 16): plus the physics posterior's mean and sd."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_COLUMNS):
            raise ValueError(f"features must be (n, {len(FEATURE_COLUMNS)}) in feature_order, got {features.shape}")
        mean, sd = self.posterior.estimate(features, self._soh.predict(features))
        return np.column_stack([features, mean, sd])

    def standardise(self, features: np.ndarray) -> np.ndarray:
        """The generator's standardised inputs for feat_* columns (n, 14)."""
        return (self.generator_inputs(features) - self._mean) / self._std

    def draws(self, features: np.ndarray, n_draws: int | None = None, seed: int = 0) -> np.ndarray:
        """SOC draws in %, shape (n, n_draws): one generator pass over n * n_draws rows."""
        n_draws = int(n_draws or self.meta["prediction"]["draws"])
        x = np.repeat(self.standardise(features).astype(self._dtype), n_draws, axis=0)
        noise = np.random.default_rng(seed).standard_normal((len(x), self._noise_dim)).astype(self._dtype)
        out = self._session.run(None, {"features_std": x, "noise": noise})[0]
        return out.reshape(-1, n_draws)

    def predict(self, features: np.ndarray, n_draws: int | None = None, seed: int = 0) -> SocPrediction:
        """Median of the draws is the SOC; the interval is the calibrated quantile band."""
        draws = self.draws(features, n_draws, seed)
        pred = self.meta["prediction"]
        q_lo, q_hi = pred["interval_quantiles"]
        median = np.median(draws, axis=1)
        lo, hi = np.quantile(draws, [q_lo, q_hi], axis=1)
        scale = float(pred["interval_scale"])
        low_clip, high_clip = pred["soc_clip_pct"]
        return SocPrediction(
            soc_pct=np.clip(median, low_clip, high_clip),
            lo_pct=np.clip(median - scale * (median - lo), low_clip, high_clip),
            hi_pct=np.clip(median + scale * (hi - median), low_clip, high_clip),
            level=self.interval_level,
        )

    def outside_training(self, features: np.ndarray, margin: float = DOMAIN_MARGIN) -> list[list[str]]:
        """Per battery, the feat_* columns outside the training range widened by `margin` of it."""
        low = np.asarray(self.meta["domain"]["min"], dtype=np.float64)
        high = np.asarray(self.meta["domain"]["max"], dtype=np.float64)
        pad = margin * (high - low)
        x = np.asarray(features, dtype=np.float64)
        outside = (x < low - pad) | (x > high + pad)
        return [[FEATURE_COLUMNS[j] for j in np.flatnonzero(row)] for row in outside]

    def soh(self, features: np.ndarray) -> np.ndarray:
        """SOH estimate (fraction of rated capacity) from the quadratic ridge in the metadata."""
        return self._soh.predict(np.asarray(features, dtype=np.float64))
