"""What the sans-I/O client core asks the outside world to do, and what it tells the UI.

The core never performs I/O: its methods return lists of these values, and the adapters carry
them out (send on the socket, play or stop audio) and render them (the UI).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TurnState(enum.Enum):
    """Who has the floor, as the window shows it."""

    DISCONNECTED = "disconnected"
    LISTENING = "listening"
    USER_SPEAKING = "user speaking"
    THINKING = "thinking"
    ASSISTANT_SPEAKING = "assistant speaking"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Send:
    """Send this client event on the socket."""

    event: dict[str, Any]


@dataclass(frozen=True)
class PlayAudio:
    """Queue assistant audio (int16, 24 kHz) for playback."""

    item_id: str
    response_id: str
    pcm16: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class StopPlayback:
    """Silence playback now and report back with `RealtimeClient.playback_stopped(item_id, played_ms)`."""

    reason: str


@dataclass(frozen=True)
class DuckPlayback:
    """Lower playback to `gain` now (a possible interruption began); reversible."""

    gain: float


@dataclass(frozen=True)
class UnduckPlayback:
    pass


@dataclass(frozen=True)
class PausePlayback:
    """Silence playback but keep the unplayed audio (an interruption awaiting the server's verdict).

    tentative: an onset the VAD has not confirmed yet (no state change, nothing to report); `cause` says what
    was noticed, for the log."""

    tentative: bool = False
    cause: str = ""


@dataclass(frozen=True)
class ResumePlayback:
    """A false interruption: continue playback where it paused (tentative: a released hold)."""

    tentative: bool = False


@dataclass(frozen=True)
class DiscardAudio:
    """Drop queued audio of this item (late audio of a cancelled response)."""

    item_id: str


@dataclass(frozen=True)
class ItemChanged:
    """A conversation item was added, moved or changed: re-render it."""

    item_id: str


@dataclass(frozen=True)
class ItemRemoved:
    item_id: str


@dataclass(frozen=True)
class SessionChanged:
    """The server's effective session; `differences` lists requested values it did not take."""

    differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class UsageUpdated:
    """A response reported its token usage: `total` is the conversation's sum so far (a `usage.TokenUsage`);
    `usage` is this response's own, `model` the model the session said it runs (None when it named none)."""

    total: Any
    item_id: str | None = None
    usage: Any = None
    model: str | None = None


@dataclass(frozen=True)
class ToolCalled:
    """The model called a function tool (its `function_call` item is complete): answer with
    `RealtimeClient.send_tool_output(call_id, output)`."""

    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ConversationCleared:
    """The user started a new conversation: the transcript is empty, the next session starts from nothing."""


@dataclass(frozen=True)
class StateChanged:
    state: TurnState


@dataclass(frozen=True)
class SpeechBoundary:
    """The server's VAD saw speech start or stop at `audio_ms` of the input stream."""

    started: bool
    audio_ms: int
    item_id: str


@dataclass(frozen=True)
class Notice:
    """Something the user should read: an error from the server, a skipped event, a hint."""

    level: str  # "info" | "warning" | "error"
    message: str
    code: str | None = None


@dataclass(frozen=True)
class BargeInHappened:
    """The user interrupted the assistant; `heard_ms` of `item_id` had been played."""

    item_id: str
    heard_ms: int
    received_ms: int
    source: str


Action = Send | PlayAudio | StopPlayback | DuckPlayback | UnduckPlayback | PausePlayback | ResumePlayback | DiscardAudio | ItemChanged | ItemRemoved | SessionChanged | StateChanged | SpeechBoundary | Notice | BargeInHappened | UsageUpdated | ToolCalled | ConversationCleared
