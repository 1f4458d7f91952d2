"""The batch report: one self-contained HTML page a person reads (no network, images inline).

`collect.py` reads a line's state dir (the supervisor's store, its alarms and its historian,
read through their own APIs) into one JSON-able batch; `plots.py` draws the stations' series
and the Gantt (wall clock on the axis, module labels, the robot's row); `html.py` renders the
page; `cli.py` is `discharge-edge report --state-dir D --out FILE.html [--json]`.
Tests: tests/edge/report/.
"""

from edge.report.collect import ReportError, collect_batch
from edge.report.html import render_html, write_report

__all__ = ["ReportError", "collect_batch", "render_html", "write_report"]
