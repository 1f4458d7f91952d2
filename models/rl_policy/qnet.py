"""The Q-network and the exported graph (state -> q_value, prior = softmax(q / temperature)).

Owns `QNet`, `PolicyGraph`, `fit_bellman`. Tests: tests/models/test_rl_policy.py.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edge.strategy.policy import STATE_DIM
from edge.strategy.tree import ACTION_NAMES

N_ACTIONS = len(ACTION_NAMES)


class QNet(nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(STATE_DIM, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                  nn.Linear(hidden, N_ACTIONS))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.body(state)


class PolicyGraph(nn.Module):
    """What is exported: Q values and the prior the game tree uses."""

    def __init__(self, qnet: QNet, temperature: float):
        super().__init__()
        self.qnet = qnet
        self.temperature = temperature

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.qnet(state)
        return q, torch.softmax(q / self.temperature, dim=1)


def fit_bellman(qnet: QNet, s: np.ndarray, a: np.ndarray, r: np.ndarray, s2: np.ndarray, mask2: np.ndarray,
                gamma: float = 0.5, sweeps: int = 20, epochs: int = 60, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Fitted Q iteration: each sweep freezes a target copy, forms y = r + γ·max_{a' valid} Q_target(s', a')
    (0 when s' has no valid action), and regresses Q(s, a) on y. Returns the loss after each sweep."""
    torch.manual_seed(seed)
    S, A, R = torch.tensor(s), torch.tensor(a, dtype=torch.long), torch.tensor(r)
    S2, M2 = torch.tensor(s2), torch.tensor(mask2, dtype=torch.bool)
    opt = torch.optim.Adam(qnet.parameters(), lr=lr)
    losses = []
    for _ in range(sweeps):
        with torch.no_grad():
            q2 = qnet(S2).masked_fill(~M2, -torch.inf).max(dim=1).values
            y = R + gamma * torch.where(torch.isfinite(q2), q2, torch.zeros_like(q2))
        for _ in range(epochs):
            opt.zero_grad()
            loss = nn.functional.mse_loss(qnet(S).gather(1, A[:, None])[:, 0], y)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    return losses
