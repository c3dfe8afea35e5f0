"""Realtime protocol events (GA dialect): building what the client sends, parsing what the server sends.

Client events are plain dicts, each with an `event_id` so an `error` can name its cause.
Server events parse into small frozen dataclasses; anything unknown or malformed becomes an
`UnknownEvent` or a `MalformedEvent` value — parsing never raises.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from .pcm import InvalidAudio, decode_pcm16, encode_pcm16

# --------------------------------------------------------------------------------------------------
# Client events


class EventIds:
    """Unique, readable client event ids: `evt_<session tag>_<counter>`."""

    def __init__(self, tag: str | None = None) -> None:
        self._tag = tag or secrets.token_hex(3)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"evt_{self._tag}_{next(self._counter)}"


class ClientEvents:
    """Builds every client event Parley sends."""

    def __init__(self, ids: EventIds | None = None) -> None:
        self.ids = ids or EventIds()

    def _event(self, type_: str, **body: Any) -> dict[str, Any]:
        return {"type": type_, "event_id": self.ids.next(), **body}

    def session_update(self, session: dict[str, Any]) -> dict[str, Any]:
        return self._event("session.update", session=session)

    def input_audio_append(self, pcm16: np.ndarray | bytes) -> dict[str, Any]:
        return self._event("input_audio_buffer.append", audio=encode_pcm16(pcm16))

    def input_audio_commit(self) -> dict[str, Any]:
        return self._event("input_audio_buffer.commit")

    def input_audio_clear(self) -> dict[str, Any]:
        return self._event("input_audio_buffer.clear")

    def user_message(
        self, content: list[dict[str, Any]], previous_item_id: str | None = None, item_id: str | None = None
    ) -> dict[str, Any]:
        """`conversation.item.create` of a user message (`input_text`, `input_image`, `input_audio` parts)."""
        item: dict[str, Any] = {"type": "message", "role": "user", "content": content}
        if item_id:
            item["id"] = item_id
        body: dict[str, Any] = {"item": item}
        if previous_item_id is not None:
            body["previous_item_id"] = previous_item_id
        return self._event("conversation.item.create", **body)

    def item_create(self, item: dict[str, Any], previous_item_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"item": item}
        if previous_item_id is not None:
            body["previous_item_id"] = previous_item_id
        return self._event("conversation.item.create", **body)

    def item_truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> dict[str, Any]:
        return self._event(
            "conversation.item.truncate", item_id=item_id, content_index=content_index, audio_end_ms=int(audio_end_ms)
        )

    def item_delete(self, item_id: str) -> dict[str, Any]:
        return self._event("conversation.item.delete", item_id=item_id)

    def item_retrieve(self, item_id: str) -> dict[str, Any]:
        return self._event("conversation.item.retrieve", item_id=item_id)

    def response_create(self, response: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._event("response.create", **({"response": response} if response else {}))

    def response_cancel(self, response_id: str | None = None) -> dict[str, Any]:
        return self._event("response.cancel", **({"response_id": response_id} if response_id else {}))


def text_part(text: str) -> dict[str, Any]:
    return {"type": "input_text", "text": text}


def image_part(data_url: str, detail: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "input_image", "image_url": data_url}
    if detail:
        part["detail"] = detail
    return part


# --------------------------------------------------------------------------------------------------
# Server events


@dataclass(frozen=True)
class ServerEvent:
    """Base of every parsed server event. `TYPE` is the wire type; `event_id` the server's id."""

    TYPE: ClassVar[str] = ""
    event_id: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class UnknownEvent(ServerEvent):
    type: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MalformedEvent(ServerEvent):
    """A message that is not a valid event: bad JSON, a missing or mistyped field, invalid audio."""

    type: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SessionCreated(ServerEvent):
    TYPE: ClassVar[str] = "session.created"
    session: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionUpdated(ServerEvent):
    TYPE: ClassVar[str] = "session.updated"
    session: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeechStarted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_started"
    audio_start_ms: int = 0
    item_id: str = ""


