"""The load the benchmarks put beside the loop: a process that burns a CPU, a thread that holds the
GIL (tools/bench_rtcore.py, tools/bench_soak.py). Tests: tests/tools/test_bench_rtcore.py."""

from __future__ import annotations

import threading


def burn_cpu(stop) -> None:
    """Spin until `stop` (a multiprocessing or threading Event) is set: one CPU busy."""
    while not stop.is_set():
        for _ in range(100_000):
            pass


def hold_gil(stop: threading.Event) -> None:
    """Pure Python until `stop`: holds the GIL except at the interpreter's switch interval."""
    counter = 0
    while not stop.is_set():
        counter += 1
