"""A loopback TCP proxy that can cut every connection through it at any moment (the drop test's 'network')."""

from __future__ import annotations

import asyncio


class CuttingProxy:
    """Listens on 127.0.0.1 and forwards each connection to `upstream_port` on 127.0.0.1.

    `cut()` aborts every open connection on both sides at once, as a lost network would (no close frame).
    `refuse = True` makes new connections fail at once (the network is still down).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port: int | None = None
        self.refuse = False
        self.connections = 0
        self.cuts = 0
        self._server: asyncio.base_events.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.opened = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._pairs.append(pair)
        self.opened.set()
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            if pair in self._pairs:
                self._pairs.remove(pair)
            for w in pair:
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def cut(self) -> int:
        """Abort every open connection; returns how many were cut."""
        pairs, self._pairs = self._pairs, []
        for client_side, upstream_side in pairs:
            client_side.transport.abort()
            upstream_side.transport.abort()
        self.opened.clear()
        if pairs:
            self.cuts += 1
        return len(pairs)

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
