"""Fuzzing the client core with hypothesis: 10,000 generated and mutated server events, 0 unhandled exceptions.

Every message goes both ways into the core: `RealtimeClient.receive(text)` (the socket's path, which must
never raise) and `RealtimeClient.handle(parse_server_event(...))` (the parser must turn anything into a typed
event, and no handler may raise on what the parser lets through). The client is kept across examples so
the mutated events meet a conversation with history, a live response and playing audio.
"""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.core.actions import Action
from desktop.core.events import MalformedEvent, ServerEvent, parse_server_event
from desktop.core.realtime_client import RealtimeClient

SERVER_TYPES = [
    "session.created", "session.updated", "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed", "input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered",
    "conversation.item.added", "conversation.item.done", "conversation.item.retrieved", "conversation.item.truncated",
    "conversation.item.deleted", "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed", "conversation.item.input_audio_transcription.failed",
    "response.created", "response.done", "response.output_item.added", "response.output_item.done",
    "response.output_audio.delta", "response.output_audio.done", "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done", "response.output_text.delta", "response.output_text.done",
    "rate_limits.updated", "error", "conversation.created", "response.content_part.added", "output_audio_buffer.started",
    "response.audio.delta", "conversation.item.created", "some.future.event",
]

FIELDS = [
    "event_id", "item_id", "previous_item_id", "response_id", "audio_start_ms", "audio_end_ms", "delta", "transcript",
    "text", "item", "response", "session", "error", "rate_limits", "output_index", "content_index", "audio",
]

ids = st.sampled_from(["item_1", "item_2", "item_3", "resp_1", "resp_2", "", "root", "x" * 300])
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40), ids,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FIELDS + ["type", "id", "role", "content", "status", "code", "message"]), inner, max_size=5)),
    max_leaves=12,
)


def _pcm_b64(n: int) -> str:
    return base64.b64encode(np.zeros(n, dtype=np.int16).tobytes()).decode()


@st.composite
def valid_events(draw) -> dict:
    """Well-formed events of the kinds a conversation has, with plausible fields."""
    kind = draw(st.sampled_from(SERVER_TYPES))
    item_id = draw(ids)
    response_id = draw(ids)
    role = draw(st.sampled_from(["user", "assistant", "system", "tool", None]))
    item = {"id": item_id, "type": draw(st.sampled_from(["message", "function_call", "function_call_output"])), "role": role,
            "status": draw(st.sampled_from(["in_progress", "completed", "incomplete", "cancelled"])),
            "content": draw(st.lists(st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text", "input_audio", "output_audio", "input_image"]),
                                                             "text": st.text(max_size=20), "transcript": st.text(max_size=20)}), max_size=3))}
    event = {
        "type": kind,
        "event_id": draw(st.text(max_size=8)),
        "item_id": item_id,
        "previous_item_id": draw(st.one_of(st.none(), ids)),
        "response_id": response_id,
        "audio_start_ms": draw(st.integers(0, 10**7)),
        "audio_end_ms": draw(st.integers(0, 10**7)),
        "delta": _pcm_b64(draw(st.integers(0, 2400))) if "audio.delta" in kind else draw(st.text(max_size=30)),
        "transcript": draw(st.text(max_size=30)),
        "text": draw(st.text(max_size=30)),
        "item": item,
        "response": {"id": response_id, "status": draw(st.sampled_from(["in_progress", "completed", "cancelled", "failed", "incomplete", 7])),
                     "status_details": draw(st.one_of(st.none(), json_values)), "output": [item]},
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": draw(st.one_of(st.none(), json_values, st.just({"type": "server_vad", "threshold": 0.5})))}}},
        "error": {"type": "invalid_request_error", "code": draw(st.one_of(st.none(), st.text(max_size=20), st.integers())), "message": draw(st.one_of(st.none(), st.text(max_size=40)))},
        "rate_limits": draw(st.lists(json_values, max_size=2)),
        "output_index": 0,
        "content_index": 0,
    }
    return event


@st.composite
def mutated_events(draw) -> dict:
    """A valid event with fields deleted, retyped, or replaced by junk."""
    event = draw(valid_events())
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "retype", "junk", "nest"]))
        key = draw(st.sampled_from(sorted(event) + FIELDS))
        if op == "delete":
            event.pop(key, None)
        elif op == "retype":
            event[key] = draw(json_values)
        elif op == "junk":
            event[key] = draw(st.sampled_from(["!!!not base64!!!", "AAA", "A" * 3 + "=", "\x00\xff", -1, 1e308, True, [], {}]))
        else:
            inner = event.get("item") if isinstance(event.get("item"), dict) else event.setdefault("item", {})
            if isinstance(inner, dict):
                inner[draw(st.sampled_from(["id", "role", "content", "status", "type"]))] = draw(json_values)
    return event


def raw_messages() -> st.SearchStrategy:
    """Whole messages that are not events: bad JSON, non-objects, binary, deep nesting, big payloads."""
    return st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60),
        st.sampled_from(["", "{", "[]", "null", "42", '"text"', '{"type": 5}', '{"type": null}', "{\"type\": \"error\"}", "\ud800"]),
        st.builds(lambda n: json.dumps({"type": "response.output_text.delta", "response_id": "r", "item_id": "i", "delta": "x" * n}), st.integers(10**3, 10**5)),
        st.builds(lambda n: json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "A" * (4 * n + 1)}), st.integers(10**3, 2 * 10**4)),
        st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(100, 5000)),
    )


