"""A TCP proxy in front of a bench server that makes the network misbehave on request.

Faults a real line shows between the IPC and the PLC: answers that come late (`delay_s`), a
link that is cut for a while (`cut()` drops every connection and refuses new ones until
`restore()`). The PLC restart fault is the server's own (stop and start on the same port).
Tests: tests/edge/bus/test_contract.py (through the bus's conftest).
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


class FaultProxy:
    """Listens on host:port (0 = any free port) and relays to the upstream server."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = 0.0  # added before every chunk the server sends back
        self.is_cut = False
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.is_cut = True
        self.drop_connections()

    def restore(self) -> None:
        self.is_cut = False

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, client_reader, client_writer) -> None:
        if self.is_cut:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()  # the PLC is down: so is the link
            return
        self._writers.update((client_writer, server_writer))
        try:
            await asyncio.gather(
                self._pump(client_reader, server_writer, delay=False),
                self._pump(server_reader, client_writer, delay=True),
            )
        finally:
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pump(self, reader, writer, delay: bool) -> None:
        try:
            while data := await reader.read(65536):
                if delay and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if self.is_cut:
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()  # one side gone: close the other so neither pump waits forever
