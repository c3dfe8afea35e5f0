"""The sent-audio tape: each spoken turn's audio, cut where the server (or our own commit) says it lies."""

from __future__ import annotations

import json

import numpy as np

from desktop.core.realtime_client import RealtimeClient
from desktop.core.turn_audio import SentAudioTape

MS = 24  # samples per ms at 24 kHz


def _ramp(start_ms: int, ms: int) -> np.ndarray:
    """Samples that say where they are: sample k of the whole stream holds k // MS (its ms), mod 30000."""
    k = np.arange(start_ms * MS, (start_ms + ms) * MS)
    return ((k // MS) % 30000).astype(np.int16)


def _feed(tape_or_client, from_ms: int, to_ms: int, step_ms: int = 20) -> None:
    for at in range(from_ms, to_ms, step_ms):
        chunk = _ramp(at, step_ms)
        if isinstance(tape_or_client, RealtimeClient):
            tape_or_client.append_audio(chunk)
        else:
            tape_or_client.appended(chunk)


def _event(client: RealtimeClient, type_: str, **fields) -> None:
    client.receive(json.dumps({"type": type_, "event_id": f"ev_{type_}", **fields}))


def test_a_server_vad_turn_is_cut_where_the_server_says_and_survives_a_reconnect():
    client = RealtimeClient()
    client.on_connected()
    _feed(client, 0, 3000)
    _event(client, "input_audio_buffer.speech_started", audio_start_ms=700, item_id="u1")
    _event(client, "input_audio_buffer.speech_stopped", audio_end_ms=2100, item_id="u1")
    _event(client, "input_audio_buffer.committed", item_id="u1", previous_item_id=None)
    audio = client.sent_audio.audio("u1")
    assert audio is not None and len(audio) == 1400 * MS
    assert audio[0] == 700 and audio[-1] == 2099
    # A reconnect: the new connection's clock starts at 0 where the tape stood (3000 ms of the stream).
    client.on_disconnected()
    client.on_connected()
    _feed(client, 3000, 5000)
    _event(client, "input_audio_buffer.speech_started", audio_start_ms=500, item_id="u2")
    _event(client, "input_audio_buffer.speech_stopped", audio_end_ms=1500, item_id="u2")
    _event(client, "input_audio_buffer.committed", item_id="u2", previous_item_id="u1")
    audio = client.sent_audio.audio("u2")
    assert audio is not None and audio[0] == 3500 and audio[-1] == 4499
    item_id, last = client.sent_audio.last_turn()
    assert item_id == "u2" and np.array_equal(last, audio)


def test_manual_turns_are_what_was_sent_since_the_last_commit_or_clear():
    client = RealtimeClient()
    client.on_connected()
    _feed(client, 0, 400)
    client.clear_input()  # Esc: what came before is not the next turn
    _feed(client, 400, 1400)
    client.commit_turn()
    _feed(client, 1400, 2000)
    client.commit_turn(create_response=False)
    _event(client, "input_audio_buffer.committed", item_id="p1", previous_item_id=None)
    _event(client, "input_audio_buffer.committed", item_id="p2", previous_item_id="p1")
    first, second = client.sent_audio.audio("p1"), client.sent_audio.audio("p2")
    assert first[0] == 400 and first[-1] == 1399 and len(first) == 1000 * MS
    assert second[0] == 1400 and second[-1] == 1999


def test_turns_older_than_the_tape_are_gone_and_a_new_conversation_forgets_them():
    tape = SentAudioTape(keep_s=2.0)
    tape.connected()
    _feed(tape, 0, 1000)
    tape.committed_manually()
    tape.committed("old")
    assert tape.audio("old") is not None
    _feed(tape, 1000, 3500)  # past the 2 s kept: the start of "old" is gone
    assert tape.audio("old") is None and tape.last_turn() is None
    tape.cleared()
    _feed(tape, 3500, 4000)
    tape.committed_manually()
    tape.committed("new")
    assert tape.audio("new")[0] == 3500 and tape.last_turn()[0] == "new"
    tape.forget()
    assert tape.last_turn() is None
    assert tape.audio("unknown") is None


def test_a_span_past_what_was_sent_is_cut_at_the_end():
    tape = SentAudioTape()
    tape.connected()
    _feed(tape, 0, 1000)
    tape.committed("u", (200, 5000))  # the server's clock ahead of ours (it counts audio still in flight)
    audio = tape.audio("u")
    assert audio[0] == 200 and audio[-1] == 999


def test_a_turn_made_of_a_sound_file_says_which():
    client = RealtimeClient()
    client.on_connected()
    _feed(client, 0, 1000)  # the room
    client.sent_audio.source_started("question.wav")
    _feed(client, 1000, 2500)
    client.sent_audio.source_ended()
    _feed(client, 2500, 3500)  # the room again
    # The server's span: 300 ms of prefix padding before the file, 500 ms of silence after its speech.
    _event(client, "input_audio_buffer.speech_started", audio_start_ms=700, item_id="f1")
    _event(client, "input_audio_buffer.speech_stopped", audio_end_ms=2900, item_id="f1")
    _event(client, "input_audio_buffer.committed", item_id="f1", previous_item_id=None)
    assert client.conversation.get("f1").spoken_from == "question.wav"
    # A turn spoken into the microphone after it is not the file's.
    _feed(client, 3500, 6000)
    _event(client, "input_audio_buffer.speech_started", audio_start_ms=3700, item_id="m1")
    _event(client, "input_audio_buffer.speech_stopped", audio_end_ms=5200, item_id="m1")
    _event(client, "input_audio_buffer.committed", item_id="m1", previous_item_id="f1")
    assert client.conversation.get("m1").spoken_from is None
    # Nor is one where the file was only a small part of what was said.
    client.sent_audio.source_started("blip.wav")
    _feed(client, 6000, 6200)
    client.sent_audio.source_ended()
    _feed(client, 6200, 8000)
    client.commit_turn()
    _event(client, "input_audio_buffer.committed", item_id="m2", previous_item_id="m1")
    assert client.conversation.get("m2").spoken_from is None
