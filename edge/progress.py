"""Progress of long commands on standard error, with tqdm: a count of steps, or a time budget.

Owns the one rule every command keeps (edge/cli.py: stdout carries the result, stderr the rest):
a progress bar goes to stderr, is shown by default, and is quiet under `--json` unless the user
asks with `--progress` (`--no-progress` silences it always). Commands call three things:

- `add_progress_argument(parser)`: adds `--progress/--no-progress`.
- `progress_enabled(args)`: True/False by the rule above (`args.json` read when present).
- `steps(total, desc, enabled=...)`: a context manager giving a bar with `.update(n=1)` and
  `.set_postfix_str(text)`; the time left is tqdm's estimate from the rate so far.
- `time_budget(budget_s, desc, enabled=...)`: for work bounded by a deadline (a solver's time
  limit): a thread moves the bar with the clock and stops it when the block ends (early, when the
  work finishes first), so the time left is the budget's.

A disabled bar is a no-op object of the same shape, so callers never branch.
Tests: tests/edge/test_progress.py.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["add_progress_argument", "progress_enabled", "steps", "time_budget"]

MIN_INTERVAL_S = 0.5
"""Redraw at most twice a second (a log file behind stderr gets few lines)."""
BUDGET_TICK_S = 0.25


@functools.cache
def _bar_class() -> type:
    """tqdm without its monitor thread (a thread left behind outlives the command's work; the
    bars here are redrawn by their own updates or by `time_budget`'s clock). tqdm is imported
    here, at the first bar, not with this module: 20 ms a command that shows none pays (grade --json)."""
    from tqdm import tqdm

    class _Bar(tqdm):
        monitor_interval = 0

    return _Bar


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress and time left on stderr (default: shown, but not with --json)")


def progress_enabled(args: argparse.Namespace) -> bool:
    """`--progress`/`--no-progress` when given, else shown unless `--json`."""
    asked = getattr(args, "progress", None)
    if asked is not None:
        return bool(asked)
    return not getattr(args, "json", False)


def _bar(total: float | None, desc: str, unit: str, enabled: bool, file: IO[str] | None, **kwargs: Any) -> tqdm:
    return _bar_class()(total=total, desc=desc, unit=unit, disable=not enabled, file=file or sys.stderr, leave=True,
                        mininterval=MIN_INTERVAL_S, dynamic_ncols=True, **kwargs)


@contextmanager
def steps(total: int | None, desc: str, *, unit: str = "step", enabled: bool = True,
          file: IO[str] | None = None) -> Iterator[tqdm]:
    """A bar of `total` steps (None: a count without an end); closed on exit."""
    bar = _bar(total, desc, unit, enabled, file)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def time_budget(budget_s: float, desc: str, *, enabled: bool = True, file: IO[str] | None = None,
                tick_s: float = BUDGET_TICK_S) -> Iterator[tqdm]:
    """A bar over `budget_s` seconds moved by a clock thread while the block runs; at the end the
    bar shows the time taken (the work may finish before its budget)."""
    bar = _bar(round(budget_s, 1), desc, "s", enabled, file,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [left {remaining}]")
    if not enabled:
        try:
            yield bar
        finally:
            bar.close()
        return
    done = threading.Event()
    started = time.monotonic()

    def advance() -> None:
        while not done.wait(tick_s):
            elapsed = min(time.monotonic() - started, budget_s)
            bar.update(elapsed - bar.n)

    clock = threading.Thread(target=advance, name="progress-clock", daemon=True)
    clock.start()
    try:
        yield bar
    finally:
        done.set()
        clock.join()
        bar.update(min(time.monotonic() - started, budget_s) - bar.n)
        bar.close()
