"""One helper for the tests of the line's outside (the page, OPC UA): a client on a thread of its
own while the test's thread runs the supervisor's scans (the store's SQLite connections belong to
it), answering queued commands at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def drive_while_scanning(scan: Callable[[], None], hub, work: Callable[[], Any], *, max_scans: int,
                         scan_wait_s: float, name: str = "client") -> Any:
    """Run `work()` on a thread while calling `scan()` here (`scan_wait_s` between scans, at once
    when `hub` has a command); returns its result or raises its error."""
    out: dict = {}

    def run():
        try:
            out["result"] = work()
        except BaseException as exc:  # noqa: BLE001 (raised again in the test's thread)
            out["error"] = exc

    thread = threading.Thread(target=run, name=name)
    thread.start()
    for _ in range(max_scans):
        scan()
        if hub.wait_for_command(scan_wait_s):
            continue
        if not thread.is_alive():
            break
    thread.join(30)
    assert not thread.is_alive(), "the client did not finish"
    if "error" in out:
        raise out["error"]
    return out.get("result")
