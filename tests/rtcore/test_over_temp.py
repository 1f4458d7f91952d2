"""The maximum-safety temperature (Setpoints.temp_limit_degc) and real-time scheduling hygiene."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rtcore.spec import Config, Flag, Setpoints

pytestmark = pytest.mark.unit


def test_a_marker_at_the_limit_latches_the_safe_state_after_its_debounce(impl, kit):
    kernel = kit.make_kernel(impl, setpoints=Setpoints(temp_limit_degc=55.0))
    temps = np.full((10, 16), 30.0)
    kit.run(kernel, temps)
    hot = np.full(16, 30.0)
    hot[7] = 55.0  # a slow rise never trips the ΔT test: the absolute limit must
    debounce = kernel.config.over_temp_debounce_ticks
    for _ in range(debounce - 1):
        kernel.tick(hot, np.full(4, 300.0))
    assert not kernel.station_safe.any()
    kernel.tick(hot, np.full(4, 300.0))
    # marker 7 is on zone = station 1: that station alone is isolated, the line carries on
    assert not kernel.safe_state and list(kernel.station_safe) == [0, 1, 0, 0]
    assert kernel.station_cause[1] == Flag.OVER_TEMP and kernel.station_fault_marker[1] == 7
    assert list(kernel.relief2_kpa) == [0.0, kernel.setpoints.relief_max_kpa, 0.0, 0.0]
    assert list(kernel.station_coolant_lpm) == [0.0, kernel.setpoints.coolant_max_lpm, 0.0, 0.0]
    assert kernel.coolant_flow_lpm == kernel.setpoints.coolant_max_lpm
    assert list(kernel.current_limit_frac) == [1.0, 0.0, 1.0, 1.0]


def test_just_below_the_limit_or_an_implausible_reading_does_not_count(impl, kit):
    kernel = kit.make_kernel(impl, setpoints=Setpoints(temp_limit_degc=55.0))
    warm = np.full(16, 54.9)
    for _ in range(10):
        kernel.tick(warm, np.full(4, 300.0))
    assert not kernel.flags & Flag.OVER_TEMP and not kernel.station_safe.any()
    kernel.reset()


def test_the_limit_must_be_above_ambient_and_plausible():
    config = Config(n_markers=4, n_zones=1)
    with pytest.raises(ValueError, match="Setpoints.temp_limit_degc"):
        Setpoints(temp_limit_degc=20.0).check(config)
    with pytest.raises(ValueError, match="Setpoints.temp_limit_degc"):
        Setpoints(temp_limit_degc=200.0).check(config)


@pytest.mark.parametrize("module", ["rtcore._clock", "rtcore.twin_clock"])
def test_a_child_of_the_real_time_process_does_not_inherit_sched_fifo(module):
    code = (f"import os, {module} as c\n"
            "g = c.request_realtime(5, lock_memory=False)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os.write(1, str(os.sched_getscheduler(0)).encode()); os._exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "print('', g.fifo_granted, os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    child_policy, granted, parent_fifo = done.stdout.split()
    if granted != "True":
        pytest.skip("SCHED_FIFO not granted here (no CAP_SYS_NICE)")
    assert parent_fifo == "True" and int(child_policy) == 0  # SCHED_OTHER
