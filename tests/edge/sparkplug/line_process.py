"""A demo-like line in a process of its own for the Sparkplug tests: a LineHub fed a snapshot every
0.1 s (every station changing), published by start_sparkplug until SIGTERM (then NDEATH).

    python -m tests.edge.sparkplug.line_process URL LINE STATIONS PRIMARY_HOST
"""

from __future__ import annotations

import signal
import sys
import threading

from edge.lineview.model import LineHub
from edge.sparkplug.publisher import start_sparkplug
from tests.edge.sparkplug.lines import line_snapshot


def main(url: str, line: str, stations: int, host: str) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hub = LineHub()
    handle = start_sparkplug(hub, url, "plant", primary_host=host)
    step = 0
    while not stop.wait(0.1) and step < 900:
        hub.publish(line_snapshot(step, line=line, stations=stations))
        step += 1
    handle.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
