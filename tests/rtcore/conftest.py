"""Fixtures for the rtcore suite: every test that takes `impl` runs over the compiled kernel
(`rtcore._tick`) and the reference twin (`rtcore.twin`), imported directly."""

import importlib

import numpy as np
import pytest

from rtcore.spec import Config, Fixture, Setpoints

IMPL_NAMES = ("rtcore._tick", "rtcore.twin")


def load_impl(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # an unbuilt checkout: test_loaded.py fails loudly instead
        pytest.skip(f"{name} not built: {exc}")


@pytest.fixture(params=IMPL_NAMES, ids=["kernel", "twin"])
def impl(request):
    return load_impl(request.param)


def grid_fixture(n_markers: int, n_zones: int, pitch_mm: float = 20.0) -> Fixture:
    """Markers on a grid, zones as consecutive blocks of markers."""
    cols = int(np.ceil(np.sqrt(n_markers)))
    idx = np.arange(n_markers)
    xy = np.stack([(idx % cols) * pitch_mm, (idx // cols) * pitch_mm], axis=1).astype(float)
    zone = (idx * n_zones) // n_markers
    return Fixture(xy, zone, np.full(n_zones, 1.0e4))


def make_kernel(impl, n_markers=16, n_zones=4, setpoints=None, **config):
    cfg = Config(n_markers=n_markers, n_zones=n_zones, **config)
    return impl.Kernel(cfg, grid_fixture(n_markers, n_zones), setpoints or Setpoints())


def run(kernel, temps, pressures=None):
    """Tick over rows of `temps` (ticks x N); pressures default to 300 kPa everywhere."""
    z = kernel.config.n_zones
    flags = []
    for k, row in enumerate(np.asarray(temps, dtype=float)):
        p = np.full(z, 300.0) if pressures is None else np.ascontiguousarray(pressures[k], dtype=float)
        flags.append(kernel.tick(np.ascontiguousarray(row), p))
    return flags


class Kit:
    """The helpers above, handed to tests as a fixture (the suite runs in importlib mode)."""

    grid_fixture = staticmethod(grid_fixture)
    make_kernel = staticmethod(make_kernel)
    run = staticmethod(run)
    load_impl = staticmethod(load_impl)


@pytest.fixture
def kit():
    return Kit