@dataclass(frozen=True)
class SpeechStopped(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int = 0
    item_id: str = ""


@dataclass(frozen=True)
class InputCommitted(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.committed"
    item_id: str = ""
    previous_item_id: str | None = None


@dataclass(frozen=True)
class InputCleared(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.cleared"


@dataclass(frozen=True)
class InputTimeoutTriggered(ServerEvent):
    TYPE: ClassVar[str] = "input_audio_buffer.timeout_triggered"
    audio_start_ms: int = 0
    audio_end_ms: int = 0
    item_id: str = ""


@dataclass(frozen=True)
class ItemAdded(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.added"
    item: dict[str, Any] = field(default_factory=dict)
    previous_item_id: str | None = None


@dataclass(frozen=True)
class ItemDone(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.done"
    item: dict[str, Any] = field(default_factory=dict)
    previous_item_id: str | None = None


@dataclass(frozen=True)
class ItemRetrieved(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.retrieved"
    item: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemTruncated(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.truncated"
    item_id: str = ""
    content_index: int = 0
    audio_end_ms: int = 0


@dataclass(frozen=True)
class ItemDeleted(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.deleted"
    item_id: str = ""


@dataclass(frozen=True)
class InputTranscriptionDelta(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.delta"
    item_id: str = ""
    delta: str = ""


@dataclass(frozen=True)
class InputTranscriptionCompleted(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.completed"
    item_id: str = ""
    transcript: str = ""


@dataclass(frozen=True)
class InputTranscriptionFailed(ServerEvent):
    TYPE: ClassVar[str] = "conversation.item.input_audio_transcription.failed"
    item_id: str = ""
    error: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResponseCreated(ServerEvent):
    TYPE: ClassVar[str] = "response.created"
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def response_id(self) -> str:
        rid = self.response.get("id")
        return rid if isinstance(rid, str) else ""


@dataclass(frozen=True)
class ResponseDone(ServerEvent):
    TYPE: ClassVar[str] = "response.done"
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def response_id(self) -> str:
        rid = self.response.get("id")
        return rid if isinstance(rid, str) else ""

    @property
    def status(self) -> str:
        status = self.response.get("status")
        return status if isinstance(status, str) else "completed"

    @property
    def reason(self) -> str | None:
        details = self.response.get("status_details")
        if isinstance(details, dict) and isinstance(details.get("reason"), str):
            return details["reason"]
        return None

    @property
    def error_message(self) -> str | None:
        details = self.response.get("status_details")
        if isinstance(details, dict) and isinstance(details.get("error"), dict):
            err = details["error"]
            return str(err.get("message") or err.get("code") or "")
        return None

    @property
    def usage(self) -> dict[str, Any]:
        usage = self.response.get("usage")
        return usage if isinstance(usage, dict) else {}


@dataclass(frozen=True)
class OutputItemAdded(ServerEvent):
    TYPE: ClassVar[str] = "response.output_item.added"
    response_id: str = ""
    output_index: int = 0
    item: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputItemDone(ServerEvent):
    TYPE: ClassVar[str] = "response.output_item.done"
    response_id: str = ""
    output_index: int = 0
    item: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputAudioDelta(ServerEvent):
    TYPE: ClassVar[str] = "response.output_audio.delta"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="<i2"), compare=False)


@dataclass(frozen=True)
class OutputAudioDone(ServerEvent):
    TYPE: ClassVar[str] = "response.output_audio.done"
    response_id: str = ""
    item_id: str = ""


@dataclass(frozen=True)
class OutputTranscriptDelta(ServerEvent):
    TYPE: ClassVar[str] = "response.output_audio_transcript.delta"
    response_id: str = ""
    item_id: str = ""
    delta: str = ""


@dataclass(frozen=True)
class OutputTranscriptDone(ServerEvent):
    TYPE: ClassVar[str] = "response.output_audio_transcript.done"
    response_id: str = ""
    item_id: str = ""
    transcript: str = ""


@dataclass(frozen=True)
class OutputTextDelta(ServerEvent):
    TYPE: ClassVar[str] = "response.output_text.delta"
    response_id: str = ""
    item_id: str = ""
    delta: str = ""


@dataclass(frozen=True)
class OutputTextDone(ServerEvent):
    TYPE: ClassVar[str] = "response.output_text.done"
    response_id: str = ""
    item_id: str = ""
    text: str = ""


@dataclass(frozen=True)
class RateLimitsUpdated(ServerEvent):
    TYPE: ClassVar[str] = "rate_limits.updated"
    rate_limits: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class ServerError(ServerEvent):
    TYPE: ClassVar[str] = "error"
    error: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.error.get("code") or self.error.get("type") or "error")

    @property
    def message(self) -> str:
        return str(self.error.get("message") or "")

    @property
    def caused_by(self) -> str | None:
        cause = self.error.get("event_id")
        return cause if isinstance(cause, str) else None


# Events Parley reads but does not need fields of (lifecycle markers).
@dataclass(frozen=True)
class LifecycleEvent(ServerEvent):
    type: str = ""
    response_id: str = ""
    item_id: str = ""


LIFECYCLE_TYPES = frozenset(
    {
        "conversation.created",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "conversation.item.input_audio_transcription.segment",
    }
)

_EVENT_CLASSES: dict[str, type[ServerEvent]] = {
    cls.TYPE: cls
    for cls in (
        SessionCreated, SessionUpdated, SpeechStarted, SpeechStopped, InputCommitted, InputCleared,
        InputTimeoutTriggered, ItemAdded, ItemDone, ItemRetrieved, ItemTruncated, ItemDeleted,
        InputTranscriptionDelta, InputTranscriptionCompleted, InputTranscriptionFailed, ResponseCreated,
        ResponseDone, OutputItemAdded, OutputItemDone, OutputAudioDelta, OutputAudioDone,
        OutputTranscriptDelta, OutputTranscriptDone, OutputTextDelta, OutputTextDone, RateLimitsUpdated,
        ServerError,
    )
}

#: Beta-era names that some compatible servers still send; read as their GA equivalents.
BETA_ALIASES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

# Required fields per event type, with the JSON types they must have. Other fields are optional.
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "session.created": {"session": dict},
    "session.updated": {"session": dict},
    "input_audio_buffer.speech_started": {"audio_start_ms": int, "item_id": str},
    "input_audio_buffer.speech_stopped": {"audio_end_ms": int, "item_id": str},
    "input_audio_buffer.committed": {"item_id": str},
    "input_audio_buffer.timeout_triggered": {"item_id": str},
    "conversation.item.added": {"item": dict},
    "conversation.item.done": {"item": dict},
    "conversation.item.retrieved": {"item": dict},
    "conversation.item.truncated": {"item_id": str, "audio_end_ms": int},
    "conversation.item.deleted": {"item_id": str},
    "conversation.item.input_audio_transcription.delta": {"item_id": str},
    "conversation.item.input_audio_transcription.completed": {"item_id": str, "transcript": str},
    "conversation.item.input_audio_transcription.failed": {"item_id": str},
    "response.created": {"response": dict},
    "response.done": {"response": dict},
    "response.output_item.added": {"item": dict},
    "response.output_item.done": {"item": dict},
    "response.output_audio.delta": {"response_id": str, "item_id": str, "delta": str},
    "response.output_audio.done": {"response_id": str, "item_id": str},
    "response.output_audio_transcript.delta": {"response_id": str, "item_id": str, "delta": str},
    "response.output_audio_transcript.done": {"response_id": str, "item_id": str},
    "response.output_text.delta": {"response_id": str, "item_id": str, "delta": str},
    "response.output_text.done": {"response_id": str, "item_id": str},
    "rate_limits.updated": {"rate_limits": list},
    "error": {"error": dict},
}

_OPTIONAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "previous_item_id": (str, type(None)),
    "response_id": str,
    "item_id": str,
    "output_index": int,
    "content_index": int,
    "transcript": str,
    "text": str,
    "delta": str,
    "error": dict,
    "audio_start_ms": int,
    "audio_end_ms": int,
}


def _type_ok(value: Any, expected: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) and expected in (int, float):
        return False
    return isinstance(value, expected)


def parse_server_event(message: str | bytes | dict[str, Any]) -> ServerEvent:
    """Parse one WebSocket message into a typed event. Never raises."""
    if isinstance(message, dict):
        data: Any = message
    else:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            return MalformedEvent(type="", reason=f"not JSON: {str(exc)[:80]}")
    if not isinstance(data, dict):
        return MalformedEvent(type="", reason=f"not a JSON object but {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        return MalformedEvent(type="", reason="no string 'type' field")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else ""
    kind = BETA_ALIASES.get(kind, kind)
    if kind in LIFECYCLE_TYPES:
        return LifecycleEvent(
            type=kind,
            response_id=data.get("response_id") if isinstance(data.get("response_id"), str) else "",
            item_id=data.get("item_id") if isinstance(data.get("item_id"), str) else "",
            event_id=event_id,
        )
    cls = _EVENT_CLASSES.get(kind)
    if cls is None:
        return UnknownEvent(type=kind, raw=data, event_id=event_id)
    for name, expected in _REQUIRED.get(kind, {}).items():
        if name not in data:
            return MalformedEvent(type=kind, reason=f"missing field '{name}'", event_id=event_id)
        if not _type_ok(data[name], expected):
            return MalformedEvent(type=kind, reason=f"field '{name}' has the wrong type", event_id=event_id)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "event_id":
            continue
        if f.name == "audio" and cls is OutputAudioDelta:
            try:
                kwargs["audio"] = decode_pcm16(data["delta"])
            except InvalidAudio as exc:
                return MalformedEvent(type=kind, reason=str(exc), event_id=event_id)
            continue
        if f.name not in data:
            continue
        value = data[f.name]
        expected = _OPTIONAL_TYPES.get(f.name)
        if expected is not None and not _type_ok(value, expected):
            return MalformedEvent(type=kind, reason=f"field '{f.name}' has the wrong type", event_id=event_id)
        kwargs[f.name] = value
    # Items are the heart of the conversation: check the fields Parley reads from them.
    item = kwargs.get("item")
    if item is not None and ("id" in item and not isinstance(item["id"], str)):
        return MalformedEvent(type=kind, reason="item.id is not a string", event_id=event_id)
    return cls(event_id=event_id, **kwargs)
