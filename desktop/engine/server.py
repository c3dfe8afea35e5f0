"""The embedded engine's WebSocket server: `/v1/realtime` on loopback, one RealtimeConnection per client."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from typing import Callable

from .brain import Brain, RuleBrain
from .realtime_connection import RealtimeConnection
from .speech_models import SpeechModels

log = logging.getLogger(__name__)

#: Paths a client may connect on: the OpenAI SDK's `/v1/realtime`, plus `/` and `/realtime` for convenience.
REALTIME_PATHS = ("/v1/realtime", "/realtime", "/")
#: Large enough for a big image in `conversation.item.create`.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EngineServer:
    def __init__(
        self,
        models: SpeechModels | None = None,
        token: str | None = None,
        brain_factory: Callable[[], Brain] | None = None,
        speculate: bool = True,
    ) -> None:
        self.speculate = speculate
        self.models = models or SpeechModels()
        self.token = token
        #: One brain per connection (the built-in responder keeps per-conversation history).
        self.brain_factory: Callable[[], Brain] = brain_factory or RuleBrain
        self.connections: set[RealtimeConnection] = set()
        self._server: Server | None = None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0].rstrip("/") or "/"
        if path not in REALTIME_PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "Parley engine: connect to /v1/realtime\n")
        if self.token:
            auth = request.headers.get("Authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return connection.respond(HTTPStatus.UNAUTHORIZED, "Parley engine: a valid bearer token is required\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = RealtimeConnection(ws.send, self.models, brain=self.brain_factory(), speculate=self.speculate)
        self.connections.add(conn)
        log.info("client connected from %s", ws.remote_address)
        await conn.start()
        try:
            async for message in ws:
                await conn.handle_message(message)
        except ConnectionClosed:
            pass
        finally:
            await conn.close()
            self.connections.discard(conn)
            log.info("client disconnected")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start listening; returns the port (useful with port 0)."""
        self.models.start_loading()
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._check_request,
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=20,
            ping_timeout=60,
        )
        sock = next(iter(self._server.sockets))
        return sock.getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.models.shutdown()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()
