"""Unit tests of desktop.core.events and desktop.core.session_config (no I/O).

Every client event Parley builds is checked against the official openai SDK's GA types by the
protocol oracle, which also rejects unknown (misspelt) fields.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from desktop.core import events as ev
from desktop.core.session_config import (
    EAGERNESS_VALUES,
    VAD_PROFILES,
    ManualTurns,
    SemanticVad,
    ServerVad,
    SessionConfig,
    turn_detection_from_wire,
)
from tests.protocol_oracle import validate_client_event, validate_server_event

PNG_1PX = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def builder() -> ev.ClientEvents:
    return ev.ClientEvents(ev.EventIds("test"))


# ----------------------------------------------------------------------------- the oracle itself


def test_oracle_rejects_a_misspelt_field_and_an_unknown_type():
    good = {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    validate_client_event(good)
    bad = json.loads(json.dumps(good))
    bad["session"]["audio"]["input"]["turn_detektion"] = None
    with pytest.raises(AssertionError, match="turn_detektion"):
        validate_client_event(bad)
    with pytest.raises(AssertionError, match="response.audio.interrupted"):
        validate_client_event({"type": "response.audio.interrupted"})
    with pytest.raises(AssertionError, match="audio"):
        validate_client_event({"type": "input_audio_buffer.append"})
    with pytest.raises(AssertionError, match="unknown field"):
        validate_server_event({"type": "input_audio_buffer.cleared", "event_id": "e", "extra": 1})


# ----------------------------------------------------------------------------- session.update


def _session_update(builder: ev.ClientEvents, config: SessionConfig) -> dict:
    event = builder.session_update(config.to_wire())
    validate_client_event(event)
    assert event["type"] == "session.update"
    assert event["event_id"].startswith("evt_test_")
    return event


def test_session_update_server_vad_validates_and_carries_every_parameter(builder):
    td = ServerVad(threshold=0.62, prefix_padding_ms=250, silence_duration_ms=700, idle_timeout_ms=9000,
                   create_response=False, interrupt_response=False)
    cfg = SessionConfig(instructions="Be brief.", voice="marin", turn_detection=td, transcription_model="whisper-1",
                        transcription_language="en", noise_reduction="near_field", model="gpt-realtime")
    event = _session_update(builder, cfg)
    session = event["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == "Be brief."
    assert session["model"] == "gpt-realtime"
    wire_td = session["audio"]["input"]["turn_detection"]
    assert wire_td == {"type": "server_vad", "threshold": 0.62, "prefix_padding_ms": 250, "silence_duration_ms": 700,
                       "idle_timeout_ms": 9000, "create_response": False, "interrupt_response": False}
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["transcription"] == {"model": "whisper-1", "language": "en"}
    assert session["audio"]["input"]["noise_reduction"] == {"type": "near_field"}
    assert session["audio"]["output"]["voice"] == "marin"
    # The beta's flat fields must not appear.
    for beta in ("turn_detection", "voice", "input_audio_format", "modalities", "input_audio_transcription"):
        assert beta not in session
    # Round trip through from_wire.
    assert SessionConfig.from_wire(session) == cfg


def test_session_update_without_idle_timeout_omits_it(builder):
    event = _session_update(builder, SessionConfig(turn_detection=ServerVad()))
    assert "idle_timeout_ms" not in event["session"]["audio"]["input"]["turn_detection"]


@pytest.mark.parametrize("eagerness", EAGERNESS_VALUES)
def test_session_update_semantic_vad_each_eagerness(builder, eagerness):
    event = _session_update(builder, SessionConfig(turn_detection=SemanticVad(eagerness=eagerness)))
    td = event["session"]["audio"]["input"]["turn_detection"]
    assert td == {"type": "semantic_vad", "eagerness": eagerness, "create_response": True, "interrupt_response": True}
    assert turn_detection_from_wire(td) == SemanticVad(eagerness=eagerness)


def test_session_update_manual_turns_sends_json_null(builder):
    event = _session_update(builder, SessionConfig(turn_detection=ManualTurns(), transcription_model=None))
    audio_in = event["session"]["audio"]["input"]
    assert "turn_detection" in audio_in and audio_in["turn_detection"] is None
    assert '"turn_detection": null' in json.dumps(event)
    assert "transcription" not in audio_in
    assert isinstance(SessionConfig.from_wire(event["session"]).turn_detection, ManualTurns)


@pytest.mark.parametrize("name", sorted(VAD_PROFILES))
def test_session_update_every_vad_profile(builder, name):
    profile = VAD_PROFILES[name]
    event = _session_update(builder, SessionConfig(turn_detection=profile))
    td = event["session"]["audio"]["input"]["turn_detection"]
    assert td["type"] == "server_vad"
    assert (td["threshold"], td["prefix_padding_ms"], td["silence_duration_ms"]) == (
        profile.threshold, profile.prefix_padding_ms, profile.silence_duration_ms)
    assert 0.0 <= td["threshold"] <= 1.0


def test_vad_profiles_are_distinct_and_ordered_by_patience():
    assert {"fast", "balanced", "patient"} <= set(VAD_PROFILES)
    assert VAD_PROFILES["fast"].silence_duration_ms < VAD_PROFILES["balanced"].silence_duration_ms
    assert VAD_PROFILES["balanced"].silence_duration_ms < VAD_PROFILES["patient"].silence_duration_ms
    assert len({(p.threshold, p.prefix_padding_ms, p.silence_duration_ms) for p in VAD_PROFILES.values()}) == len(VAD_PROFILES)


def test_from_wire_tolerates_odd_values():
    assert isinstance(turn_detection_from_wire({"type": "none"}), ManualTurns)
    assert turn_detection_from_wire("garbage") == ServerVad()
    odd = turn_detection_from_wire({"type": "server_vad", "threshold": "high", "prefix_padding_ms": True,
                                    "silence_duration_ms": 900})
    assert odd == ServerVad(silence_duration_ms=900)
    assert turn_detection_from_wire({"type": "semantic_vad", "eagerness": "sometimes"}) == SemanticVad("auto")
    assert SessionConfig.from_wire(None) == SessionConfig()
    cfg = SessionConfig.from_wire({"audio": "x", "output_modalities": ["text", 3], "voice": 5})
    assert cfg.output_modalities == ("text",)
    assert cfg.turn_detection == ServerVad()


# ----------------------------------------------------------------------------- other client events


def test_input_audio_events_validate(builder):
    pcm = (np.sin(np.arange(2400) / 5.0) * 8000).astype("<i2")
    append = builder.input_audio_append(pcm)
    validate_client_event(append)
    assert np.array_equal(np.frombuffer(base64.b64decode(append["audio"]), dtype="<i2"), pcm)
    assert builder.input_audio_append(pcm.tobytes())["audio"] == append["audio"]
    for event, kind in ((builder.input_audio_commit(), "input_audio_buffer.commit"),
                        (builder.input_audio_clear(), "input_audio_buffer.clear")):
        validate_client_event(event)
        assert event["type"] == kind and set(event) == {"type", "event_id"}


def test_item_create_with_text_and_image_validates(builder):
    text_only = builder.user_message([ev.text_part("What is this?")])
    validate_client_event(text_only)
    assert text_only["item"] == {"type": "message", "role": "user",
                                 "content": [{"type": "input_text", "text": "What is this?"}]}
    assert "previous_item_id" not in text_only

    with_image = builder.user_message([ev.image_part(PNG_1PX, detail="low"), ev.text_part("Describe it")],
                                      previous_item_id="item_1", item_id="item_mine")
    validate_client_event(with_image)
    assert with_image["previous_item_id"] == "item_1"
    assert with_image["item"]["id"] == "item_mine"
    image = with_image["item"]["content"][0]
    assert image == {"type": "input_image", "image_url": PNG_1PX, "detail": "low"}
    assert "detail" not in ev.image_part(PNG_1PX)

    generic = builder.item_create({"type": "message", "role": "system",
                                   "content": [{"type": "input_text", "text": "Speak French."}]}, previous_item_id="root")
    validate_client_event(generic)


def test_item_truncate_delete_retrieve_validate(builder):
    truncate = builder.item_truncate("item_a", 1234.9)
    validate_client_event(truncate)
    assert truncate["audio_end_ms"] == 1234 and isinstance(truncate["audio_end_ms"], int)
    assert truncate["content_index"] == 0 and truncate["item_id"] == "item_a"
    for event, kind in ((builder.item_delete("item_a"), "conversation.item.delete"),
                        (builder.item_retrieve("item_a"), "conversation.item.retrieve")):
        validate_client_event(event)
        assert event["type"] == kind and event["item_id"] == "item_a"


def test_response_create_and_cancel_validate(builder):
    plain = builder.response_create()
    validate_client_event(plain)
    assert "response" not in plain
    shaped = builder.response_create({"output_modalities": ["text"], "instructions": "Answer in one word."})
    validate_client_event(shaped)
    assert shaped["response"]["output_modalities"] == ["text"]
    cancel = builder.response_cancel()
    validate_client_event(cancel)
    assert "response_id" not in cancel
    targeted = builder.response_cancel("resp_1")
    validate_client_event(targeted)
    assert targeted["response_id"] == "resp_1"


def test_event_ids_are_unique():
    builder = ev.ClientEvents()
    ids = {builder.input_audio_clear()["event_id"] for _ in range(200)}
    assert len(ids) == 200


# ----------------------------------------------------------------------------- parsing server events


def test_parse_ga_events_into_typed_values():
    pcm = np.array([1, -2, 300, -32768, 32767], dtype="<i2")
    msg = {"type": "response.output_audio.delta", "event_id": "ev1", "response_id": "r", "item_id": "i",
           "output_index": 0, "content_index": 0, "delta": base64.b64encode(pcm.tobytes()).decode()}
    validate_server_event(msg)
    parsed = ev.parse_server_event(json.dumps(msg))
    assert isinstance(parsed, ev.OutputAudioDelta)
    assert parsed.event_id == "ev1" and parsed.response_id == "r" and parsed.item_id == "i"
    assert np.array_equal(parsed.audio, pcm)

    done = ev.parse_server_event({"type": "response.done", "event_id": "e", "response": {
        "id": "r", "status": "cancelled", "status_details": {"type": "cancelled", "reason": "turn_detected"}}})
    assert isinstance(done, ev.ResponseDone)
    assert (done.response_id, done.status, done.reason) == ("r", "cancelled", "turn_detected")

    err = ev.parse_server_event(b'{"type":"error","event_id":"e","error":{"type":"invalid_request_error",'
                                b'"code":"x_code","message":"bad","event_id":"evt_1"}}')
    assert isinstance(err, ev.ServerError)
    assert (err.code, err.message, err.caused_by) == ("x_code", "bad", "evt_1")


@pytest.mark.parametrize(
    "beta, ga_class, body",
    [
        ("response.audio.delta", ev.OutputAudioDelta, {"response_id": "r", "item_id": "i", "delta": "AAAAAA=="}),
        ("response.audio.done", ev.OutputAudioDone, {"response_id": "r", "item_id": "i"}),
        ("response.audio_transcript.delta", ev.OutputTranscriptDelta, {"response_id": "r", "item_id": "i", "delta": "Hi"}),
        ("response.audio_transcript.done", ev.OutputTranscriptDone, {"response_id": "r", "item_id": "i", "transcript": "Hi"}),
        ("response.text.delta", ev.OutputTextDelta, {"response_id": "r", "item_id": "i", "delta": "Hi"}),
        ("response.text.done", ev.OutputTextDone, {"response_id": "r", "item_id": "i", "text": "Hi"}),
        ("conversation.item.created", ev.ItemAdded, {"item": {"id": "i", "type": "message", "role": "user"}}),
    ],
)
def test_beta_event_names_are_read_as_ga(beta, ga_class, body):
    parsed = ev.parse_server_event({"type": beta, "event_id": "e", **body})
    assert type(parsed) is ga_class, parsed
    assert ga_class.TYPE != beta


def test_lifecycle_and_unknown_events():
    life = ev.parse_server_event({"type": "response.content_part.added", "response_id": "r", "item_id": "i"})
    assert isinstance(life, ev.LifecycleEvent) and life.response_id == "r" and life.item_id == "i"
    unknown = ev.parse_server_event({"type": "something.new", "x": 1})
    assert isinstance(unknown, ev.UnknownEvent) and unknown.type == "something.new" and unknown.raw["x"] == 1


@pytest.mark.parametrize(
    "message, reason_part",
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"just a string"', "not a JSON object"),
        ('{"event_id": "e"}', "type"),
        ('{"type": 5}', "type"),
        ('{"type": "input_audio_buffer.speech_started", "item_id": "i"}', "audio_start_ms"),
        ('{"type": "input_audio_buffer.speech_started", "item_id": "i", "audio_start_ms": "12"}', "audio_start_ms"),
        ('{"type": "input_audio_buffer.speech_started", "item_id": "i", "audio_start_ms": true}', "audio_start_ms"),
        ('{"type": "response.done", "response": []}', "response"),
        ('{"type": "input_audio_buffer.committed", "item_id": "i", "previous_item_id": 7}', "previous_item_id"),
        ('{"type": "conversation.item.added", "item": {"id": 3}}', "item.id"),
        ('{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "@@not base64@@"}', "base64"),
        ('{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "AAEC"}', "even"),
        ('{"type": "error"}', "error"),
    ],
)
def test_malformed_events_become_malformed_values(message, reason_part):
    parsed = ev.parse_server_event(message)
    assert isinstance(parsed, ev.MalformedEvent), parsed
    assert reason_part in parsed.reason
