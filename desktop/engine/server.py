"""The embedded engine's WebSocket server: `/v1/realtime` on loopback, one RealtimeConnection per client.

The same server speaks Gemini Live at GEMINI_LIVE_PATH (and its v1alpha twin): there a GeminiLiveSession
translates between that dialect and a RealtimeConnection (see gemini_live_server).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import ssl
from http import HTTPStatus
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from typing import Callable

from .brain import Brain, RuleBrain
from .gemini_live_server import GEMINI_LIVE_PATHS, GeminiLiveSession, ResumptionStore
from .realtime_connection import RealtimeConnection
from .speech_models import SpeechModels

log = logging.getLogger(__name__)

#: Paths a client may connect on: the OpenAI SDK's `/v1/realtime`, plus `/` and `/realtime` for convenience, and
#: Azure OpenAI's (GA `/openai/v1/realtime?model=DEPLOYMENT`, preview `/openai/realtime?api-version=…&deployment=…`),
#: so that Parley's Azure provider can be tried against the engine (`--provider azure --url ws://127.0.0.1:PORT/…`).
REALTIME_PATHS = ("/v1/realtime", "/realtime", "/")
AZURE_PATHS = ("/openai/v1/realtime", "/openai/realtime")
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
        gemini_session_seconds: float | None = None,
    ) -> None:
        self.speculate = speculate
        #: Gemini Live: after this long a session is sent goAway and closed 5 s later (None: never); a test
        #: hook for clients that reconnect with session resumption.
        self.gemini_session_seconds = gemini_session_seconds
        #: Gemini Live session resumption: the conversations behind the handles given out.
        self.gemini_resumption = ResumptionStore()
        self.models = models or SpeechModels()
        self.token = token
        #: One brain per connection (the built-in responder keeps per-conversation history).
        self.brain_factory: Callable[[], Brain] = brain_factory or RuleBrain
        self.connections: set[RealtimeConnection] = set()
        self._server: Server | None = None

    @staticmethod
    def _path(request: Request) -> str:
        return request.path.split("?", 1)[0].rstrip("/") or "/"

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = self._path(request)
        gemini = path in GEMINI_LIVE_PATHS
        azure = path in AZURE_PATHS
        if path not in REALTIME_PATHS and not gemini and not azure:
            return connection.respond(HTTPStatus.NOT_FOUND, "Parley engine: connect to /v1/realtime (OpenAI Realtime) or "
                                      f"{GEMINI_LIVE_PATHS[0]} (Gemini Live)\n")
        if self.token:
            auth = request.headers.get("Authorization", "")
            offered = [auth[7:] if auth.lower().startswith("bearer ") else ""]
            if gemini:  # Gemini clients send the key as x-goog-api-key, or as ?key= in the URL
                offered.append(request.headers.get("x-goog-api-key", ""))
                query = request.path.split("?", 1)[1] if "?" in request.path else ""
                offered.extend(parse_qs(query).get("key", []))
            if azure:  # Azure OpenAI clients send the key as api-key
                offered.append(request.headers.get("api-key", ""))
            if not any(hmac.compare_digest(given.encode(), self.token.encode()) for given in offered if given):
                what = ("an API key (x-goog-api-key or ?key=) or bearer token" if gemini else
                        "an api-key header or bearer token" if azure else "a valid bearer token")
                return connection.respond(HTTPStatus.UNAUTHORIZED, f"Parley engine: {what} is required\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and self._path(ws.request) in GEMINI_LIVE_PATHS:
            await self._handle_gemini(ws)
            return
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

    async def _handle_gemini(self, ws: ServerConnection) -> None:
        async def close(code: int, reason: str) -> None:
            await ws.close(code, reason)

        session = GeminiLiveSession(ws.send, close, self.models, brain=self.brain_factory(), speculate=self.speculate,
                                    store=self.gemini_resumption, session_seconds=self.gemini_session_seconds)
        self.connections.add(session.conn)
        log.info("Gemini Live client connected from %s", ws.remote_address)
        await session.start()
        try:
            async for message in ws:
                await session.handle_message(message)
        except ConnectionClosed:
            pass
        finally:
            await session.close()
            self.connections.discard(session.conn)
            log.info("Gemini Live client disconnected")

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> int:
        """Start listening; returns the port (useful with port 0). With `ssl_context` the server speaks TLS
        (wss://): the google-genai SDK connects only that way."""
        self.models.start_loading()
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=ssl_context,
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
