"""Unit tests of desktop.core.realtime_client.RealtimeClient, driven by scripted server events (no I/O).

Every server event the tests feed in is itself checked against the openai SDK's GA types (so the
scripts are realistic), and every client event the core asks to send is checked by the protocol oracle.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.core import events as ev
from desktop.core.actions import (
    BargeInHappened,
    DiscardAudio,
    ItemChanged,
    Notice,
    PlayAudio,
    Send,
    SessionChanged,
    SpeechBoundary,
    StateChanged,
    StopPlayback,
    TurnState,
)
from desktop.core.realtime_client import MIN_COMMIT_MS, RealtimeClient
from desktop.core.session_config import ManualTurns, SemanticVad, ServerVad, SessionConfig
from tests.protocol_oracle import validate_client_event, validate_server_event

RATE = 24000


# ----------------------------------------------------------------------------- helpers


class ScriptedServer:
    """Builds GA server events (validated by the oracle) with unique event ids."""

    def __init__(self, validate: bool = True) -> None:
        self.n = 0
        self.validate = validate

    def event(self, type_: str, **body: Any) -> dict[str, Any]:
        self.n += 1
        event = {"type": type_, "event_id": f"event_{self.n}", **body}
        if self.validate:
            validate_server_event(event)
        return event

    def session_updated(self, config: SessionConfig) -> dict[str, Any]:
        return self.event("session.updated", session=config.to_wire())

    def speech_started(self, item_id: str, ms: int = 1000) -> dict[str, Any]:
        return self.event("input_audio_buffer.speech_started", audio_start_ms=ms, item_id=item_id)

    def committed(self, item_id: str, previous: str | None) -> dict[str, Any]:
        return self.event("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)

    def user_item_added(self, item_id: str, previous: str | None) -> dict[str, Any]:
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        return self.event("conversation.item.added", item=item, previous_item_id=previous)

    def transcription(self, item_id: str, text: str) -> dict[str, Any]:
        return self.event("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0,
                          transcript=text, usage={"type": "duration", "seconds": 1.0})

    def response_created(self, rid: str) -> dict[str, Any]:
        return self.event("response.created", response={"id": rid, "object": "realtime.response",
                                                        "status": "in_progress", "output": []})

    def assistant_item(self, rid: str, item_id: str, previous: str | None) -> list[dict[str, Any]]:
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        return [self.event("response.output_item.added", response_id=rid, output_index=0, item=item),
                self.event("conversation.item.added", item=item, previous_item_id=previous)]

    def audio_delta(self, rid: str, item_id: str, ms: int = 100, level: int = 3000) -> dict[str, Any]:
        pcm = (np.sin(np.arange(ms * RATE // 1000) * 0.05) * level).astype("<i2")
        return self.event("response.output_audio.delta", response_id=rid, item_id=item_id, output_index=0,
                          content_index=0, delta=base64.b64encode(pcm.tobytes()).decode("ascii"))

    def transcript_delta(self, rid: str, item_id: str, text: str) -> dict[str, Any]:
        return self.event("response.output_audio_transcript.delta", response_id=rid, item_id=item_id,
                          output_index=0, content_index=0, delta=text)

    def response_done(self, rid: str, status: str = "completed", reason: str | None = None) -> dict[str, Any]:
        details = {"type": status, "reason": reason} if reason else None
        return self.event("response.done", response={"id": rid, "object": "realtime.response", "status": status,
                                                     "status_details": details, "output": []})


def sends(actions: list) -> list[dict[str, Any]]:
    events = [a.event for a in actions if isinstance(a, Send)]
    for event in events:
        validate_client_event(event)
    return events


def of_type(actions: list, cls: type) -> list:
    return [a for a in actions if isinstance(a, cls)]


def pcm_ms(ms: int, level: int = 2000) -> np.ndarray:
    return (np.sin(np.arange(ms * RATE // 1000) * 0.1) * level).astype("<i2")


def connect(td, transcription: str | None = "gpt-4o-mini-transcribe") -> tuple[RealtimeClient, ScriptedServer]:
    config = SessionConfig(turn_detection=td, transcription_model=transcription)
    client = RealtimeClient(config, ev.ClientEvents(ev.EventIds("t")))
    server = ScriptedServer()
    first = client.on_connected()
    (update,) = sends(first)
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["input"]["turn_detection"] == td.to_wire()
    assert StateChanged(TurnState.LISTENING) in first
    actions = client.receive(json.dumps(server.session_updated(config)))
    assert actions == [SessionChanged(())]
    return client, server


def start_speaking_answer(client: RealtimeClient, server: ScriptedServer, rid="resp_1", item="item_a1",
                          user="item_u1", chunks: int = 6) -> list:
    """A user turn, then an assistant answer streaming `chunks` × 100 ms of audio."""
    client.receive(server.committed(user, None))
    client.receive(server.user_item_added(user, None))
    client.receive(server.response_created(rid))
    for event in server.assistant_item(rid, item, user):
        client.receive(event)
    played = []
    for _ in range(chunks):
        played += client.receive(server.audio_delta(rid, item, 100))
    return played


# ----------------------------------------------------------------------------- barge-in


def test_barge_in_with_server_vad_truncates_to_what_was_heard_and_does_not_cancel():
    client, server = connect(ServerVad(interrupt_response=True))
    played = start_speaking_answer(client, server)
    plays = of_type(played, PlayAudio)
    assert len(plays) == 6 and all(p.item_id == "item_a1" and p.response_id == "resp_1" for p in plays)
    assert all(len(p.pcm16) == 2400 for p in plays)
    assert client.conversation.get("item_a1").audio_received_ms == 600

    assert client.playback_started("item_a1") == [StateChanged(TurnState.ASSISTANT_SPEAKING)]
    actions = client.receive(server.speech_started("item_u2", 2000))
    assert SpeechBoundary(True, 2000, "item_u2") in actions
    assert StopPlayback("server_vad") in actions
    assert DiscardAudio("item_a1") in actions
    assert sends(actions) == []  # the server cancels by itself: no response.cancel
    assert client.state == TurnState.USER_SPEAKING

    stopped = client.playback_stopped("item_a1", 450)
    (truncate,) = sends(stopped)
    assert truncate["type"] == "conversation.item.truncate"
    assert (truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == ("item_a1", 0, 450)
    assert BargeInHappened("item_a1", 450, 600, "playback") in stopped
    assert client.conversation.get("item_a1").truncated_at_ms == 450

    # Late audio of the interrupted response is dropped.
    late = client.receive(server.audio_delta("resp_1", "item_a1", 100))
    assert of_type(late, PlayAudio) == []
    assert client.conversation.get("item_a1").audio_received_ms == 600

    done = client.receive(server.response_done("resp_1", "cancelled", "turn_detected"))
    assert sends(done) == []
    assert client.active_response is None
    assert client.conversation.get("item_a1").status == "cancelled"


def test_truncate_is_capped_at_audio_received():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server, chunks=3)
    client.playback_started("item_a1")
    client.receive(server.speech_started("item_u2"))
    # The playback adapter claims more than was ever received (clock skew): cap at 300 ms.
    (truncate,) = sends(client.playback_stopped("item_a1", 5000))
    assert truncate["audio_end_ms"] == 300


def test_barge_in_with_manual_turns_cancels_the_response():
    client, server = connect(ManualTurns(), transcription=None)
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    actions = client.cancel_response()
    assert StopPlayback("user") in actions
    (cancel,) = sends(actions)
    assert cancel["type"] == "response.cancel"
    (truncate,) = sends(client.playback_stopped("item_a1", 250))
    assert truncate["audio_end_ms"] == 250
    # A second press while the cancel is on its way sends no second response.cancel.
    assert [e["type"] for e in sends(client.cancel_response())] == []


def test_speech_started_with_manual_turns_also_cancels():
    client, server = connect(ManualTurns(), transcription=None)
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    actions = client.receive(server.speech_started("item_u2"))
    assert StopPlayback("server_vad") in actions
    assert [e["type"] for e in sends(actions)] == ["response.cancel"]


def test_barge_in_with_interrupt_response_false_cancels_itself():
    client, server = connect(ServerVad(interrupt_response=False))
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    actions = client.receive(server.speech_started("item_u2"))
    assert [e["type"] for e in sends(actions)] == ["response.cancel"]


def test_no_truncate_when_nothing_was_played():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    client.receive(server.speech_started("item_u2"))
    stopped = client.playback_stopped("item_a1", 0)
    assert sends(stopped) == []
    assert BargeInHappened("item_a1", 0, 600, "playback") in stopped


def test_barge_in_after_response_done_still_truncates_but_never_cancels():
    client, server = connect(ManualTurns(), transcription=None)
    start_speaking_answer(client, server)
    client.receive(server.response_done("resp_1"))
    assert client.active_response is None
    client.playback_started("item_a1")  # audio still playing from the buffer
    actions = client.cancel_response()
    assert StopPlayback("user") in actions
    assert sends(actions) == []  # nothing live to cancel
    (truncate,) = sends(client.playback_stopped("item_a1", 320))
    assert truncate["audio_end_ms"] == 320


def test_speech_while_nobody_talks_changes_only_the_state():
    client, server = connect(ServerVad())
    actions = client.receive(server.speech_started("item_u1", 40))
    assert of_type(actions, StopPlayback) == [] and sends(actions) == []
    assert actions == [SpeechBoundary(True, 40, "item_u1"), StateChanged(TurnState.USER_SPEAKING)]


# ----------------------------------------------------------------------------- responses and turns


def test_response_create_while_live_is_deferred_until_response_done():
    client, server = connect(ManualTurns(), transcription=None)
    client.receive(server.response_created("resp_1"))
    assert client.request_response() == []
    # A typed message goes out at once; its response.create waits.
    assert [e["type"] for e in sends(client.send_text("Hello?"))] == ["conversation.item.create"]
    done = sends(client.receive(server.response_done("resp_1")))
    assert [e["type"] for e in done] == ["response.create"]
    # Only one deferred request is kept.
    assert sends(client.receive(server.response_done("resp_1"))) == []


def test_response_create_when_idle_is_sent_at_once():
    client, _ = connect(ManualTurns(), transcription=None)
    (create,) = sends(client.request_response({"output_modalities": ["text"]}))
    assert create["type"] == "response.create" and create["response"] == {"output_modalities": ["text"]}


def test_commit_turn_with_too_little_audio_gives_a_notice_and_sends_nothing():
    client, _ = connect(ManualTurns(), transcription=None)
    appended = sends(client.append_audio(pcm_ms(60)))
    assert [e["type"] for e in appended] == ["input_audio_buffer.append"]
    actions = client.commit_turn()
    assert sends(actions) == []
    (notice,) = of_type(actions, Notice)
    assert str(MIN_COMMIT_MS) in notice.message
    # Enough audio: commit and response.create.
    client.append_audio(pcm_ms(60))
    assert [e["type"] for e in sends(client.commit_turn())] == ["input_audio_buffer.commit", "response.create"]
    assert client.uncommitted_ms == 0
    # Clear resets the count too.
    client.append_audio(pcm_ms(200))
    assert [e["type"] for e in sends(client.clear_input())] == ["input_audio_buffer.clear"]
    assert sends(client.commit_turn()) == []


def test_append_audio_round_trips_pcm():
    client, _ = connect(ServerVad())
    pcm = pcm_ms(20)
    (append,) = sends(client.append_audio(pcm))
    assert np.array_equal(np.frombuffer(base64.b64decode(append["audio"]), dtype="<i2"), pcm)
    assert client.append_audio(np.zeros(0, dtype="<i2")) == []


def test_nothing_is_sent_when_disconnected():
    client = RealtimeClient(SessionConfig(turn_detection=ManualTurns()))
    assert client.append_audio(pcm_ms(200)) == []
    assert sends(client.commit_turn()) == []
    assert of_type(client.send_text("hi"), Notice)


def test_send_text_creates_item_and_response():
    client, _ = connect(ServerVad())
    out = sends(client.send_text("  What is the time?  "))
    assert [e["type"] for e in out] == ["conversation.item.create", "response.create"]
    assert out[0]["item"]["content"] == [{"type": "input_text", "text": "What is the time?"}]
    assert client.send_text("   ") == []


def test_error_event_becomes_a_notice_naming_the_cause():
    client, server = connect(ManualTurns(), transcription=None)
    client.append_audio(pcm_ms(150))
    commit = sends(client.commit_turn(create_response=False))[0]
    error = server.event("error", error={"type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
                                         "message": "buffer too small", "param": None, "event_id": commit["event_id"]})
    (notice,) = client.receive(error)
    assert isinstance(notice, Notice)
    assert notice.level == "error" and notice.code == "input_audio_buffer_commit_empty"
    assert "input_audio_buffer.commit" in notice.message and "buffer too small" in notice.message
    assert client.last_error is not None and client.last_error.caused_by == commit["event_id"]
    # An error about an event we did not send names no cause.
    other = server.event("error", error={"type": "server_error", "message": "oops", "event_id": "evt_unknown"})
    (notice2,) = client.receive(other)
    assert "after" not in notice2.message and "oops" in notice2.message


def test_session_updated_reports_values_the_server_did_not_take():
    client, server = connect(ServerVad(silence_duration_ms=500))
    changed = client.receive(server.session_updated(SessionConfig(turn_detection=ServerVad(silence_duration_ms=800))))
    (change,) = of_type(changed, SessionChanged)
    assert any("silence_duration_ms" in d and "800" in d for d in change.differences)
    manual = client.receive(server.session_updated(SessionConfig(turn_detection=SemanticVad())))
    assert any("turn detection" in d for d in of_type(manual, SessionChanged)[0].differences)


# ----------------------------------------------------------------------------- conversation order


def test_user_transcript_after_answer_started_is_placed_before_the_answer():
    client, server = connect(ServerVad())
    client.receive(server.speech_started("item_u1", 100))
    client.receive(server.event("input_audio_buffer.speech_stopped", audio_end_ms=1500, item_id="item_u1"))
    client.receive(server.committed("item_u1", None))
    client.receive(server.response_created("resp_1"))
    for event in server.assistant_item("resp_1", "item_a1", "item_u1"):
        client.receive(event)
    client.receive(server.transcript_delta("resp_1", "item_a1", "It is "))
    client.receive(server.transcript_delta("resp_1", "item_a1", "noon."))
    # The user's transcript arrives only now.
    actions = client.receive(server.transcription("item_u1", " What time is it? "))
    assert ItemChanged("item_u1") in actions
    items = client.conversation.items
    assert [i.item_id for i in items] == ["item_u1", "item_a1"]
    assert (items[0].role, items[0].text, items[0].text_final) == ("user", "What time is it?", True)
    assert (items[1].role, items[1].text) == ("assistant", "It is noon.")
    # The server VAD's span of the spoken turn is kept with it (the transcript shows how long it heard you).
    assert (items[0].audio_start_ms, items[0].audio_end_ms) == (100, 1500)


def test_second_turn_arriving_before_its_predecessor_is_moved_into_place():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server, chunks=1)
    client.receive(server.response_done("resp_1"))
    # The answer to turn 2 is announced before turn 2's commit reached us.
    for event in server.assistant_item("resp_2", "item_a2", "item_u2"):
        client.receive(event)
    assert [i.item_id for i in client.conversation][-1] == "item_a2"
    client.receive(server.committed("item_u2", "item_a1"))
    assert [i.item_id for i in client.conversation] == ["item_u1", "item_a1", "item_u2", "item_a2"]


def test_item_truncated_and_deleted_events_update_the_conversation():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    truncated = client.receive(server.event("conversation.item.truncated", item_id="item_a1", content_index=0,
                                            audio_end_ms=300))
    assert truncated == [ItemChanged("item_a1")]
    assert client.conversation.get("item_a1").truncated_at_ms == 300
    deleted = client.receive(server.event("conversation.item.deleted", item_id="item_u1"))
    assert [type(a).__name__ for a in deleted] == ["ItemRemoved"]
    assert "item_u1" not in client.conversation


# ----------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "message",
    [
        "{not json",
        b"\x80\x81",
        "[]",
        "42",
        '{"no_type": true}',
        '{"type": "input_audio_buffer.speech_started"}',
        '{"type": "input_audio_buffer.speech_started", "audio_start_ms": "100", "item_id": "i"}',
        '{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "!!!"}',
        '{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "AAAA"}',
        '{"type": "conversation.item.added", "item": "nope"}',
        '{"type": "response.done", "response": null}',
    ],
)
def test_malformed_events_are_skipped_and_counted(message):
    client, server = connect(ServerVad())
    start_speaking_answer(client, server, chunks=1)
    before = list(client.conversation)
    assert client.skipped_events == 0
    actions = client.receive(message)
    assert actions == []
    assert client.skipped_events == 1
    assert list(client.conversation) == before
    # Still usable afterwards.
    assert of_type(client.receive(server.audio_delta("resp_1", "item_a1")), PlayAudio)


KNOWN_TYPES = sorted(set(ev._EVENT_CLASSES) | set(ev.LIFECYCLE_TYPES) | set(ev.BETA_ALIASES))
FIELD_NAMES = ["type", "event_id", "item_id", "previous_item_id", "response_id", "response", "item", "delta",
               "audio_start_ms", "audio_end_ms", "transcript", "text", "error", "session", "content_index",
               "output_index", "rate_limits", "status", "id", "role", "content", "status_details"]
json_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars | st.sampled_from(["item_u1", "item_a1", "resp_1", "AAAA", "cancelled", "assistant", "user"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), children, max_size=5),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KNOWN_TYPES),
       body=st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8),
       as_text=st.booleans())
def test_arbitrary_events_of_known_types_never_break_the_client(kind, body, as_text):
    client = RealtimeClient(SessionConfig(), ev.ClientEvents(ev.EventIds("h")))
    client.on_connected()
    server = ScriptedServer(validate=False)  # the same script is validated in the tests above
    client.receive(server.committed("item_u1", None))
    client.receive(server.response_created("resp_1"))
    for event in server.assistant_item("resp_1", "item_a1", "item_u1"):
        client.receive(event)
    client.playback_started("item_a1")
    message = {**body, "type": kind}
    # handle() itself must not raise (receive() would hide a handler bug behind a Notice).
    client.handle(ev.parse_server_event(dict(message)))
    actions = client.receive(json.dumps(message) if as_text else message)
    assert not any(isinstance(a, Notice) and "could not handle" in a.message for a in actions)
    for event in sends(actions):  # anything it decides to send is still valid
        assert event["type"]


def test_reply_latency_is_kept_with_the_answer():
    client, server = connect(ServerVad())
    client.receive(server.response_created("resp_1"))
    for event in server.assistant_item("resp_1", "item_a1", None):
        client.receive(event)
    assert client.reply_latency("item_a1", 412) == [ItemChanged("item_a1")]
    assert client.conversation.get("item_a1").reply_latency_ms == 412
    assert client.reply_latency("item_unknown", 50) == []


def test_deleting_a_turn_sends_one_delete_and_refuses_an_answer_still_going():
    client = RealtimeClient()
    server = ScriptedServer()
    assert client.delete_item("anything")[0].message.startswith("Not connected")
    client.on_connected()
    client.receive(server.committed("u1", None))
    client.receive(server.user_item_added("u1", None))
    client.receive(server.response_created("r1"))
    for event in server.assistant_item("r1", "a1", "u1"):
        client.receive(event)
    refused = client.delete_item("a1")
    assert not sends(refused) and "still going" in refused[0].message
    assert sends(client.delete_item("unknown")) == []
    deleted = sends(client.delete_item("u1"))
    assert [e["type"] for e in deleted] == ["conversation.item.delete"] and deleted[0]["item_id"] == "u1"
    for event in deleted:
        validate_client_event(event)
    client.receive(server.response_done("r1"))
    assert [e["item_id"] for e in sends(client.delete_item("a1"))] == ["a1"]  # done: it can go now
    client.receive(server.event("conversation.item.deleted", item_id="u1"))
    assert client.conversation.get("u1") is None and client.conversation.get("a1") is not None


def test_stopping_an_answer_whose_response_has_ended_goes_back_to_listening():
    """All of the answer was generated (response.done came), it is still playing, the user presses stop: the
    state goes back to listening (no later event would end the interruption)."""
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    client.receive(server.response_done("resp_1"))
    assert client.active_response is None and client.state == TurnState.ASSISTANT_SPEAKING
    actions = client.cancel_response()
    assert of_type(actions, StopPlayback) and client.state == TurnState.INTERRUPTED
    after = client.playback_stopped("item_a1", 300)
    assert StateChanged(TurnState.LISTENING) in after and client.state == TurnState.LISTENING
