"""What one training run of the SOC GAN takes and gives: `TrainConfig`, `TrainResult` and the
interval level the calibration aims at.

Its own module so that export.py (which writes a result) and train.py (which makes one, then
calls export) import it and not each other. Tests: tests/models/test_soc_gan.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from models.soc_gan.data import MIInfo, Standardiser
from models.soc_gan.gan import Generator, GeneratorEnsemble
from models.soc_gan.physics_fit import Physics

INTERVAL_LEVEL = 0.8


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    lambda_adv: float = 0.005
    warmup_start_epoch: int = 20
    warmup_epochs: int = 40
    real_label: float = 0.9
    lambda_mi: float = 1.0
    hidden: int = 64
    max_epochs: int = 1000
    min_epochs: int = 800
    batch: int = 128
    draws: int = 8
    lr_g: float = 2e-3
    lr_d: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    settle_window: int = 50
    settle_tol: float = 0.02
    eval_every: int = 10
    eval_draws: int = 32
    members: int = 1
    physics_skip: bool = True

    def __post_init__(self) -> None:
        if self.lambda_adv < 0 or self.lambda_mi < 0:
            raise ValueError("TrainConfig: loss weights must be >= 0")
        if not 0 < self.val_fraction < 0.5 or self.draws < 2 or self.min_epochs > self.max_epochs:
            raise ValueError("TrainConfig: val_fraction in (0, 0.5), draws >= 2, min_epochs <= max_epochs")


@dataclass
class TrainResult:
    config: TrainConfig
    generator: Generator | GeneratorEnsemble
    scaler: Standardiser
    mi: MIInfo
    physics: Physics
    interval_scale: float
    val_rmse_pct: float
    epochs: int
    stop_reason: str
    history: list[dict] = field(default_factory=list)
