"""One asyncio event loop in a background thread, for the bench's protocol servers.

The servers (server_modbus.py, server_logix.py) and the fault proxy (server_faults.py) are
asyncio code; the plant and the tests are not. `LoopThread.call(coro)` runs a coroutine on the
loop and waits for its result. Tests: tests/edge/bus/test_contract.py (every bench server runs on it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # cancel what is left (server handlers) so the loop closes cleanly
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def call(self, coro: Coroutine, timeout_s: float = 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5.0)
