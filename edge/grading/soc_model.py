"""Serve the shipped SOC generator with onnxruntime; refuse a model that does not match its metadata.

Owns `SocModel.load` (reads models/shipped/soc_gan.json, checks the format, the sha256 of the
.onnx file, that `model_file` stays inside the model folder, the session's input/output names and
shapes, the feature order, the generator inputs, the scaler and domain (finite numbers, stds > 0),
`prediction` (draws 2..1024, ordered quantiles, a positive interval_scale, ordered soc_clip_pct),
the MI table, the physics and SOH parameters (finite numbers), and raises `ModelIntegrityError`
naming the file and the field on any violation; onnxruntime's telemetry is off, see
edge.grading.metadata_checks), `SocModel.predict` (feat_* columns, in chunks -> the physics posterior of
edge.grading.soc_physics -> the generator's inputs -> median and calibrated interval of
several noise draws, in % SOC) and the SOH estimate (edge.grading.soh_model) stored in the
same metadata. The posterior's tables are kept under TABLES_DIR and made in a thread while
the session opens. The posterior runs once over every battery of a `predict` call (its cost per
grid row is shared); a chunk of `PREDICT_CHUNK_ROWS` batteries draws its noise at once and goes
through onnxruntime in calls of at most `RUN_ROWS` rows, chunks in turn on up to GENERATOR_THREADS
threads (edge.grading.soc_physics.threads_now); the median and the interval's quantiles come from
one `np.partition` of the draws (`quantiles_by_partition`, the numbers of np.quantile).
edge never imports models/: it reads the files export.py wrote; the integrity rules are
edge/onnx_model.py's.
Tests: tests/edge/grading/test_grading_soc_model.py, tests/edge/grading/test_grading_metadata.py,
tests/edge/grading/test_grading_fast_reader.py (quantiles), tests/edge/grading/test_grading_tables.py,
tests/models/test_soc_gan.py (parity).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import REPO_ROOT
from edge.limits import SHIPPED_MODELS_DIR
from edge.grading.features import FEATURE_COLUMNS
from edge.grading.soc_physics import (DERIVED_COLUMNS, POSTERIOR_THREADS, PhysicsParams, SocPosterior, in_parallel,
                                      threads_now)
from edge.grading.soh_model import SohModel
from edge.grading.metadata_checks import (
    check_io,
    check_model_file,
    check_number,
    check_numbers,
    check_ordered_pair,
    check_text,
    load_metadata,
    quiet_onnxruntime,
)
from edge.onnx_model import ModelIntegrityError, open_session

__all__ = ["ModelIntegrityError", "SocModel", "SocPrediction", "SHIPPED_DIR"]

SHIPPED_DIR = SHIPPED_MODELS_DIR
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
TABLES_DIR = REPO_ROOT / "build" / "grading"
"""Where `load` keeps the physics posterior's tables between runs (edge.grading.soc_physics
`posterior_tables`: 20.7 MB, built on the first run, 0.13-0.25 s of CPU saved on each later one);
the checkout's build folder, never under $HOME."""
MIN_DRAWS, MAX_DRAWS = 2, 1024
"""Noise draws per battery: two at least for an interval of any width; the CLI's --draws bound."""
MAX_PRIOR_STATES = 4096
"""Prior ageing states of the physics posterior: its tables are 2 x 4 bytes x 3801 per state."""
PREDICT_CHUNK_ROWS = 1024
"""Batteries per noise draw (chunk k's noise is drawn with seed + k): the predictions depend on it."""
RUN_ROWS = 8192
"""Generator rows (batteries x draws) per onnxruntime call: its buffers grow with the rows of a call
(65 536 rows: about 270 MB), so a chunk goes through in slices of this many; the same numbers."""

SESSION_THREADS = 1
"""onnxruntime's own threads for the generator: one; `predict` runs chunks on GENERATOR_THREADS
threads instead (onnxruntime's run releases the GIL; the noise, the repeat and the quantiles of a
chunk go along). 640 000 rows through one onnxruntime thread: 0.27-0.29 s of CPU; through two
intra-op threads 0.30-0.41 s of CPU and no faster at a load of 2."""
GENERATOR_THREADS = POSTERIOR_THREADS

