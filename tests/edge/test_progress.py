"""edge/progress.py: the bar on stderr, quiet under --json unless asked, and a time budget's bar."""

import argparse
import io

import pytest

from edge.progress import add_progress_argument, progress_enabled, steps, time_budget

pytestmark = pytest.mark.unit


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    add_progress_argument(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("argv, shown", [
    ((), True), (("--json",), False), (("--json", "--progress"), True), (("--no-progress",), False),
])
def test_shown_by_default_quiet_under_json_unless_asked(argv, shown):
    assert progress_enabled(_args(*argv)) is shown


def test_a_command_without_json_or_progress_shows_it():
    assert progress_enabled(argparse.Namespace()) is True


def test_steps_writes_the_count_and_the_total_to_its_file():
    out = io.StringIO()
    with steps(4, "grading", unit="row", file=out) as bar:
        for _ in range(4):
            bar.update()
    text = out.getvalue()
    assert "grading" in text and "4/4" in text and "row" in text


def test_a_disabled_bar_writes_nothing_and_still_counts():
    out = io.StringIO()
    with steps(3, "quiet", enabled=False, file=out) as bar:
        bar.update(2)
        bar.set_postfix_str("ignored")
    assert out.getvalue() == ""


def test_a_time_budget_ends_when_its_work_ends_and_shows_the_time_taken():
    out = io.StringIO()
    with time_budget(600.0, "schedule best", file=out, tick_s=0.01) as bar:
        total = sum(range(100_000))  # work far shorter than its budget
    assert total > 0
    assert bar.n < 600.0  # stopped with the work, not at the budget
    text = out.getvalue()
    assert "schedule best" in text and "/600.0 s" in text and "left" in text


def test_a_disabled_time_budget_starts_no_thread_and_writes_nothing():
    import threading

    out = io.StringIO()
    before = threading.active_count()
    with time_budget(5.0, "quiet", enabled=False, file=out):
        assert threading.active_count() == before
    assert out.getvalue() == ""


def test_tqdm_is_imported_at_the_first_bar_not_with_the_module():
    import subprocess
    import sys

    probe = ("import sys\n"
             "import edge.progress as progress\n"
             "before = 'tqdm' in sys.modules\n"
             "with progress.steps(3, 'x', enabled=False) as bar:\n"
             "    bar.update()\n"
             "print(before, 'tqdm' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