def huge_messages() -> list[str | bytes]:
    """A few really huge messages (tens of MB in all), sent outside hypothesis to keep the run fast."""
    big_pcm = base64.b64encode(np.zeros(24000 * 60, dtype=np.int16).tobytes()).decode()  # a minute of audio
    return [
        json.dumps({"type": "response.output_text.delta", "response_id": "r", "item_id": "i", "delta": "x" * 8_000_000}),
        json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": big_pcm}),
        json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": big_pcm[:-1] + "!"}),
        json.dumps({"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": big_pcm + "A"}),
        json.dumps({"type": "conversation.item.added", "item": {"id": "i" * 1_000_000, "role": "user", "content": [{"type": "input_text", "text": "y" * 4_000_000}]}}),
        json.dumps({"type": "rate_limits.updated", "rate_limits": [{"name": "x"}] * 200_000}),
        "[" * 1_000_000 + "]" * 1_000_000,
        b"\xff" * 5_000_000,
        '{"type": "error", "error": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}",
    ]


messages = st.one_of(
    valid_events().map(json.dumps),
    mutated_events().map(lambda e: json.dumps(e, allow_nan=True)),
    raw_messages(),
)

JUNK = ["!!!not base64!!!", "AAA", "AAA=", "\x00\xff", -1, 1e308, True, [], {}, None, "", 2**70, [{"id": 1}], {"type": 3}]
MUTATIONS_PER_EXAMPLE = 9  # each example feeds 1 generated + 9 mutated messages


def mutate(message: str | bytes, rnd) -> str | bytes:
    """One random mutation: on an event, delete/retype/junk a field (or one of its item's); else mangle the text."""
    try:
        event = json.loads(message)
    except (ValueError, UnicodeDecodeError, RecursionError):
        event = None
    if isinstance(event, dict) and event:
        key = rnd.choice(sorted(event) + FIELDS)
        op = rnd.randrange(4)
        if op == 0:
            event.pop(key, None)
        elif op == 1:
            event[key] = rnd.choice(JUNK)
        elif op == 2 and isinstance(event.get("item"), dict):
            event["item"][rnd.choice(["id", "role", "content", "status", "type"])] = rnd.choice(JUNK)
        else:
            event["type"] = rnd.choice(SERVER_TYPES)  # the right fields under the wrong type
        return json.dumps(event)
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    if not text:
        return rnd.choice(["{", "\x00", " "])
    cut = rnd.randrange(len(text))
    return rnd.choice([text[:cut], text[cut:], text[:cut] + rnd.choice(['"', "}", "\\", "\x00"]) + text[cut:]])


CLIENT = RealtimeClient()
CLIENT.on_connected()
COUNT = {"n": 0, "skipped": 0}


def _fresh_client_if_big() -> None:
    """Keep the client's history moderate so 10,000 examples stay fast (state still carries over)."""
    global CLIENT
    if len(CLIENT.conversation) > 300:
        COUNT["skipped"] += CLIENT.skipped_events
        CLIENT = RealtimeClient()
        CLIENT.on_connected()


def _feed(message: str | bytes) -> None:
    COUNT["n"] += 1
    actions = CLIENT.receive(message)
    assert isinstance(actions, list) and all(isinstance(a, Action.__args__) for a in actions)
    event = parse_server_event(message)
    assert isinstance(event, ServerEvent)
    actions = CLIENT.handle(event)  # the parser's output must be safe for every handler
    assert isinstance(actions, list)


@settings(max_examples=1_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(message=messages, rnd=st.randoms(use_true_random=False), also_user=st.sampled_from([None, "cancel", "play", "stop", "text", "reconnect"]))
def test_fuzz_server_events_never_raise(message, rnd, also_user):
    logging.disable(logging.CRITICAL)  # thousands of "skipped malformed event" warnings are expected
    try:
        _fresh_client_if_big()
        _feed(message)
        for _ in range(MUTATIONS_PER_EXAMPLE):
            message = mutate(message, rnd)
            _feed(message)
        # Interleave what the user and the adapters do, so events meet every state.
        if also_user == "cancel":
            CLIENT.cancel_response()
        elif also_user == "play" and CLIENT.conversation.last_item_id:
            CLIENT.playback_started(CLIENT.conversation.last_item_id)
        elif also_user == "stop":
            CLIENT.playback_stopped(CLIENT.audible_item, 120)
        elif also_user == "text":
            CLIENT.send_text("hello")
        elif also_user == "reconnect":
            CLIENT.on_disconnected()
            CLIENT.on_connected()
            CLIENT.reseed_context()
    finally:
        logging.disable(logging.NOTSET)


def test_huge_messages_are_skipped():
    client = RealtimeClient()
    client.on_connected()
    logging.disable(logging.CRITICAL)
    try:
        for message in huge_messages():
            assert isinstance(client.receive(message), list)
            assert isinstance(client.handle(parse_server_event(message)), list)
    finally:
        logging.disable(logging.NOTSET)
    assert client.skipped_events >= 5


def test_fuzz_ran_and_bad_input_was_skipped():
    """Runs after the fuzz test. A handler bug would have raised in `handle` above, which has no safety net;
    malformed input was counted as skipped."""
    assert COUNT["n"] >= 10_000
    assert COUNT["skipped"] + CLIENT.skipped_events > 0
    assert isinstance(parse_server_event('{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "!!"}'), MalformedEvent)
