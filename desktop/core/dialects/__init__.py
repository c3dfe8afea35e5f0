"""Provider dialects: each translates one provider's wire protocol to and from the core's vocabulary.

The core (`RealtimeClient`) speaks one vocabulary: the client events built by `events.ClientEvents` and the
parsed server events of `events` (modelled on the OpenAI Realtime GA protocol, which is the richest of the
protocols Parley speaks). A dialect takes each client event the core wants sent and returns the provider's
messages for it; it takes each message the provider sends and returns the core's events for it. Where the
provider has no equivalent, the dialect says so (a notice) instead of pretending, and `capabilities` tells the
core and the UI beforehand. No I/O here: a dialect is a plain object, tested in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import events as ev
from ..provider_capabilities import ProviderCapabilities


@dataclass
class Translation:
    """What one message turned into: `wire` messages for the provider, `events` for the core (synthesised where
    the provider sends nothing equivalent), and `notices` (level, text) for the user."""

    wire: list[dict[str, Any]] = field(default_factory=list)
    events: list[ev.ServerEvent] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: "Translation") -> "Translation":
        self.wire += other.wire
        self.events += other.events
        self.notices += other.notices
        return self


class Dialect(Protocol):
    capabilities: ProviderCapabilities

    def connected(self) -> None:
        """A new connection opened (per-connection state starts again; what carries over stays)."""

    def outbound(self, event: dict[str, Any]) -> Translation:
        """One client event of the core → the provider's messages."""

    def inbound(self, message: str | bytes) -> Translation:
        """One message of the provider → the core's events."""

    @property
    def reopen_reason(self) -> str | None:
        """Why the connection should be replaced by a new one at the next turn boundary (None: it need not)."""


def dialect_for(name: str, capabilities: ProviderCapabilities | None = None, model: str | None = None) -> Dialect:
    from .openai_realtime import OpenAIRealtimeDialect

    if name == "gemini":
        from .gemini_live import GeminiLiveDialect

        return GeminiLiveDialect(model=model, capabilities=capabilities)
    return OpenAIRealtimeDialect(capabilities)
