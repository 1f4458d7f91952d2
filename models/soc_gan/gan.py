"""The conditional GAN's networks and losses (definitions in MODEL_CARD.md).

Owns `Generator` (standardised features x MI weights, noise -> SOC in %), `Discriminator`
((standardised features, standardised SOC) -> logit), the sample CRPS (the supervised term),
and the MI constraint: a squared hinge when the normal-score Gaussian MI between generated SOC
and a feature falls below the lower bound measured on the true SOC.
Tests: tests/models/test_soc_gan.py.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_DIM = 4


class Generator(nn.Module):
    """G(x, z) = base(x) + soc_std * f([w * x, z]); x standardised, z ~ N(0, I).

    base(x) is `soc_mean`, or with `skip` the physics posterior mean (input column `skip`,
    un-standardised with `skip_mean`, `skip_std`): the network then learns a correction and a
    spread around the physics estimate instead of SOC from scratch.
    """

    def __init__(self, n_features: int, weights, soc_mean: float, soc_std: float, hidden: int = 64,
                 skip: int = -1, skip_mean: float = 0.0, skip_std: float = 1.0):
        super().__init__()
        self.register_buffer("mi_weights", torch.as_tensor(weights, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("soc_mean", torch.tensor(float(soc_mean)))
        self.register_buffer("soc_std", torch.tensor(float(soc_std)))
        self.skip = int(skip)
        self.register_buffer("skip_mean", torch.tensor(float(skip_mean)))
        self.register_buffer("skip_std", torch.tensor(float(skip_std)))
        self.net = nn.Sequential(
            nn.Linear(n_features + NOISE_DIM, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )

    def forward_std(self, features_std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """SOC in standardised units, shape (n, 1)."""
        out = self.net(torch.cat([features_std * self.mi_weights, noise], dim=1))
        if self.skip >= 0:
            base_pct = features_std[:, self.skip : self.skip + 1] * self.skip_std + self.skip_mean
            out = out + (base_pct - self.soc_mean) / self.soc_std
        return out

    def forward(self, features_std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """SOC in percent, shape (n, 1): the exported graph."""
        return self.soc_mean + self.soc_std * self.forward_std(features_std, noise)


class GeneratorEnsemble(nn.Module):
    """The mean of several generators given the same features and noise (one exported graph)."""

    def __init__(self, members: list[Generator]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.register_buffer("mi_weights", members[0].mi_weights.clone())

    def forward(self, features_std: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(features_std, noise) for m in self.members]).mean(dim=0)


def build_generator(n_features: int, hidden: int, members: int, skip: int = -1) -> Generator | GeneratorEnsemble:
    """An untrained generator of the shipped shape, to load a saved state into."""
    gens = [Generator(n_features, [1.0] * n_features, 0.0, 1.0, hidden, skip) for _ in range(members)]
    return gens[0] if members == 1 else GeneratorEnsemble(gens)


class Discriminator(nn.Module):
    def __init__(self, n_features: int, hidden: int = 64):
        super().__init__()
        # Spectral normalisation keeps the discriminator Lipschitz, so that its gradient
        # stays informative instead of saturating once it separates the pairs.
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Linear(n_features + 1, hidden)),
            nn.LeakyReLU(0.2),
            sn(nn.Linear(hidden, hidden)),
            nn.LeakyReLU(0.2),
            sn(nn.Linear(hidden, 1)),
        )

    def forward(self, features_std: torch.Tensor, soc_std: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([features_std, soc_std], dim=1))


def sample_crps(draws: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CRPS of the empirical distribution of `draws` (n, m) against `target` (n, 1).

    CRPS = E|G - y| - 1/2 E|G - G'| (the unbiased pairwise form over m draws); a proper scoring
    rule, so it rewards both accuracy and a spread that matches the real uncertainty.
    """
    m = draws.shape[1]
    accuracy = (draws - target).abs().mean()
    spread = (draws.unsqueeze(2) - draws.unsqueeze(1)).abs().sum(dim=(1, 2)) / (m * (m - 1))
    return accuracy - 0.5 * spread.mean()


def ecdf_normal_scores(values: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Phi^-1 of a piecewise-linear ECDF through sorted `knots` (differentiable almost everywhere)."""
    n = knots.numel()
    levels = torch.arange(1, n + 1, dtype=values.dtype) / (n + 1.0)
    idx = torch.searchsorted(knots, values.detach().contiguous()).clamp(1, n - 1)
    lo, hi = knots[idx - 1], knots[idx]
    frac = (values - lo) / (hi - lo).clamp_min(1e-9)
    u = levels[idx - 1] + frac * (levels[idx] - levels[idx - 1])
    u = u.clamp(1.0 / (n + 1.0), n / (n + 1.0))
    return torch.special.ndtri(u)


def gaussian_mi_columns(scores: torch.Tensor, feature_scores: torch.Tensor) -> torch.Tensor:
    """Per feature: -1/2 log(1 - r^2), r the batch correlation of normal scores."""
    a = scores - scores.mean()
    b = feature_scores - feature_scores.mean(dim=0, keepdim=True)
    r = (a * b).sum(dim=0) / (a.pow(2).sum().sqrt() * b.pow(2).sum(dim=0).sqrt() + 1e-12)
    return -0.5 * torch.log1p(-(r * r).clamp(max=0.9999))


def mi_penalty(
    generated_std: torch.Tensor, feature_scores: torch.Tensor, knots: torch.Tensor, targets: torch.Tensor,
    active: torch.Tensor,
) -> torch.Tensor:
    """Mean over active features of relu(I*_j - I_j(G))^2, I* the measured lower bound (nats)."""
    scores = ecdf_normal_scores(generated_std.reshape(-1), knots).reshape(-1, 1)
    shortfall = torch.relu(targets - gaussian_mi_columns(scores, feature_scores))
    return (shortfall.pow(2) * active).sum() / active.sum().clamp_min(1.0)
