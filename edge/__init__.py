"""discharge-edge supervisor: tag bus and PLC drivers, grading, strategy, scheduling, CLI.

`edge` may import `rtcore`, never `models` or `tools`. A library logger with a NullHandler:
the command line (edge/cli.py) decides where logs go (standard error).
"""

import logging
from pathlib import Path

logging.getLogger(__name__).addHandler(logging.NullHandler())

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package runs from (editable install): plc_tags/, models/ live here."""
