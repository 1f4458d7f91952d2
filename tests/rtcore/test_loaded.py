"""The compiled extension really loaded (unless the environment forces the twin)."""

import importlib
import os

import pytest

import rtcore

pytestmark = pytest.mark.unit


def test_extension_really_loaded():
    if os.environ.get(rtcore.FORCE_TWIN_ENV, "") not in ("", "0"):
        assert rtcore.COMPILED is False and rtcore.impl.__name__ == "rtcore.twin"
        pytest.skip(f"{rtcore.FORCE_TWIN_ENV} forces the twin")
    assert rtcore.COMPILED is True, "rtcore._tick is not built: run `make build`"
    tick = importlib.import_module("rtcore._tick")
    clock = importlib.import_module("rtcore._clock")
    for module in (tick, clock):
        assert module.__file__.endswith(".so"), module.__file__
    assert rtcore.Kernel is tick.Kernel
    assert rtcore.sleep_until_ns is clock.sleep_until_ns is tick.sleep_until_ns
    assert type(tick.Kernel.tick).__name__ != "function"  # compiled, not a Python function


@pytest.mark.parametrize("name", ["Kernel", "Periodic", "monotonic_ns", "sleep_until_ns",
                                  "request_realtime"])
def test_same_names_in_kernel_and_twin(kit, name):
    compiled, twin = kit.load_impl("rtcore._tick"), kit.load_impl("rtcore.twin")
    assert hasattr(compiled, name) and hasattr(twin, name)
    assert name in compiled.__all__ and name in twin.__all__


def test_same_kernel_attributes(kit):
    compiled, twin = kit.load_impl("rtcore._tick"), kit.load_impl("rtcore.twin")
    a, b = kit.make_kernel(compiled, 4, 2), kit.make_kernel(twin, 4, 2)
    public = {n for n in dir(b) if not n.startswith("_")}
    assert public <= {n for n in dir(a) if not n.startswith("_")}
    snap_a, snap_b = rtcore.snapshot(a), rtcore.snapshot(b)
    assert snap_a == snap_b and snap_a["tick_count"] == 0
