"""Serve the shipped RL policy (models/rl_policy) with onnxruntime as the game tree's prior.

Owns `STATE_FEATURES`/`state_vector` (the state both sides share: tier features + strategy
parameters, scaled), `RlPolicy.load` (reads models/shipped/rl_policy.json, checks format, the
sha256 of the .onnx file, the session's input/output names, dtypes and shapes, the state layout
and the action names against edge/strategy/tree.ACTIONS, a finite prior_temperature > 0, a
`model_file` inside the folder (edge.grading.metadata_checks), and raises `PolicyIntegrityError`
naming the file and the field on any mismatch: the rules of edge/grading/soc_model.py) and `prior_for`.
edge never imports models/: it reads the files models/rl_policy/export.py wrote.
Tests: tests/edge/strategy/test_policy.py, tests/models/test_rl_policy.py (parity).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.limits import SHIPPED_MODELS_DIR
from edge.grading.metadata_checks import check_io, check_model_file, check_number, load_metadata, quiet_onnxruntime
from edge.onnx_model import ModelIntegrityError, open_session
from edge.strategy.history import TierFeatures
from edge.strategy.model import Strategy
from edge.strategy.tree import ACTION_NAMES

SHIPPED_DIR = SHIPPED_MODELS_DIR
METADATA_FILE = "rl_policy.json"
FORMAT = "discharge-edge/rl-policy/1"
_REQUIRED = ("format", "model_file", "model_sha256", "training_data_sha256", "inputs", "outputs", "state_features",
             "actions", "prior_temperature")

#: (name, unit, how it is scaled into the state vector)
STATE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("soc_mean", "% SOC", "/100"),
    ("soh_mean", "-", "as is"),
    ("r_mean", "mOhm", "/100"),
    ("c_rate_first_segment", "C", "/3"),
    ("c_rate_last_segment", "C", "/3"),
    ("taper_v_per_cell", "V", "-2.5"),
    ("end_c_rate", "C", "as is"),
    ("pressure", "kPa", "/400"),
    ("coolant_base", "L/min", "/20"),
    ("derate_start", "degC", "/50"),
)
STATE_DIM = len(STATE_FEATURES)


class PolicyIntegrityError(ModelIntegrityError):
    """The policy or its metadata is missing, altered or inconsistent; the message names the file."""


def state_vector(features: TierFeatures, strategy: Strategy) -> np.ndarray:
    s = strategy
    return np.array([features.soc_mean_pct / 100.0, features.soh_mean, features.r_mean_mohm / 100.0,
                     s.segments[0][1] / 3.0, s.segments[-1][1] / 3.0, s.taper_v_per_cell - 2.5, s.end_c_rate,
                     s.pressure_kpa / 400.0, s.coolant_base_lpm / 20.0, s.derate_start_degc / 50.0], np.float32)


def _read_metadata(path: Path) -> dict:
    meta = load_metadata(path, FORMAT, _REQUIRED, "run models/rl_policy/train.py", PolicyIntegrityError)
    features = meta["state_features"]
    if not isinstance(features, list) or not all(isinstance(f, dict) for f in features) or \
            [f.get("name") for f in features] != [n for n, _, _ in STATE_FEATURES]:
        raise PolicyIntegrityError(f"{path}: state_features differ from edge.strategy.policy.STATE_FEATURES")
    if meta["actions"] != list(ACTION_NAMES):
        raise PolicyIntegrityError(f"{path}: actions differ from edge.strategy.tree.ACTIONS")
    check_number(path, meta["prior_temperature"], "prior_temperature", PolicyIntegrityError, low=0.0, low_open=True)
    check_model_file(path, meta, PolicyIntegrityError)
    check_io(path, meta, PolicyIntegrityError, n_inputs=1, n_outputs=2)
    return meta


def _check_layout(session, model_path: Path) -> None:
    """Beyond what the metadata declares: the state and action sizes this edge uses, in float32."""
    expected = {"state": STATE_DIM, "q_value": len(ACTION_NAMES), "prior": len(ACTION_NAMES)}
    for io in (*session.get_inputs(), *session.get_outputs()):
        if io.type != "tensor(float)" or io.shape[1:] != [expected.get(io.name, -1)]:
            raise PolicyIntegrityError(f"{model_path}: {io.name} is {io.type} {io.shape}, this edge needs "
                                       f"float32 [batch, {expected.get(io.name)}]")


class RlPolicy:
    def __init__(self, session, meta: dict, metadata_path: Path):
        self._session = session
        self.meta = meta
        self.metadata_path = metadata_path

    @classmethod
    def load(cls, folder: str | Path = SHIPPED_DIR) -> RlPolicy:
        meta_path = Path(folder) / METADATA_FILE
        meta = _read_metadata(meta_path)
        quiet_onnxruntime()
        session, model_path = open_session(meta_path, meta, PolicyIntegrityError)
        _check_layout(session, model_path)
        return cls(session, meta, meta_path)

    def run(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q_value, prior) for a (batch, STATE_DIM) float32 array."""
        x = np.ascontiguousarray(states, dtype=np.float32).reshape(-1, STATE_DIM)
        q, p = self._session.run(["q_value", "prior"], {"state": x})
        return q, p

    def prior_for(self, features: TierFeatures) -> Callable[[Strategy], np.ndarray]:
        """The game tree's prior for one tier: probabilities over ACTIONS for a strategy."""
        def prior(strategy: Strategy) -> np.ndarray:
            return self.run(state_vector(features, strategy)[None, :])[1][0].astype(float)
        return prior
