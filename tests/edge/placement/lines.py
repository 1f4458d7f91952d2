"""Lines for the assignment's tests and benchmarks: a channel, and a seeded random line."""

from __future__ import annotations

import random

from edge.placement.assign import ChannelLoad


def ch(name, stations, tier=None, busy=None, usable=None) -> ChannelLoad:
    n = len(stations)
    return ChannelLoad(name, tuple(stations), tier, tuple(busy or (0.0,) * n), tuple(usable or (True,) * n))


def random_line(seed, n_channels=2, per_channel=4, n_batteries=40, n_tiers=4):
    """Channels of `per_channel` stations, all free; batteries of `n_tiers` tiers, each tier's
    durations around its own base (1800-5400 s, +-15 %), the tiers' shares skewed."""
    rng = random.Random(seed)
    chans = [ch(f"C{c}", range(c * per_channel, (c + 1) * per_channel)) for c in range(n_channels)]
    base = {t: rng.uniform(1800, 5400) for t in range(1, n_tiers + 1)}
    weights = [rng.random() ** 2 + 0.05 for _ in base]
    waiting: dict[int, list[float]] = {}
    for _ in range(n_batteries):
        t = rng.choices(list(base), weights)[0]
        waiting.setdefault(t, []).append(base[t] * rng.uniform(0.85, 1.15))
    return chans, waiting