os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before anyone imports onnxruntime: see quiet_onnxruntime


@dataclass(frozen=True)
class SocPrediction:
    soc_pct: np.ndarray
    lo_pct: np.ndarray
    hi_pct: np.ndarray
    level: float


def _read_metadata(path: Path) -> tuple[dict, PhysicsParams, SohModel]:
    """The checked metadata, and the physics and SOH parts built from it."""
    meta = load_metadata(path, FORMAT, _REQUIRED_KEYS, "run models/soc_gan/train.py", ModelIntegrityError)
    if meta["feature_order"] != list(FEATURE_COLUMNS):
        raise ModelIntegrityError(f"{path}: feature_order differs from edge.grading.features.FEATURE_COLUMNS")
    if meta["generator_inputs"] != list(GENERATOR_INPUTS):
        raise ModelIntegrityError(f"{path}: generator_inputs differ from feat_* + {list(DERIVED_COLUMNS)}")
    check_model_file(path, meta, ModelIntegrityError)
    check_io(path, meta, ModelIntegrityError, n_inputs=2, n_outputs=1)
    _check_scaler_and_domain(path, meta)
    _check_prediction(path, meta["prediction"])
    _check_mi_table(path, meta["mi_table_soh"])
    parts = []
    for key, build in (("physics", PhysicsParams.from_dict),
                       ("soh_model", lambda d: SohModel.from_dict(d, len(FEATURE_COLUMNS)))):
        if not isinstance(meta[key], dict):
            raise ModelIntegrityError(f"{path}: {key} must be an object")
        _check_all_numbers(path, meta[key], key)
        if key == "physics":
            _check_physics(path, meta[key])
        try:
            parts.append(build(meta[key]))
        except KeyError as exc:
            raise ModelIntegrityError(f"{path}: {key}: missing {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ModelIntegrityError(f"{path}: {key}: {exc}") from exc
    return meta, parts[0], parts[1]


def _check_scaler_and_domain(path: Path, meta: dict) -> None:
    n = len(GENERATOR_INPUTS)
    scaler, domain = meta["scaler"], meta["domain"]
    if not isinstance(scaler, dict) or not isinstance(domain, dict):
        raise ModelIntegrityError(f"{path}: scaler and domain must be objects")
    if not isinstance(scaler.get("mean"), list) or not isinstance(scaler.get("std"), list) or \
            len(scaler["mean"]) != n or len(scaler["std"]) != n:
        raise ModelIntegrityError(f"{path}: scaler must hold {n} means and {n} positive stds")
    check_numbers(path, scaler["mean"], "scaler.mean", ModelIntegrityError, length=n)
    check_numbers(path, scaler["std"], "scaler.std", ModelIntegrityError, length=n, positive=True)
    m = len(FEATURE_COLUMNS)
    if not isinstance(domain.get("min"), list) or not isinstance(domain.get("max"), list) or \
            len(domain["min"]) != m or len(domain["max"]) != m:
        raise ModelIntegrityError(f"{path}: domain must hold {m} training minima <= maxima")
    low = check_numbers(path, domain["min"], "domain.min", ModelIntegrityError, length=m)
    high = check_numbers(path, domain["max"], "domain.max", ModelIntegrityError, length=m)
    if any(lo > hi for lo, hi in zip(low, high)):
        raise ModelIntegrityError(f"{path}: domain must hold {m} training minima <= maxima")


def _check_prediction(path: Path, pred) -> None:
    """draws >= 2, a level in (0, 1), ordered quantiles in [0, 1], a positive scale, ordered clips in [0, 100]."""
    if not isinstance(pred, dict):
        raise ModelIntegrityError(f"{path}: prediction must be an object")
    missing = [k for k in ("draws", "interval_level", "interval_quantiles", "interval_scale", "soc_clip_pct")
               if k not in pred]
    if missing:
        raise ModelIntegrityError(f"{path}: prediction lacks {missing}")
    err = ModelIntegrityError
    check_number(path, pred["draws"], "prediction.draws", err, low=MIN_DRAWS, high=MAX_DRAWS, integer=True)
    check_number(path, pred["interval_level"], "prediction.interval_level", err, low=0.0, high=1.0, low_open=True)
    check_ordered_pair(path, pred["interval_quantiles"], "prediction.interval_quantiles", err, low=0.0, high=1.0)
    check_number(path, pred["interval_scale"], "prediction.interval_scale", err, low=0.0, high=1e3, low_open=True)
    check_ordered_pair(path, pred["soc_clip_pct"], "prediction.soc_clip_pct", err, low=0.0, high=100.0)


def _check_mi_table(path: Path, table) -> None:
    """One row per generator input, in their order: feature, mi_nats >= 0, copula and marginal names."""
    if not isinstance(table, list) or not all(isinstance(row, dict) for row in table):
        raise ModelIntegrityError(f"{path}: mi_table_soh must be a list of objects")
    if [row.get("feature") for row in table] != list(GENERATOR_INPUTS):
        raise ModelIntegrityError(f"{path}: mi_table_soh must have one row per generator input, in their order")
    for i, row in enumerate(table):
        where = f"mi_table_soh[{i}]"
        check_number(path, row.get("mi_nats"), f"{where}.mi_nats", ModelIntegrityError, low=0.0)
        for key in ("copula", "marginal_x", "marginal_y"):
            check_text(path, row.get(key), f"{where}.{key}", ModelIntegrityError)


def _check_physics(path: Path, physics: dict) -> None:
    """Bounds that keep the posterior's tables buildable and small: ageing fractions in [0, 0.9)
    (edge.grading.electrochem.solve_windows), at most MAX_PRIOR_STATES prior states, the offset grid."""
    err = ModelIntegrityError
    for name in ("prior_lli", "prior_lam_ne", "prior_lam_pe", "prior_soh"):
        values = physics.get(name)
        if isinstance(values, list) and len(values) > MAX_PRIOR_STATES:
            raise err(f"{path}: physics.{name} holds {len(values)} prior states, at most {MAX_PRIOR_STATES}")
        for i, value in enumerate(values if isinstance(values, list) else []):
            if name == "prior_soh":
                check_number(path, value, f"physics.{name}[{i}]", err, low=0.0, high=2.0, low_open=True)
            elif not 0.0 <= value < 0.9:
                raise err(f"{path}: physics.{name}[{i}] must be in [0, 0.9), got {value!r}")
    if "hyst_points" in physics:
        check_number(path, physics["hyst_points"], "physics.hyst_points", err, low=1, high=1001, integer=True)
    if "hyst_half_width_v" in physics:
        check_number(path, physics["hyst_half_width_v"], "physics.hyst_half_width_v", err, low=0.0, high=0.1)
    if "pulse_charge_ah" in physics:
        check_number(path, physics["pulse_charge_ah"], "physics.pulse_charge_ah", err, low=0.0, high=1.0, low_open=True)


def _check_all_numbers(path: Path, part: dict, key: str) -> None:
    """Every value of physics/soh_model a finite number or a list of them (soh_model.kind excepted)."""
    for name, value in part.items():
        if key == "soh_model" and name == "kind":
            continue
        if isinstance(value, list):
            check_numbers(path, value, f"{key}.{name}", ModelIntegrityError)
        else:
            check_number(path, value, f"{key}.{name}", ModelIntegrityError)


def quantiles_by_partition(draws: np.ndarray, qs) -> list[np.ndarray]:
    """`np.quantile(draws, q, axis=1)` (linear interpolation) for each q, from one `np.partition` of
    the order statistics they need rather than a sort of every row; the same numbers."""
    draws = np.asarray(draws)
    n = draws.shape[1]
    spots = []
    for q in qs:
        pos = q * (n - 1)
        below = int(np.floor(pos))
        spots.append((below, min(below + 1, n - 1), pos - below))
    part = np.partition(draws, sorted({k for a, b, _ in spots for k in (a, b)}), axis=1)
    out = []
    for below, above, frac in spots:
        a, b = part[:, below], part[:, above]
        diff = b - a
        # numpy's _lerp: a + diff * t, from the upper end when t >= 0.5 (the same rounding)
        out.append(np.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac))
    return out


