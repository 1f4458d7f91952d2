"""Serving the shipped RL policy: it loads, gives a prior per tier, and is refused when altered."""

import json
import shutil

import numpy as np
import pytest

from edge.strategy.history import TierFeatures
from edge.strategy.model import Strategy
from edge.strategy.policy import SHIPPED_DIR, STATE_DIM, PolicyIntegrityError, RlPolicy, state_vector
from edge.strategy.tree import ACTIONS

pytestmark = pytest.mark.unit

FEATURES = TierFeatures(70.0, 0.8, 45.0, 10)


def test_shipped_policy_gives_a_distribution_over_actions():
    policy = RlPolicy.load()
    p = policy.prior_for(FEATURES)(Strategy())
    assert p.shape == (len(ACTIONS),) and abs(p.sum() - 1) < 1e-5 and (p >= 0).all()
    q, prior = policy.run(np.stack([state_vector(FEATURES, Strategy())] * 3))
    assert q.shape == prior.shape == (3, len(ACTIONS))


def test_state_vector_layout():
    v = state_vector(FEATURES, Strategy(pressure_kpa=200.0))
    assert v.shape == (STATE_DIM,) and v.dtype == np.float32 and v[0] == pytest.approx(0.7) and v[7] == 0.5


@pytest.fixture
def copy_of_shipped(tmp_path):
    for name in ("rl_policy.onnx", "rl_policy.json"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    return tmp_path


def test_altered_model_is_refused(copy_of_shipped):
    with (copy_of_shipped / "rl_policy.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(PolicyIntegrityError, match="sha256"):
        RlPolicy.load(copy_of_shipped)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(actions=m["actions"][::-1]), "actions"),
    (lambda m: m.update(format="other/1"), "format"),
    (lambda m: m.pop("training_data_sha256"), "lacks"),
    (lambda m: m["outputs"].reverse(), "names"),
])
def test_inconsistent_metadata_is_refused(copy_of_shipped, edit, message):
    path = copy_of_shipped / "rl_policy.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(PolicyIntegrityError, match=message):
        RlPolicy.load(copy_of_shipped)


def test_missing_metadata_names_the_file(tmp_path):
    with pytest.raises(PolicyIntegrityError, match="rl_policy.json"):
        RlPolicy.load(tmp_path)
