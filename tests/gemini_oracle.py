"""The `google-genai` SDK's types as the oracle of the Gemini Live wire: every message Parley sends must parse
as a `LiveClientMessage` (its models forbid unknown fields), every message a test plays as the server as a
`LiveServerMessage`. Base64 fields are checked as base64 (the SDK decodes them from JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest

types = pytest.importorskip("google.genai.types")


def _one_field(message: dict[str, Any]) -> None:
    assert isinstance(message, dict) and len(message) == 1, f"one top-level field per message: {list(message)}"


def check_client_message(message: dict[str, Any]) -> Any:
    """Raise (pydantic ValidationError or AssertionError) unless `message` is a valid LiveClientMessage."""
    _one_field(message)
    if "setup" in message and "realtimeInputConfig" in message["setup"]:
        # The SDK's own LiveClientSetup type lacks realtimeInputConfig, though the SDK sends it there (its
        # converter puts LiveConnectConfig.realtime_input_config at setup.realtimeInputConfig): check that part
        # against RealtimeInputConfig, and the rest as LiveClientSetup.
        setup = dict(message["setup"])
        realtime = setup.pop("realtimeInputConfig")
        parsed_rt = types.RealtimeInputConfig.model_validate_json(json.dumps(realtime))
        _same_keys(realtime, parsed_rt.model_dump(by_alias=True, exclude_none=True, mode="json"), "setup.realtimeInputConfig")
        message = {"setup": setup}
    parsed = types.LiveClientMessage.model_validate_json(json.dumps(message))
    # Nothing dropped on the way: the parsed message, dumped by alias, holds every field that was sent.
    dumped = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    _same_keys(message, dumped, "")
    return parsed


def check_server_message(message: dict[str, Any]) -> Any:
    _one_field_or_more(message)
    if "voiceActivity" in message:
        # On the wire the kind is `type`, which the SDK's converter reads into VoiceActivity.voice_activity_type.
        activity = dict(message["voiceActivity"])
        assert set(activity) <= {"type", "audioOffset"}, activity
        types.VoiceActivity.model_validate({"voice_activity_type": activity.get("type"),
                                            "audio_offset": activity.get("audioOffset")})
        message = {k: v for k, v in message.items() if k != "voiceActivity"}
        if not message:
            return None
    return types.LiveServerMessage.model_validate_json(json.dumps(message))


def _one_field_or_more(message: dict[str, Any]) -> None:
    assert isinstance(message, dict) and message, "an empty server message"


def _same_keys(sent: Any, parsed: Any, where: str) -> None:
    if isinstance(sent, dict):
        assert isinstance(parsed, dict), f"{where}: {type(parsed).__name__}"
        for key, value in sent.items():
            if value in ({}, None):  # an empty config object ({}) dumps as {} or disappears
                continue
            assert key in parsed, f"{where}.{key} was not understood by the SDK"
            _same_keys(value, parsed[key], f"{where}.{key}")
    elif isinstance(sent, list):
        assert isinstance(parsed, list) and len(parsed) == len(sent), where
        for n, (a, b) in enumerate(zip(sent, parsed)):
            _same_keys(a, b, f"{where}[{n}]")
