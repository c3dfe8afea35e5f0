"""Wake word and client-side semantic turns in the window against the real engine, switched mid-conversation
without reconnecting: speech before the wake phrase never produces a turn (it never even leaves the machine);
the command after it is answered; then, in semantic mode, a pause after a plain sentence does not end the turn
when the user goes on, and a completion cue ("that is all for now") answers at once."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

import numpy as np
import pytest

from desktop.audio.file_source import read_wav_24k
from desktop.core.session_config import ManualTurns
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.protocol_oracle import validate_client_event
from tests.turn_audio import load, ms, quiet, speech, wait_until, write

pytestmark = pytest.mark.slow


@pytest.fixture
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    Settings._shared.clear()
    yield
    Settings._shared.clear()


def test_wake_word_then_semantic_turns_without_reconnecting(qtbot, qasync_loop, private_config, tmp_path):
    wake = load("hey_parley.wav")
    parts = [quiet(800), speech("set_timer.wav"), quiet(2500, 1), wake, speech("what_time.wav"), quiet(8000, 2),
             speech("set_timer.wav"), quiet(600, 3), speech("thank_you.wav"), quiet(12000, 4)]
    starts = np.cumsum([0.0] + [ms(p) for p in parts])
    phrase_start, semantic_start = starts[3], starts[6]
    wav = write(tmp_path / "wake_then_semantic.wav", np.concatenate(parts))

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    dock = window.turn_ui.dock
    # On a loaded CI machine the engine's transcript can take seconds: let it decide, not the safety timeout.
    dock.set_settings(replace(dock.settings(), semantic_transcript_wait_ms=30_000))
    dock.mode.setCurrentIndex(dock.mode.findData("wake_word"))
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=wav, use_speaker=False))
    session.record_sent = True
    window.attach(session)
    seen = [0]
    session.turns.input_taps.append(lambda chunk: seen.__setitem__(0, seen[0] + len(chunk)))
    switched_at: list[int] = []

    def users():
        return [i for i in session.client.conversation if i.role == "user"]

    def clock_ms() -> float:
        return seen[0] * 1000 / 24000

    async def scenario():
        assert await session.start()
        assert await wait_until(lambda: session.client.effective is not None
                                and session.client.effective.turn_detection == ManualTurns(), 5)
        assert "pocketsphinx" in dock.detector_label.text()
        assert await wait_until(lambda: any(e["type"] == "input_audio_buffer.commit" for e in session.sent_events), 20)
        assert session.turns.wake.wakes == 1
        # Switch to client-side semantic turns mid-conversation (same connection).
        assert await wait_until(lambda: clock_ms() > starts[5] + 1000, 15)
        switched_at.append(len(session.sent_events))
        dock.mode.setCurrentIndex(dock.mode.findData("client_semantic"))
        assert clock_ms() < semantic_start - 300, "the wake-word answer took too long for the fixture"
        assert await wait_until(lambda: any("thank" in u.text.lower() for u in users() if u.text_final), 45), (
            [(u.text, u.text_final) for u in users()], session.turns.semantic.decisions, clock_ms())
        assert await wait_until(lambda: any(e["type"] == "response.create" for e in session.sent_events[switched_at[0]:]), 10)
        await asyncio.sleep(1.0)  # nothing else may follow
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    sent = session.sent_events
    for event in sent:
        validate_client_event(event)
    assert session.transport is not None and session.drops == 0  # one connection throughout

    # Wake phase: a clear, then only audio from after the phrase; one command, answered.
    wake_events = sent[: switched_at[0]]
    types = [e["type"] for e in wake_events if e["type"] != "input_audio_buffer.append"]
    first_append = next(i for i, e in enumerate(wake_events) if e["type"] == "input_audio_buffer.append")
    assert any(e["type"] == "input_audio_buffer.clear" for e in wake_events[:first_append])
    assert types.count("input_audio_buffer.commit") == 1 and types.count("response.create") == 1, types
    stream = np.concatenate([np.frombuffer(base64.b64decode(e["audio"]), "<i2") for e in wake_events
                             if e["type"] == "input_audio_buffer.append"])
    audio = read_wav_24k(wav)
    k = int(np.flatnonzero(stream)[0])  # the fixture's phrase ends in digital silence: locate by the first sound
    probe = stream[k:k + 480]
    at = [int(i) - k for i in np.flatnonzero(audio == probe[0]) if np.array_equal(audio[i:i + 480], probe)]
    assert len(at) == 1 and at[0] * 1000 / 24000 > phrase_start + 400, (at, phrase_start)  # after "hey parley"
    command = users()[0].text.lower()
    assert "time" in command and "timer" not in command, command

    # Semantic phase: segments committed without responses; one response, after the completion cue.
    semantic_events = [e["type"] for e in sent[switched_at[0]:] if e["type"] != "input_audio_buffer.append"]
    # Both modes are manual turns (turn_detection null): no session.update, stale input cleared.
    assert semantic_events[0] == "input_audio_buffer.clear", semantic_events
    assert semantic_events.count("response.create") == 1, semantic_events
    commits_before_answer = semantic_events[: semantic_events.index("response.create")].count("input_audio_buffer.commit")
    assert commits_before_answer >= 1
    assert any("completion cue" in d for d in session.turns.semantic.decisions), session.turns.semantic.decisions
    later = " ".join(u.text.lower() for u in users()[1:])
    assert "timer" in later and "thank" in later, later
