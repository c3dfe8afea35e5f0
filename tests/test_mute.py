"""Audio → Mute microphone (Ctrl+M) with the real engine: while muted the model gets silence (the audio
clock goes on), nothing the user says becomes a turn, and the window says so until Ctrl+M unmutes."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop.core.actions import TurnState
from tests.conftest import AUDIO
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def _appended(session) -> list[np.ndarray]:
    return [np.frombuffer(base64.b64decode(e["audio"]), dtype="<i2") for e in session.sent_events
            if e["type"] == "input_audio_buffer.append"]


def test_muted_microphone_sends_silence_and_makes_no_turn(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "what_time.wav"))

    async def scenario():
        window.mute_action.trigger()  # muted before the question is played in
        assert session.muted and window.mute_action.isChecked()
        assert await session.start(), session.status
        assert await wait_until(lambda: session.client.state == TurnState.LISTENING and "Muted" in window.state_label.text(), 10)
        sent_before = len(_appended(session))
        await __import__("asyncio").sleep(4.0)  # the whole fixture (1.5 s of speech) plays meanwhile
        chunks = _appended(session)[sent_before:]
        assert len(chunks) > 100 and all(not c.any() for c in chunks)  # silence, sent at the microphone's pace
        assert not any(i.role == "user" for i in session.client.conversation)
        qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)  # Ctrl+M: unmute
        assert not session.muted and "Muted" not in window.state_label.text()
        await session.stop()

    qasync_loop.run_until_complete(scenario())
