"""Dynamic silence rules on a live session's client: the server's events in, the session.update events out.

No socket is needed to check the wiring: the server's messages are fed to `LiveSession._on_message` exactly
as the transport would, and the client events the session would send are recorded and validated.
"""

from __future__ import annotations

import json

from desktop.core.session_config import ServerVad
from desktop.core.turn_taking import TurnSettings
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.turn_controller import SilenceOverride
from tests.protocol_oracle import validate_client_event


def _session(settings: TurnSettings) -> tuple[LiveSession, list]:
    session = LiveSession(SessionOptions(choose_provider(environ={}), turn_settings=settings, use_speaker=False))
    session.record_sent = True
    notes: list = []
    session.subscribe(notes.append)
    session._apply(session.client.on_connected())
    return session, notes


def _server(session: LiveSession, **event) -> None:
    session._on_message(json.dumps(event))


def _silences(session: LiveSession) -> list[int | None]:
    out = []
    for e in session.sent_events:
        if e["type"] == "session.update":
            validate_client_event(e)
            td = e["session"]["audio"]["input"]["turn_detection"]
            out.append(td.get("silence_duration_ms") if td else None)
    return out


def _user_turn(session: LiveSession, item_id: str, said: str) -> None:
    _server(session, type="input_audio_buffer.speech_started", event_id="s1", audio_start_ms=0, item_id=item_id)
    _server(session, type="input_audio_buffer.speech_stopped", event_id="s2", audio_end_ms=900, item_id=item_id)
    _server(session, type="input_audio_buffer.committed", event_id="s3", item_id=item_id, previous_item_id=None)
    _server(session, type="conversation.item.input_audio_transcription.completed", event_id="s4", item_id=item_id,
            content_index=0, transcript=said)


def test_let_me_think_waits_longer_for_one_turn_then_returns_to_the_profile():
    session, notes = _session(TurnSettings().with_profile("balanced"))
    assert _silences(session) == [500]
    _user_turn(session, "item_u1", "Which pizza do I want? Hmm, let me think.")
    assert _silences(session) == [500, 2000]
    assert session.client.requested.turn_detection == ServerVad(silence_duration_ms=2000)
    overrides = [n for n in notes if isinstance(n, SilenceOverride)]
    assert overrides[-1].silence_ms == 2000 and "let me think" in overrides[-1].reason
    _user_turn(session, "item_u2", "The margherita, please.")
    assert _silences(session) == [500, 2000, 500]  # that turn ended: back to the profile
    assert "back to the profile" in [n for n in notes if isinstance(n, SilenceOverride)][-1].reason


def test_yes_no_question_shortens_the_reply_turn():
    session, _ = _session(TurnSettings().with_profile("patient"))
    _server(session, type="response.output_audio_transcript.done", event_id="s5", item_id="item_a1",
            response_id="resp_1", output_index=0, content_index=0, transcript="I found a timer. Shall I cancel it?")
    assert _silences(session) == [800, 300]
    _user_turn(session, "item_u1", "Yes.")
    assert _silences(session) == [800, 300, 800]


def test_rules_off_or_other_modes_leave_silence_alone():
    session, _ = _session(TurnSettings(dynamic_rules=False))
    _user_turn(session, "item_u1", "let me think")
    assert _silences(session) == [500]
    session, _ = _session(TurnSettings(detection="semantic_vad"))
    _user_turn(session, "item_u1", "let me think")
    assert _silences(session) == [None]  # semantic VAD has no silence duration to change


def test_a_session_made_by_code_keeps_its_own_turn_detection():
    """No turn settings: the config's VAD stands (threshold 1.0 here), no rule rewrites it, and a manual
    config streams all audio for the caller to commit."""
    import numpy as np

    from desktop.core.session_config import ManualTurns, SessionConfig

    config = SessionConfig(turn_detection=ServerVad(threshold=1.0, silence_duration_ms=700))
    session = LiveSession(SessionOptions(choose_provider(environ={}), config=config, use_speaker=False))
    session.record_sent = True
    session._apply(session.client.on_connected())
    _server(session, type="response.output_audio_transcript.done", event_id="s5", item_id="item_a1",
            response_id="resp_1", output_index=0, content_index=0, transcript="Shall I go on?")
    _user_turn(session, "item_u1", "let me think")
    assert _silences(session) == [700]
    assert session.client.requested.turn_detection == ServerVad(threshold=1.0, silence_duration_ms=700)

    manual = LiveSession(SessionOptions(choose_provider(environ={}), config=SessionConfig(turn_detection=ManualTurns()),
                                        use_speaker=False))
    manual.record_sent = True
    manual._apply(manual.client.on_connected())
    manual._apply(manual.turns.on_input_audio(np.full(2400, 100, dtype=np.int16)))
    assert [e["type"] for e in manual.sent_events] == ["session.update", "input_audio_buffer.append"]
    assert manual.sent_events[0]["session"]["audio"]["input"]["turn_detection"] is None
