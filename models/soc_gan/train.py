"""Train the SOC GAN: alternating discriminator/generator steps until the objective settles.

Owns `train` (one run on the training cells of the fixed split; the test cells
are never touched), the physics fit (physics_fit.py: SOH estimate, relaxation map, ageing prior)
on the fitting cells, and the interval calibration on an inner validation split; what a run
takes and gives (`TrainConfig`, `TrainResult`) lives in result.py.
`python -m models.soc_gan.train` trains and exports to models/shipped/ (export.py). Run it with `nice -n 10`. Tests: tests/models/test_soc_gan.py.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch
from torch import nn

from edge.grading.soc_model import GENERATOR_INPUTS
from models.soc_gan.data import MIInfo, Split, Standardiser, load_split, mutual_information, normal_scores
from models.soc_gan.export import export
from models.soc_gan.gan import NOISE_DIM, Discriminator, Generator, GeneratorEnsemble, mi_penalty, sample_crps
from models.soc_gan.physics_fit import fit_physics, oof_physics_inputs, physics_inputs
from models.soc_gan.result import INTERVAL_LEVEL, TrainConfig, TrainResult

log = logging.getLogger(__name__)

PHYS_SOC = GENERATOR_INPUTS.index("phys_soc_pct")
ACTIVE_MI_NATS = 0.05  # features below this MI with SOC carry no constraint (noise level)


def predict_draws(generator: Generator, x_std: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """SOC draws in %, shape (n, draws), from the torch generator."""
    rng = np.random.default_rng(seed)
    n = len(x_std)
    noise = rng.standard_normal((n * draws, NOISE_DIM)).astype(np.float32)
    x = np.repeat(x_std.astype(np.float32), draws, axis=0)
    with torch.no_grad():
        out = generator(torch.from_numpy(x), torch.from_numpy(noise)).numpy()
    return out.reshape(n, draws)


def interval_scale_for(draws: np.ndarray, truth: np.ndarray, level: float = INTERVAL_LEVEL) -> float:
    """Factor s so that median +- s * (quantile half-widths) covers `level` of the truth."""
    med = np.median(draws, axis=1)
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=1)
    err = truth - med
    half = np.where(err >= 0, hi - med, med - lo)
    ratio = np.abs(err) / np.maximum(half, 1e-6)
    return float(np.quantile(ratio, level))


def _settled(history: list[dict], window: int, tol: float) -> bool:
    if len(history) < 2 * window:
        return False
    for key in ("d_loss", "g_adv"):
        recent = np.mean([h[key] for h in history[-window:]])
        before = np.mean([h[key] for h in history[-2 * window : -window]])
        if abs(recent - before) > tol:
            return False
    return True


def train(split: Split, config: TrainConfig = TrainConfig()) -> TrainResult:
    """Train `config.members` generators (seeds differ, same inner split); several are averaged.

    The inner validation cells (checkpoint choice, interval calibration) get physics inputs
    from a fit on the other training cells; those get out-of-fold physics inputs.
    """
    rng = np.random.default_rng(config.seed)
    n = len(split.x_train)
    val = np.zeros(n, dtype=bool)
    val[rng.permutation(n)[: int(round(config.val_fraction * n))]] = True
    fit_args = (split.x_train[~val], split.soh_train[~val], split.ageing_train[~val], split.soc_train_pct[~val])
    physics = fit_physics(*fit_args, seed=config.seed)
    inputs_fit = np.column_stack([split.x_train[~val], oof_physics_inputs(*fit_args, seed=config.seed)])
    inputs_val = np.column_stack([split.x_train[val], physics_inputs(physics, split.x_train[val])])
    mi = mutual_information(inputs_fit, GENERATOR_INPUTS, split.soh_train[~val], split.soc_train_pct[~val])
    scaler = Standardiser.fit(inputs_fit)
    x_fit, y_fit = scaler.apply(inputs_fit), split.soc_train_pct[~val]
    x_val, y_val = scaler.apply(inputs_val), split.soc_train_pct[val]
    skip = (PHYS_SOC, float(scaler.mean[PHYS_SOC]), float(scaler.std[PHYS_SOC])) if config.physics_skip else (-1, 0.0, 1.0)
    members, histories, reasons = [], [], []
    for k in range(config.members):
        torch.manual_seed(config.seed + 1000 * k)
        gen, history, reason = _fit_member(x_fit, y_fit, x_val, y_val, mi, config, skip)
        members.append(gen)
        histories.append(history)
        reasons.append(reason)
    gen = members[0] if len(members) == 1 else GeneratorEnsemble(members).eval()
    val_draws = predict_draws(gen, x_val, 64, seed=1)
    val_rmse = float(np.sqrt(np.mean((np.median(val_draws, axis=1) - y_val) ** 2)))
    return TrainResult(
        config=config, generator=gen, scaler=scaler, mi=mi, physics=physics,
        interval_scale=interval_scale_for(val_draws, y_val), val_rmse_pct=val_rmse,
        epochs=sum(len(h) for h in histories), stop_reason=" | ".join(reasons), history=histories[-1],
    )


def _fit_member(x_fit, y_fit, x_val, y_val, mi: MIInfo, config: TrainConfig, skip: tuple[int, float, float]):
    soc_mean, soc_std = float(y_fit.mean()), float(y_fit.std())
    gen = Generator(x_fit.shape[1], mi.weights, soc_mean, soc_std, config.hidden, *skip)
    disc = Discriminator(x_fit.shape[1], config.hidden)
    opt_g = torch.optim.AdamW(gen.parameters(), lr=config.lr_g, weight_decay=config.weight_decay)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=config.lr_d, weight_decay=config.weight_decay)
    sched_g = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, T_max=config.max_epochs, eta_min=config.lr_g / 50)
    bce = nn.BCEWithLogitsLoss()

    xt = torch.from_numpy(x_fit.astype(np.float32))
    yt = torch.from_numpy(((y_fit - soc_mean) / soc_std).astype(np.float32)).reshape(-1, 1)
    scores = torch.from_numpy(normal_scores(x_fit).astype(np.float32))
    knots = torch.sort(yt.reshape(-1)).values
    targets = torch.from_numpy(mi.targets_nats.astype(np.float32))
    active = (targets > ACTIVE_MI_NATS).float()

    history: list[dict] = []
    best = (np.inf, None, 0)
    stop_reason = "max_epochs"
    for epoch in range(config.max_epochs):
        sums = np.zeros(5)
        order = torch.randperm(len(xt))
        # The adversarial and MI terms ramp in once the CRPS term has found the right sign of
        # the SOC-voltage relation (MI is blind to sign; from a cold start it can lock onto
        # the mirrored relation).
        ramp = min(1.0, max(0.0, (epoch - config.warmup_start_epoch) / max(config.warmup_epochs, 1)))
        adv_weight, mi_weight = config.lambda_adv * ramp, config.lambda_mi * ramp
        for start in range(0, len(xt), config.batch):
            idx = order[start : start + config.batch]
            x, y, b = xt[idx], yt[idx], len(idx)
            # discriminator step: real pairs against one generated draw per row
            with torch.no_grad():
                fake = gen.forward_std(x, torch.randn(b, NOISE_DIM))
            d_loss = bce(disc(x, y), torch.full((b, 1), config.real_label)) + bce(disc(x, fake), torch.zeros(b, 1))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            # generator step: CRPS over m draws + adversarial (non-saturating) + MI constraint
            xr = x.repeat_interleave(config.draws, dim=0)
            draws = gen.forward_std(xr, torch.randn(b * config.draws, NOISE_DIM))
            crps = sample_crps(draws.reshape(b, config.draws), y)
            g_adv = bce(disc(xr, draws), torch.ones(b * config.draws, 1))
            pen = mi_penalty(draws.reshape(b, config.draws)[:, :1], scores[idx], knots, targets, active)
            g_loss = crps + adv_weight * g_adv + mi_weight * pen
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            sums += np.array([d_loss.item(), g_adv.item(), crps.item(), pen.item(), 1.0])
        sched_g.step()
        record = dict(zip(("d_loss", "g_adv", "crps_std", "mi_penalty"), (sums[:4] / sums[4]).tolist()))
        record["epoch"] = epoch
        if epoch % config.eval_every == 0 or epoch == config.max_epochs - 1:
            med = np.median(predict_draws(gen, x_val, config.eval_draws, seed=epoch), axis=1)
            record["val_rmse_pct"] = float(np.sqrt(np.mean((med - y_val) ** 2)))
            full_objective = epoch >= min(config.warmup_start_epoch + config.warmup_epochs, config.max_epochs - 1)
            if full_objective and record["val_rmse_pct"] < best[0]:
                best = (record["val_rmse_pct"], {k: v.clone() for k, v in gen.state_dict().items()}, epoch)
            log.info("epoch %d %s", epoch, {k: round(v, 4) for k, v in record.items()})
        history.append(record)
        if epoch >= config.min_epochs and _settled(history, config.settle_window, config.settle_tol):
            stop_reason = f"settled: D loss and G adversarial loss moved < {config.settle_tol} over {config.settle_window} epochs"
            break
    gen.load_state_dict(best[1])
    gen.eval()
    return gen, history, stop_reason + f"; {len(history)} epochs, kept the epoch-{best[2]} weights (best validation RMSE)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="folder for the .onnx and metadata (default models/shipped)")
    parser.add_argument("--lambda-mi", type=float, default=TrainConfig.lambda_mi)
    parser.add_argument("--lambda-adv", type=float, default=TrainConfig.lambda_adv)
    parser.add_argument("--max-epochs", type=int, default=TrainConfig.max_epochs)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--no-physics-skip", action="store_true", help="generator predicts SOC, not a correction to the physics posterior")
    parser.add_argument("--members", type=int, default=TrainConfig.members, help="generators averaged in the export")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    config = TrainConfig(seed=args.seed, lambda_mi=args.lambda_mi, lambda_adv=args.lambda_adv,
                         members=args.members, physics_skip=not args.no_physics_skip, max_epochs=args.max_epochs, min_epochs=min(TrainConfig.min_epochs, args.max_epochs))
    split = load_split()
    started = time.monotonic()
    result = train(split, config)
    log.info("trained in %.0f s, %d epochs, %s; val RMSE %.3f pp", time.monotonic() - started,
             result.epochs, result.stop_reason, result.val_rmse_pct)
    paths = export(result, split, args.out)
    log.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
