"""Protocol oracle: check wire events against the official ``openai`` SDK types.

The SDK's GA Realtime models (``openai.types.realtime``) are the reference
schema for what a client may send and what a server may emit. They accept
unknown keys (``extra="allow"``), so a misspelt field would silently pass a
plain ``validate_python``; the oracle therefore also walks the parsed model
and rejects any non-empty ``model_extra`` anywhere in the tree.

Usage::

    from tests.protocol_oracle import validate_client_event, validate_server_event
    validate_client_event({"type": "input_audio_buffer.clear"})

Both functions return ``None`` on success and raise ``AssertionError`` with a
message naming the event type and the problem otherwise.
"""

from __future__ import annotations

import functools
import json
import re
import typing
from typing import Any, Iterable, Iterator

import pydantic
from pydantic import BaseModel, TypeAdapter

__all__ = ["validate_client_event", "validate_server_event", "extra_fields"]


@functools.lru_cache(maxsize=None)
def _client_adapter() -> TypeAdapter:
    from openai.types.realtime import RealtimeClientEvent

    return TypeAdapter(RealtimeClientEvent)


@functools.lru_cache(maxsize=None)
def _server_adapter() -> TypeAdapter:
    from openai.types.realtime import RealtimeServerEvent

    return TypeAdapter(RealtimeServerEvent)


@functools.lru_cache(maxsize=None)
def _members(side: str) -> dict[str, type]:
    """Map each event ``type`` literal to its SDK model class."""
    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

    union = RealtimeClientEvent if side == "client" else RealtimeServerEvent
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    members: dict[str, type] = {}
    for cls in typing.get_args(union):
        annotation = cls.model_fields["type"].annotation
        for literal in typing.get_args(annotation):
            members[literal] = cls
    return members


@functools.lru_cache(maxsize=None)
def _member_adapter(side: str, event_type: str) -> TypeAdapter:
    return TypeAdapter(_members(side)[event_type])


def extra_fields(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted.path, value)`` for every unknown key in a parsed tree."""
    if isinstance(value, BaseModel):
        extra = value.model_extra or {}
        for key, extra_value in extra.items():
            yield (f"{path}.{key}" if path else key), extra_value
        for name in type(value).model_fields:
            child = getattr(value, name, None)
            yield from extra_fields(child, f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            yield from extra_fields(child, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from extra_fields(child, f"{path}.{key}" if path else str(key))


def _describe(event: Any) -> str:
    if isinstance(event, dict):
        return repr(event.get("type", "<no type>"))
    return f"<{type(event).__name__}>"


def _short(event: Any, limit: int = 400) -> str:
    try:
        text = json.dumps(event, default=repr)
    except Exception:  # pragma: no cover - defensive
        text = repr(event)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


def _validate(adapter: TypeAdapter, event: Any, side: str, allow_extra: Iterable[str] = ()) -> None:
    label = _describe(event)
    if not isinstance(event, dict):
        raise AssertionError(f"{side} event {label} is not a JSON object: {_short(event)}")
    event_type = event.get("type")
    if not isinstance(event_type, str) or event_type not in _members(side):
        raise AssertionError(
            f"{side} event {label} has an unknown or missing 'type' "
            f"(not a GA {side} event in the openai SDK): {_short(event)}"
        )
    try:
        parsed = adapter.validate_python(event)
    except pydantic.ValidationError:
        # The SDK union is not discriminated for pydantic, so its error lists
        # every variant; re-validate against the one named by ``type`` to get
        # a readable message.
        try:
            _member_adapter(side, event_type).validate_python(event)
            detail = "matched no variant of the SDK union"
        except pydantic.ValidationError as exc:
            detail = str(exc)
        raise AssertionError(
            f"{side} event {label} does not match the openai SDK GA schema:\n"
            f"{detail}\nevent: {_short(event)}"
        ) from None
    if getattr(parsed, "type", None) != event_type:
        raise AssertionError(
            f"{side} event {label} was parsed as {type(parsed).__name__} "
            f"with type {getattr(parsed, 'type', None)!r}"
        )
    allowed = set(allow_extra)
    unknown = [(path, val) for path, val in extra_fields(parsed) if re.sub(r"\[\d+\]", "[]", path) not in allowed]
    if unknown:
        listed = ", ".join(f"{path}={val!r}"[:120] for path, val in unknown)
        raise AssertionError(
            f"{side} event {label} (parsed as {type(parsed).__name__}) has "
            f"unknown field(s) not in the openai SDK GA schema: {listed}\n"
            f"event: {_short(event)}"
        )


def validate_client_event(event: dict) -> None:
    """Assert that ``event`` is a valid GA Realtime client event."""
    _validate(_client_adapter(), event, "client")


def validate_server_event(event: dict, allow_extra: Iterable[str] = ()) -> None:
    """Assert that ``event`` is a valid GA Realtime server event.

    ``allow_extra`` names unknown fields to tolerate, as dotted paths with list
    indices written ``[]`` (e.g. ``"session.id"``). Use it only for fields the
    real API is known to send but the SDK types lack, and say so where you do.
    """
    _validate(_server_adapter(), event, "server", allow_extra)
