"""Export the trained Q-network to ONNX with the metadata edge/strategy/policy.py checks.

Owns `export_policy`: writes rl_policy.onnx (float32, opset 17, batch dimension dynamic),
rl_policy.pt (the torch state, for the parity test), rl_policy_transitions.npz (the training
transitions) and rl_policy.json (format, sha256 of the model and of the training data, input and
output names/shapes/dtypes/units, state layout, action names, prior temperature, training summary).
Tests: tests/models/test_rl_policy.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from edge.strategy.policy import FORMAT, METADATA_FILE, STATE_DIM, STATE_FEATURES
from edge.strategy.tree import ACTION_NAMES
from models.rl_policy.qnet import PolicyGraph, QNet
from models.rl_policy.transitions import digest


def export_policy(qnet: QNet, transitions: dict[str, np.ndarray], out_dir: Path, temperature: float,
                  training: dict) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = PolicyGraph(qnet, temperature).eval()
    onnx_path = out_dir / "rl_policy.onnx"
    torch.onnx.export(graph, (torch.zeros(1, STATE_DIM),), str(onnx_path), input_names=["state"],
                      output_names=["q_value", "prior"], opset_version=17, dynamo=False,
                      dynamic_axes={"state": {0: "batch"}, "q_value": {0: "batch"}, "prior": {0: "batch"}})
    torch.save({"state_dict": qnet.state_dict(), "hidden": qnet.body[0].out_features, "temperature": temperature},
               out_dir / "rl_policy.pt")
    np.savez_compressed(out_dir / "rl_policy_transitions.npz", **transitions)
    meta = {
        "format": FORMAT,
        "model_file": onnx_path.name,
        "model_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "training_data_sha256": digest(transitions),
        "training_data_file": "rl_policy_transitions.npz",
        "opset": 17,
        "inputs": [{"name": "state", "shape": ["batch", STATE_DIM], "dtype": "float32",
                    "units": "edge.strategy.policy.state_vector: tier features and strategy parameters, scaled"}],
        "outputs": [{"name": "q_value", "shape": ["batch", len(ACTION_NAMES)], "dtype": "float32",
                     "units": "expected discounted improvement of the score (cost units) per action"},
                    {"name": "prior", "shape": ["batch", len(ACTION_NAMES)], "dtype": "float32",
                     "units": "probability over actions = softmax(q_value / prior_temperature)"}],
        "state_features": [{"name": n, "unit": u, "scaling": sc} for n, u, sc in STATE_FEATURES],
        "actions": list(ACTION_NAMES),
        "prior_temperature": temperature,
        "training": training,
    }
    path = out_dir / METADATA_FILE
    path.write_text(json.dumps(meta, indent=1) + "\n")
    return path
