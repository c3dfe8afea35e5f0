"""End to end without the window: LiveSession starts the real engine process, speaks a WAV fixture into it
over a real WebSocket on 127.0.0.1, and gets the user's transcript and a spoken answer back."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from desktop.core.actions import TurnState
from desktop.core.pcm import rms_dbfs
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions, Timing
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event

pytestmark = pytest.mark.slow

MANIFEST = json.loads((AUDIO / "manifest.json").read_text())


def _key_words(name: str) -> list[str]:
    entry = MANIFEST[name] if isinstance(MANIFEST, dict) else next(e for e in MANIFEST if e["file"] == name)
    return [w.lower() for w in entry["key_words"]]


async def _converse(fixture: str, timeout: float = 40.0):
    session = LiveSession(
        SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / fixture), use_speaker=False)
    )
    session.record_sent = True
    audio: dict[str, list[np.ndarray]] = {}
    session.output_taps.append(lambda item_id, pcm: audio.setdefault(item_id, []).append(pcm))
    notes: list = []
    session.subscribe(notes.append)
    assert await session.start(), session.status
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = session.client.conversation.items
            assistant = [i for i in items if i.role == "assistant" and i.text_final]
            users = [i for i in items if i.role == "user" and i.text_final]
            if assistant and users and session.client.state == TurnState.LISTENING and not session.playback.is_playing():
                break
            await asyncio.sleep(0.1)
    finally:
        await session.stop()
    return session, audio, notes


def test_spoken_turn_gets_transcript_and_spoken_answer():
    session, audio, notes = asyncio.run(_converse("hello_weather.wav"))
    items = session.client.conversation.items
    roles = [i.role for i in items]
    assert roles[:2] == ["user", "assistant"], roles
    user, assistant = items[0], items[1]
    # The user's words, recognised by the engine's real recogniser.
    said = user.text.lower()
    assert all(w in said for w in _key_words("hello_weather.wav")), user.text
    assert assistant.text and assistant.text_final
    # A spoken answer: non-silent PCM whose length fits its transcript (speech runs ~8-25 chars/s).
    pcm = np.concatenate(audio[assistant.item_id])
    seconds = len(pcm) / 24000
    assert rms_dbfs(pcm) > -35.0
    chars_per_second = len(assistant.text) / seconds
    assert 6 < chars_per_second < 30, (seconds, assistant.text)
    # All of it was played (through the device-less output clock) and nothing was cut.
    assert session.playback.played_ms(assistant.item_id) >= assistant.audio_received_ms - 300
    # Every client event we sent is a valid GA event by the official SDK's types.
    assert session.sent_events, "nothing was sent"
    types = {e["type"] for e in session.sent_events}
    assert {"session.update", "input_audio_buffer.append"} <= types
    for event in session.sent_events:
        validate_client_event(event)
    timings = {n.name: n.seconds for n in notes if isinstance(n, Timing)}
    assert "connect" in timings and "speech_end_to_first_audio" in timings


def test_typed_message_gets_spoken_answer():
    async def scenario():
        session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False))
        session.record_sent = True
        assert await session.start()
        try:
            session.send_text("Please repeat after me: purple elephants dance.")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done = [i for i in session.client.conversation if i.role == "assistant" and i.text_final]
                if done:
                    break
                await asyncio.sleep(0.1)
        finally:
            await session.stop()
        return session

    session = asyncio.run(scenario())
    items = session.client.conversation.items
    assert [i.role for i in items][:2] == ["user", "assistant"]
    assert items[0].text == "Please repeat after me: purple elephants dance."
    assert "purple elephants dance" in items[1].text.lower()
    for event in session.sent_events:
        validate_client_event(event)
    assert [e["type"] for e in session.sent_events if e["type"] != "input_audio_buffer.append"][-2:] == [
        "conversation.item.create",
        "response.create",
    ]