class SocModel:
    """The shipped generator plus everything its metadata says about using it."""

    def __init__(self, session, meta: dict, metadata_path: Path, physics: PhysicsParams | SocPosterior, soh: SohModel,
                 tables_dir: Path | None = None):
        """`physics`: the posterior's parameters (its tables built, or kept in `tables_dir`), or the posterior."""
        self._session = session
        self.meta = meta
        self.metadata_path = metadata_path
        self._mean = np.asarray(meta["scaler"]["mean"], dtype=np.float64)
        self._std = np.asarray(meta["scaler"]["std"], dtype=np.float64)
        self._noise_dim = int(meta["inputs"][1]["shape"][1])
        self._dtype = _DTYPES[meta["inputs"][0]["dtype"]]
        self._soh = soh
        self.posterior = physics if isinstance(physics, SocPosterior) else SocPosterior(physics, tables_dir)

    @classmethod
    def load(cls, folder: str | Path = SHIPPED_DIR, tables_dir: Path | None = TABLES_DIR) -> SocModel:
        """The checked model of `folder`; the posterior's tables kept in `tables_dir` (None: built
        each time), made in a thread while onnxruntime opens the session."""
        meta_path = Path(folder) / METADATA_FILE
        meta, physics, soh = _read_metadata(meta_path)
        quiet_onnxruntime()
        opened: list = []
        posterior: list = []

        def build() -> None:
            try:
                posterior.append(SocPosterior(physics, tables_dir))
            except (ValueError, TypeError, ArithmeticError) as exc:  # the physics tables from checked numbers
                raise ModelIntegrityError(f"{meta_path}: physics: the posterior's tables cannot be built: {exc}") from exc

        in_parallel([lambda: opened.extend(open_session(meta_path, meta, threads=SESSION_THREADS)), build])
        session, model_path = opened
        if meta["inputs"][0]["shape"][1] != len(GENERATOR_INPUTS):
            raise ModelIntegrityError(f"{model_path}: input width differs from the {len(GENERATOR_INPUTS)} generator inputs")
        return cls(session, meta, meta_path, posterior[0], soh)

    @property
    def interval_level(self) -> float:
        return float(self.meta["prediction"]["interval_level"])

    def generator_inputs(self, features: np.ndarray, soh: np.ndarray | None = None) -> np.ndarray:
        """feat_* columns (n, 14) in feature_order -> (n, 16): plus the physics posterior's mean and sd.
        `soh`: the SOH estimate of these rows (`soh`), when the caller has it already."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_COLUMNS):
            raise ValueError(f"features must be (n, {len(FEATURE_COLUMNS)}) in feature_order, got {features.shape}")
        mean, sd = self.posterior.estimate(features, self._soh.predict(features) if soh is None else soh)
        return np.column_stack([features, mean, sd])

    def standardise(self, features: np.ndarray, soh: np.ndarray | None = None) -> np.ndarray:
        """The generator's standardised inputs for feat_* columns (n, 14) (`soh` as generator_inputs')."""
        return (self.generator_inputs(features, soh) - self._mean) / self._std

    def draws(self, features: np.ndarray, n_draws: int | None = None, seed: int = 0) -> np.ndarray:
        """SOC draws in %, shape (n, n_draws): one generator pass over n * n_draws rows."""
        return self._draws_std(self.standardise(features), n_draws, seed)

    def _draws_std(self, x_std: np.ndarray, n_draws: int | None, seed: int) -> np.ndarray:
        """`draws` from the standardised generator inputs (n, 16). The rows go through onnxruntime
        in slices of about RUN_ROWS, each slice's inputs written into the same two small buffers
        (the noise drawn on from one generator: the numbers of one draw of the whole chunk)."""
        n_draws = self._n_draws(n_draws)
        batteries = max(1, RUN_ROWS // n_draws)
        x32 = np.asarray(x_std, dtype=self._dtype)
        rng = np.random.default_rng(seed)
        rows = min(len(x32), batteries) * n_draws
        features = np.empty((rows, x32.shape[1]), dtype=self._dtype)
        noise = np.empty((rows, self._noise_dim), dtype=np.float64)
        out = np.empty((len(x32) * n_draws, 1), dtype=self._dtype)
        for first in range(0, len(x32), batteries):
            part = x32[first:first + batteries]
            size = len(part) * n_draws
            features[:size].reshape(len(part), n_draws, -1)[...] = part[:, None, :]  # np.repeat's rows
            rng.standard_normal(out=noise[:size])
            feed = {"features_std": features[:size], "noise": noise[:size].astype(self._dtype, copy=False)}
            out[first * n_draws:first * n_draws + size] = self._session.run(None, feed)[0]
        return out.reshape(-1, n_draws)

    def _n_draws(self, n_draws: int | None) -> int:
        n_draws = int(self.meta["prediction"]["draws"] if n_draws is None else n_draws)
        if not MIN_DRAWS <= n_draws <= MAX_DRAWS:
            raise ValueError(f"draws must be in {MIN_DRAWS}..{MAX_DRAWS}, got {n_draws}")
        return n_draws

    def predict(self, features: np.ndarray, n_draws: int | None = None, seed: int = 0,
                chunk_rows: int = PREDICT_CHUNK_ROWS) -> SocPrediction:
        """Median of the draws is the SOC; the interval is the calibrated quantile band.

        Batteries go through the generator `chunk_rows` at a time (the noise of chunk k is drawn
        with seed + k), so memory stays bounded for any batch."""
        return self.predict_standardised(self.standardise(features), n_draws, seed, chunk_rows)

    def predict_standardised(self, x_std: np.ndarray, n_draws: int | None = None, seed: int = 0,
                             chunk_rows: int = PREDICT_CHUNK_ROWS) -> SocPrediction:
        """`predict` from the generator's standardised inputs (`standardise`: the posterior already run)."""
        firsts = range(0, len(x_std), chunk_rows)
        if len(firsts) < 2:
            parts = [self._predict_chunk(x_std, n_draws, seed)]
        else:  # chunks taken in turn by up to GENERATOR_THREADS threads (threads_now); each chunk's numbers are its own
            parts = [None] * len(firsts)
            turns = itertools.count()

            def work() -> None:
                for k in iter(turns.__next__, None):
                    if k >= len(firsts):
                        return
                    parts[k] = self._predict_chunk(x_std[firsts[k]:firsts[k] + chunk_rows], n_draws, seed + k)

            in_parallel([work] * min(threads_now(GENERATOR_THREADS), len(firsts)))
        return SocPrediction(soc_pct=np.concatenate([p[0] for p in parts]), lo_pct=np.concatenate([p[1] for p in parts]),
                             hi_pct=np.concatenate([p[2] for p in parts]), level=self.interval_level)

    def _predict_chunk(self, x_std: np.ndarray, n_draws: int | None, seed: int) -> tuple[np.ndarray, ...]:
        draws = self._draws_std(x_std, n_draws, seed)
        pred = self.meta["prediction"]
        q_lo, q_hi = pred["interval_quantiles"]
        median, lo, hi = quantiles_by_partition(draws, (0.5, q_lo, q_hi))
        scale = float(pred["interval_scale"])
        low_clip, high_clip = pred["soc_clip_pct"]
        return (np.clip(median, low_clip, high_clip),
                np.clip(median - scale * (median - lo), low_clip, high_clip),
                np.clip(median + scale * (hi - median), low_clip, high_clip))

    def outside_training(self, features: np.ndarray, margin: float = DOMAIN_MARGIN) -> list[list[str]]:
        """Per battery, the feat_* columns outside the training range widened by `margin` of it."""
        low = np.asarray(self.meta["domain"]["min"], dtype=np.float64)
        high = np.asarray(self.meta["domain"]["max"], dtype=np.float64)
        pad = margin * (high - low)
        x = np.asarray(features, dtype=np.float64)
        outside = (x < low - pad) | (x > high + pad)
        names: list[list[str]] = [[] for _ in range(len(x))]
        for i in np.flatnonzero(outside.any(axis=1)):  # few rows: the rest share no work
            names[i] = [FEATURE_COLUMNS[j] for j in np.flatnonzero(outside[i])]
        return names

    def soh(self, features: np.ndarray) -> np.ndarray:
        """SOH estimate (fraction of rated capacity) from the quadratic ridge in the metadata."""
        return self._soh.predict(np.asarray(features, dtype=np.float64))
