"""The window opens, starts the embedded engine, connects, and shows both sides of a spoken turn."""

from __future__ import annotations

import time

import pytest

from desktop.core.actions import TurnState
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.ui.main_window import MainWindow
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until as _wait_until

pytestmark = pytest.mark.slow




def test_window_connects_and_shows_both_transcripts(qtbot, qasync_loop):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "what_time.wav"), use_speaker=False))
    session.record_sent = True
    window.attach(session)
    levels: list[float] = []
    session.subscribe(lambda n: levels.append(n.dbfs) if type(n).__name__ == "InputLevel" else None)

    async def scenario():
        t0 = time.perf_counter()
        assert await session.start()
        connect_s = time.perf_counter() - t0
        assert "Connected to offline engine" in window.connection_label.text()
        answered = await _wait_until(
            lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation)
            and any(i.role == "user" and i.text_final for i in session.client.conversation),
            40,
        )
        await _wait_until(lambda: session.client.state == TurnState.LISTENING, 15)
        text = window.transcript_text()
        await session.stop()
        return answered, text, connect_s

    answered, text, connect_s = qasync_loop.run_until_complete(scenario())
    assert answered, window.transcript_text()
    # Both sides, in order: the user's words, then the engine's answer about the time.
    assert "You" in text and "Assistant" in text
    user_at = text.lower().find("what time is it")
    answer_at = text.find("It is ")
    assert 0 <= user_at < answer_at, text
    # The level meter followed the input: loud during speech, quiet in the trailing silence.
    assert window.level_meter.updates > 20
    assert max(levels) > -30 and min(levels) < -60
    assert "no microphone" in window.devices_label.text() or "mic" in window.devices_label.text()
    for event in session.sent_events:
        validate_client_event(event)
