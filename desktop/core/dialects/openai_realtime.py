"""The OpenAI Realtime GA dialect (OpenAI, Azure OpenAI, compatible servers, the engine's /v1/realtime).

The core's vocabulary is this protocol, so the translation is the identity: each client event goes out as it
is, each server message is parsed by `events.parse_server_event`.
"""

from __future__ import annotations

from typing import Any

from .. import events as ev
from ..provider_capabilities import OPENAI, ProviderCapabilities
from . import Translation


class OpenAIRealtimeDialect:
    #: Time left that a server announced before closing (Gemini's goAway); this protocol has none.
    go_away_ms: int | None = None

    def __init__(self, capabilities: ProviderCapabilities | None = None) -> None:
        self.capabilities = capabilities or OPENAI

    def connected(self) -> None:
        pass

    def outbound(self, event: dict[str, Any]) -> Translation:
        return Translation(wire=[event])

    def inbound(self, message: str | bytes) -> Translation:
        return Translation(events=[ev.parse_server_event(message)])

    @property
    def reopen_reason(self) -> str | None:
        return None

    @property
    def resumed(self) -> bool:
        """The server kept the conversation of the last connection (never, in this protocol)."""
        return False
