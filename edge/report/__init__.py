"""The batch report: one self-contained HTML page a person reads (no network, images inline).

`collect.py` reads a line's state dir (the supervisor's store, its alarms and its historian,
read through their own APIs) into one JSON-able batch; `plots.py` draws the stations' series
and the Gantt (wall clock on the axis, module labels, the robot's row); `html.py` renders the
page; `cli.py` is `discharge-edge report --state-dir D --out FILE.html [--json]`.
Tests: tests/edge/report/.
"""

from edge.report.collect import ReportError, collect_batch

__all__ = ["ReportError", "collect_batch", "render_html", "write_report"]


def __getattr__(name: str):
    """`render_html` and `write_report` on first use: html.py draws with matplotlib, which every
    other command (each imports this package's cli to register it) should not load."""
    if name in ("render_html", "write_report"):
        from edge.report import html

        return getattr(html, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
