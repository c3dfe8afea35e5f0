"""Recording the conversation's audio: both sides on the microphone's timeline, through the window, with the
real engine answering a spoken question (a WAV played as the microphone, in real time)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from desktop.audio.conversation_recorder import ConversationRecorder
from desktop.core.actions import Notice
from tests.conftest import AUDIO
from tests.waiting import wait_until
from tests.window_session import window_and_session


def _read(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 24000)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def test_both_sides_are_written_on_the_microphones_timeline(tmp_path):
    rec = ConversationRecorder(tmp_path / "a.wav", max_lag_ms=100)
    mic = (np.arange(480) % 100).astype(np.int16)
    rec.add_played(np.full(240, 0.5, dtype=np.float32))  # 10 ms played during the first 20 ms chunk
    rec.add_input(mic)
    rec.add_input(mic)  # nothing played meanwhile: silence on the right
    rec.add_played(np.full(24000, 0.25, dtype=np.float32))  # the speaker's clock runs 1 s ahead
    rec.add_input(mic)
    assert rec.dropped_played == 24000 - 480 - 2400  # only 100 ms of lag is kept
    assert rec.close() == pytest.approx((3 * 480 + 2400) / 24000)
    frames = _read(tmp_path / "a.wav")
    assert np.array_equal(frames[:480, 0], mic) and np.array_equal(frames[480:960, 0], mic)
    assert np.all(frames[:240, 1] == 16383) and np.all(frames[240:960, 1] == 0)
    assert np.all(frames[960:1440, 1] == 8191)
    assert np.all(frames[1440:, 0] == 0) and np.all(frames[1440:, 1] == 8191)  # the played rest, at the end


def test_recording_from_the_window_holds_the_question_and_the_answer(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "what_time.wav"))
    path = tmp_path / "talk.wav"

    async def scenario():
        assert window.recording_ui.start(str(path))  # before the engine: it records from the first chunk
        assert await session.start(), session.status
        assert window.recording_ui.action.isChecked()
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 40)
        assert await wait_until(lambda: not session.playback.is_playing() and session.client.conversation.items[-1].text_final, 20)
        assert await wait_until(lambda: "REC 0:" in window.recording_ui.label.text(), 5)
        window.recording_ui.action.trigger()  # Ctrl+Shift+R again: stop
        assert not window.recording_ui.action.isChecked() and window.recording_ui.label.text() == ""
        assert any(isinstance(n, Notice) and "Recorded" in n.message for n in window.notices)
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    frames = _read(path).astype(np.float64)
    rms = lambda x: np.sqrt(np.mean(x**2)) if len(x) else 0.0  # noqa: E731
    win = 2400  # 100 ms
    left = [rms(frames[i:i + win, 0]) for i in range(0, len(frames) - win, win)]
    right = [rms(frames[i:i + win, 1]) for i in range(0, len(frames) - win, win)]
    spoke = [i for i, v in enumerate(left) if v > 300]
    answered = [i for i, v in enumerate(right) if v > 300]
    assert spoke and answered, (max(left), max(right))
    # The answer comes after the question, on the same timeline, with half a second of speech at least (it tells
    # the time: how long it is depends on the clock).
    assert answered[0] > spoke[-1] and len(answered) >= 5, (spoke[-1], answered[0], len(answered))
