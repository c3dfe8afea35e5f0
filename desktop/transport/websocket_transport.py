"""The WebSocket adapter: connect, send, and a receive loop on the running asyncio (qasync) loop."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
PING_INTERVAL_S = 10.0
PING_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and how to authenticate. `label` is what the status bar shows."""

    url: str
    label: str
    api_key: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: How the key is sent (providers.AUTH_STYLES): "bearer", "api-key" (Azure), "x-goog-api-key" (Gemini), "none".
    auth: str = "bearer"

    def headers(self) -> list[tuple[str, str]]:
        headers = list(self.extra_headers)
        if self.api_key and self.auth == "bearer":
            headers.append(("Authorization", f"Bearer {self.api_key}"))
        elif self.api_key and self.auth in ("api-key", "x-goog-api-key"):
            headers.append((self.auth, self.api_key))
        return headers

    @property
    def loopback(self) -> bool:
        """Whether the server is on this machine (the embedded engine, or a local `--url`)."""
        host = (urlsplit(self.url).hostname or "").lower()
        return host in ("127.0.0.1", "localhost", "::1")

    def __repr__(self) -> str:  # never print the key
        return f"Endpoint(url={self.url!r}, label={self.label!r}, api_key={'***' if self.api_key else None})"


class ConnectError(Exception):
    """Connecting failed; the message is written for the user."""


class WebSocketTransport:
    """One connection. `on_message` gets each text message; `on_closed` the close reason once."""

    def __init__(
        self,
        endpoint: Endpoint,
        on_message: Callable[[str], None],
        on_closed: Callable[[str], None],
    ) -> None:
        self.endpoint = endpoint
        self._on_message = on_message
        self._on_closed = on_closed
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self.sent_messages = 0
        self.received_messages = 0

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self._ws.state == websockets.protocol.State.OPEN

    async def connect(self, timeout: float = 10.0) -> None:
        try:
            self._ws = await asyncio.wait_for(
                connect(
                    self.endpoint.url,
                    additional_headers=self.endpoint.headers(),
                    max_size=MAX_MESSAGE_BYTES,
                    open_timeout=timeout,
                    # On loopback, compressing base64 audio both ways only costs CPU (the engine's too): about
                    # 25 us per 20 ms chunk sent, plus inflating every audio delta received.
                    compression=None if self.endpoint.loopback else "deflate",
                    # A pulled cable sends no close frame: pings notice it within ~30 s (a busy local engine may be slow to pong).
                    ping_interval=PING_INTERVAL_S,
                    ping_timeout=PING_TIMEOUT_S,
                ),
                timeout + 1,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ConnectError(f"{self.endpoint.label} refused the API key (HTTP {status}).") from None
            raise ConnectError(f"{self.endpoint.label} answered HTTP {status}.") from None
        except InvalidURI:
            raise ConnectError(f"Not a WebSocket URL: {self.endpoint.url}") from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectError(f"Cannot reach {self.endpoint.label}: {exc or 'timed out'}") from None
        except (websockets.exceptions.WebSocketException, EOFError) as exc:
            # The line dropped during the handshake (or the server answered something that is not a WebSocket).
            raise ConnectError(f"Cannot reach {self.endpoint.label}: the handshake failed ({exc or type(exc).__name__})") from None
        self._reader = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._ws is not None
        reason = "closed"
        try:
            async for message in self._ws:
                self.received_messages += 1
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                try:
                    self._on_message(text)
                except Exception:  # the handler must not kill the reader
                    log.exception("message handler failed")
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            reason = f"closed ({rcvd.code} {rcvd.reason})" if rcvd else "connection lost"
        except Exception as exc:
            reason = f"connection error: {exc}"
        else:
            # A clean close: the close frame may have arrived before the socket is fully closed (then
            # `close_code` is still None), so read the frame the protocol received.
            frame = self._ws.protocol.close_rcvd
            reason = f"closed ({frame.code} {frame.reason})".strip() if frame is not None else "closed"
        finally:
            self._ws = None
            self._on_closed(reason)

    def send(self, event: dict[str, Any]) -> bool:
        """Queue one client event; False when the socket is not open (nothing is sent into a dead socket)."""
        ws = self._ws
        if ws is None or not self.is_open:
            return False
        text = json.dumps(event)
        self.sent_messages += 1
        asyncio.ensure_future(self._send(ws, text))
        return True

    @staticmethod
    async def _send(ws: ClientConnection, text: str) -> None:
        try:
            await ws.send(text)
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 3)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
