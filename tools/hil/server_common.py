"""What every bench PLC server shares: a loop thread, a fault proxy in front, plant-side access.

A bench server serves one tag map on 127.0.0.1. The plant reads and writes its tags in
engineering units with `get`/`set` (no write limits: a sensor may read out of range). Faults:
`delay_s` (slow answers), `cut()`/`restore()` (the link), `restart()` (the PLC restarts; its
values are retained, as a PLC retains its tags). `tag_map` is the served map aimed at the
proxy's port: hand it to the controller. `serve_realtime(priority)` lets the server's thread (the
protocol server and the proxy) answer at SCHED_FIFO: a bench sharing two cores with a CPU hog
still answers as a PLC does, on its own CPU (tools/bench_soak.py, `hil serve --priority`).
`close()` is idempotent (`closed`): the bench closes its server when the plant dies, the command
line again on its way out. Tests: tests/tools/hil/test_server_modbus_limits.py,
tests/edge/bus/test_contract.py, tests/tools/hil/test_bench_any_map.py.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod

from edge.tagmap import TagMap
from edge.tagmap.model import Value
from tools.hil.server_faults import FaultProxy
from tools.hil.server_loop import LoopThread

log = logging.getLogger(__name__)


class BenchPlcServer(ABC):
    protocol_name = "?"

    def __init__(self, tag_map: TagMap, host: str = "127.0.0.1", port: int = 0):
        self.served_map = tag_map
        self.host = host
        self._closed = False
        self._close_lock = threading.Lock()
        self._loop = LoopThread(f"bench-{self.protocol_name}-{tag_map.name}")
        self._inner_port = 0
        try:
            self._loop.call(self._start_inner())
            self._proxy = FaultProxy(host, self._inner_port)
            self._loop.call(self._proxy.start(host, port))
        except BaseException:
            self._loop.stop()
            raise
        self.tag_map = tag_map.with_endpoint(host, self._proxy.port)

    @property
    def port(self) -> int:
        return self._proxy.port

    @property
    def direct_tag_map(self) -> TagMap:
        """The map aimed at the protocol server itself, past the fault proxy (for benchmarks)."""
        return self.served_map.with_endpoint(self.host, self._inner_port)

    def serve_realtime(self, priority: int) -> bool:
        """Run the server's thread at SCHED_FIFO `priority` (1..99; keep it below the controller's
        loop). True when granted; False (logged) when the system refuses."""
        async def raise_priority() -> bool:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # this thread only
            except OSError as exc:
                log.warning("bench %s server: SCHED_FIFO %d refused: %s", self.protocol_name, priority, exc)
                return False
            return True

        return bool(self._loop.call(raise_priority()))

    # -- faults -----------------------------------------------------------------------------
    @property
    def delay_s(self) -> float:
        return self._proxy.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self._proxy.delay_s = value

    def cut(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._proxy.cut)

    def restore(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._proxy.restore)

    def stop_plc(self) -> None:
        """The PLC goes away (power, crash): connections drop, new ones are refused."""
        self._loop.call(self._stop_inner())
        # asyncio's Server.close() stops listening but leaves accepted connections open; a PLC
        # that restarts drops them, so drop them at the proxy that carries them.
        self._loop.loop.call_soon_threadsafe(self._proxy.drop_connections)

    def start_plc(self) -> None:
        self._loop.call(self._start_inner(self._inner_port))

    def restart(self) -> None:
        self.stop_plc()
        self.start_plc()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop serving: the proxy and the protocol server close, the loop stops. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._loop.call(self._proxy.close())
            self._loop.call(self._stop_inner())
        finally:
            self._loop.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plant side -------------------------------------------------------------------------
    def get_many(self, names: list[str]) -> dict[str, Value]:
        return {name: self.get(name) for name in names}

    def set_many(self, values: dict[str, Value]) -> None:
        for name, value in values.items():
            self.set(name, value)

    @abstractmethod
    def get(self, name: str) -> Value:
        """A tag's value in engineering units."""

    @abstractmethod
    def set(self, name: str, value: Value) -> None:
        """Set a tag from the plant side, in engineering units."""

    @abstractmethod
    async def _start_inner(self, port: int = 0) -> None:
        """Start the protocol server on 127.0.0.1:port and set `_inner_port`."""

    @abstractmethod
    async def _stop_inner(self) -> None:
        """Stop the protocol server, dropping its connections."""
