"""pytest-benchmark of one tick at N = 16, 64, 256, 1024 marker points, kernel and twin.

Worst case: every marker is hot (ΔT ≥ threshold, rising 0.8 °C/s, under the GB 38031 limit),
so the mutation line, the radius and the correction run for every marker and zone. Measured
with `pytest -m bench --benchmark-enable`; no assertion on time (200 rounds each)."""

import numpy as np
import pytest

from rtcore.spec import Flag, Setpoints

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("n_markers", [16, 64, 256, 1024])
def test_tick(benchmark, impl, kit, n_markers):
    n_zones = max(1, n_markers // 16)
    k = kit.make_kernel(impl, n_markers, n_zones, Setpoints(delta_t_threshold_degc=1.0))
    rng = np.random.default_rng(0)
    temp = 25.0 + rng.normal(0, 0.01, n_markers)
    pressure = np.full(n_zones, 300.0)
    step = np.full(n_markers, 0.08)  # °C per tick
    for _ in range(70):
        temp += step
        pressure += rng.normal(0, 1.0, n_zones)
        k.tick(temp, pressure)
    assert k.flags & Flag.RELIEF_ACTIVE and not k.safe_state

    def one_tick():
        temp[:] += step  # keeps every marker hot
        return k.tick(temp, pressure)

    benchmark.extra_info.update(n_markers=n_markers, n_zones=n_zones, impl=impl.__name__)
    # a bounded number of rounds keeps the rising temperatures plausible (+16 °C at most)
    flags = benchmark.pedantic(one_tick, rounds=200, iterations=1, warmup_rounds=5)
    assert flags & Flag.RELIEF_ACTIVE and not k.safe_state
