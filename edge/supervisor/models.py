"""The line's two ONNX models, loaded once at start: the SOC GAN (grading) and the RL policy
(the game tree's prior), from the line file's model folders (default models/shipped).

Owns `load_line_models(line) -> LineModels` and `ModelRefused`. A broken model (metadata, the
.onnx's sha256, the session's inputs and outputs: checked by `SocModel.load` / `RlPolicy.load`)
is refused with a message naming the folder and the cause; the supervisor does not start
without both. `LineModels.versions` (format, sha256, folder per model) goes into every battery
record. Tests: tests/edge/supervisor/test_flow.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.grading.soc_model import ModelIntegrityError, SocModel
from edge.strategy.policy import RlPolicy


class ModelRefused(RuntimeError):
    """A model folder that does not load; the message names the model, the folder and why."""


@dataclass(frozen=True)
class LineModels:
    soc: SocModel
    policy: RlPolicy
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _version(meta: dict, folder: Path) -> dict[str, Any]:
    return {"format": str(meta.get("format", "")), "sha256": str(meta.get("model_sha256", "")),
            "model_file": str(meta.get("model_file", "")), "folder": str(folder)}


def load_line_models(soc_gan_dir: Path, rl_policy_dir: Path) -> LineModels:
    """Both models, or `ModelRefused` naming the broken one (the first that fails)."""
    try:
        soc = SocModel.load(soc_gan_dir)
    except (ModelIntegrityError, OSError, ValueError, KeyError) as exc:
        raise ModelRefused(f"SOC model in {soc_gan_dir} refused: {exc}") from exc
    try:
        policy = RlPolicy.load(rl_policy_dir)
    except (ModelIntegrityError, OSError, ValueError, KeyError) as exc:
        raise ModelRefused(f"RL policy in {rl_policy_dir} refused: {exc}") from exc
    versions = {"soc_gan": _version(soc.meta, Path(soc_gan_dir)), "rl_policy": _version(policy.meta, Path(rl_policy_dir))}
    return LineModels(soc, policy, versions)
