"""RL policy: transitions from history, Bellman fitting, ONNX export and PyTorch/onnxruntime parity."""

import numpy as np
import pytest
import torch

from edge.strategy.history import History, TierFeatures
from edge.strategy.model import Strategy
from edge.strategy.policy import SHIPPED_DIR, STATE_DIM, RlPolicy, state_vector
from edge.strategy.tree import ACTION_NAMES, ACTIONS
from models.rl_policy.export import export_policy
from models.rl_policy.qnet import PolicyGraph, QNet, fit_bellman
from models.rl_policy.transitions import digest, transitions_from_records

pytestmark = pytest.mark.unit

M = dict(batch_time_s=1000.0, residual_pct=10.0, peak_temp_degc=40.0, time_above_warning_s=0.0, relief_events=0)
F = TierFeatures(60.0, 0.8, 40.0, 5)


def _history(tmp_path):
    h = History(tmp_path / "h.sqlite")
    root = Strategy()
    up = ACTIONS[ACTION_NAMES.index("pressure_up")].apply(root)
    down = ACTIONS[ACTION_NAMES.index("rate_down_all")].apply(root)
    h.append("sil", 1, F, root, M, 0.8)
    h.append("sil", 1, F, up, M, 0.6)      # pressure_up improves by 0.2
    h.append("sil", 1, F, down, M, 0.9)    # rate_down_all worsens by 0.1
    h.append("bench", 1, F, root, M, 5.0)  # another scale: ignored
    return h


def test_transitions_are_one_action_apart_with_the_score_improvement(tmp_path):
    with _history(tmp_path) as h:
        t = transitions_from_records(h.all())
    by_action = {ACTION_NAMES[a]: r for a, r in zip(t["a"], t["r"])}
    assert by_action["pressure_up"] == pytest.approx(0.2) and by_action["rate_down_all"] == pytest.approx(-0.1)
    assert by_action["pressure_down"] == pytest.approx(-0.2)  # the way back is a transition too
    assert t["s"].shape[1] == STATE_DIM and t["mask2"].any(axis=1).all()


def test_bellman_fit_ranks_the_rewarding_action_first(tmp_path):
    with _history(tmp_path) as h:
        t = transitions_from_records(h.all())
    qnet = QNet()
    losses = fit_bellman(qnet, t["s"], t["a"], t["r"], t["s2"], t["mask2"], gamma=0.0, sweeps=3, epochs=200)
    assert losses[-1] < 1e-3
    with torch.no_grad():
        q = qnet(torch.tensor(state_vector(F, Strategy())[None, :]))[0].numpy()
    assert q[ACTION_NAMES.index("pressure_up")] > q[ACTION_NAMES.index("rate_down_all")]


def test_export_round_trip_and_parity_on_a_fresh_export(tmp_path):
    with _history(tmp_path) as h:
        t = transitions_from_records(h.all())
    qnet = QNet()
    export_policy(qnet, t, tmp_path / "out", 0.05, {"note": "test"})
    policy = RlPolicy.load(tmp_path / "out")
    assert policy.meta["training_data_sha256"] == digest(t)
    x = np.random.default_rng(0).normal(size=(64, STATE_DIM)).astype(np.float32)
    q_ort, p_ort = policy.run(x)
    with torch.no_grad():
        q_pt, p_pt = PolicyGraph(qnet, 0.05)(torch.tensor(x))
    assert np.abs(q_ort - q_pt.numpy()).max() < 1e-5 and np.abs(p_ort - p_pt.numpy()).max() < 1e-5


def test_shipped_policy_parity_pytorch_vs_onnxruntime():
    saved = torch.load(SHIPPED_DIR / "rl_policy.pt", weights_only=True)
    qnet = QNet(saved["hidden"])
    qnet.load_state_dict(saved["state_dict"])
    policy = RlPolicy.load()
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(0, 1.2, size=(256, STATE_DIM)),
                        np.stack([state_vector(F, Strategy())])]).astype(np.float32)
    q_ort, p_ort = policy.run(x)
    with torch.no_grad():
        q_pt, p_pt = PolicyGraph(qnet.eval(), saved["temperature"])(torch.tensor(x))
    assert np.abs(q_ort - q_pt.numpy()).max() < 1e-5
    assert np.abs(p_ort - p_pt.numpy()).max() < 1e-5
    data = np.load(SHIPPED_DIR / policy.meta["training_data_file"])
    assert digest({k: data[k] for k in data.files}) == policy.meta["training_data_sha256"]
