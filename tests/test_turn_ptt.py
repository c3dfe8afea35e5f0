"""Push-to-talk in the window against the real engine: only the press (plus its 300 ms pre-roll) reaches the
server, Space works with key auto-repeat ignored, a press while the assistant speaks interrupts it, a too-short
press gives a hint instead of a server error, and leaving push-to-talk restores the VAD settings."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication

from desktop.audio.file_source import read_wav_24k
from desktop.core.actions import BargeInHappened, Notice, TurnState
from desktop.core.session_config import ManualTurns, ServerVad
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.protocol_oracle import validate_client_event
from tests.turn_audio import ms, quiet, speech, wait_until, write

pytestmark = pytest.mark.slow


@pytest.fixture
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    Settings._shared.clear()
    yield
    Settings._shared.clear()


def space(window, kind: QEvent.Type, auto_repeat: bool = False) -> None:
    QApplication.sendEvent(window.transcript, QKeyEvent(kind, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " ", auto_repeat))


def test_push_to_talk_sends_only_the_press(qtbot, qasync_loop, private_config, tmp_path):
    before, command, after = speech("set_timer.wav"), speech("what_time.wav"), speech("thank_you.wav")
    # The speech after the release comes 5 s later: the answer (and the tap that interrupts it) must come first,
    # or the tap's own pre-roll would legitimately carry that speech (seen on a loaded machine).
    parts = [quiet(1000), before, quiet(1500, 1), command, quiet(5000, 2), after, quiet(25000, 3)]  # long tail: the answer may be slow
    audio = np.concatenate(parts)
    b0 = ms(parts[0]) + ms(before)  # end of the speech before the press
    c0 = b0 + ms(parts[2])  # the command starts
    c1 = c0 + ms(command)
    a0 = c1 + ms(parts[4])  # the speech after the release starts
    wav = write(tmp_path / "ptt.wav", audio)

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    ui = window.turn_ui
    ui.dock.mode.setCurrentIndex(ui.dock.mode.findData("push_to_talk"))
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=wav, use_speaker=False))
    session.record_sent = True
    window.attach(session)
    notes: list = []
    session.subscribe(notes.append)
    seen = [0]  # samples of input the session has seen (the input clock, to the sample)
    session.turns.input_taps.append(lambda chunk: seen.__setitem__(0, seen[0] + len(chunk)))
    pressed_at: list[float] = []

    def clock() -> int:
        return session.client.input_clock_ms

    async def scenario():
        assert await session.start()
        assert await wait_until(lambda: session.client.effective is not None
                                and session.client.effective.turn_detection == ManualTurns(), 5)
        # Press just after the command starts: the pre-roll must bring its first syllable along.
        assert await wait_until(lambda: clock() >= c0 + 50, 15)
        space(window, QEvent.Type.KeyPress)
        pressed_at.append(seen[0] * 1000 / 24000)
        assert session.turns.ptt.held and "Recording" in ui.ptt_button.text()
        for _ in range(5):  # a held key repeats: release/press pairs flagged auto-repeat change nothing
            await asyncio.sleep(0.1)
            space(window, QEvent.Type.KeyRelease, auto_repeat=True)
            space(window, QEvent.Type.KeyPress, auto_repeat=True)
        assert session.turns.ptt.held
        assert await wait_until(lambda: clock() >= c1 + 300, 10)
        space(window, QEvent.Type.KeyRelease)
        assert not session.turns.ptt.held
        # The answer comes; pressing the button while it plays interrupts it.
        assert await wait_until(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 30)
        qtbot.mousePress(ui.ptt_button, Qt.MouseButton.LeftButton)
        qtbot.mouseRelease(ui.ptt_button, Qt.MouseButton.LeftButton)  # …and a tap with no audio in it is no turn
        assert await wait_until(lambda: any(isinstance(n, BargeInHappened) for n in notes), 5)
        assert await wait_until(lambda: clock() >= a0 + ms(after) + 500, 15)
        # Leaving push-to-talk restores the VAD settings.
        ui.dock.mode.setCurrentIndex(ui.dock.mode.findData("vad"))
        assert await wait_until(lambda: session.client.effective.turn_detection == ServerVad(), 5)
        await session.stop()

    qasync_loop.run_until_complete(scenario())

    sent = session.sent_events
    for event in sent:
        validate_client_event(event)
    appended = [np.frombuffer(base64.b64decode(e["audio"]), dtype="<i2") for e in sent if e["type"] == "input_audio_buffer.append"]
    # Two presses' worth of audio, each a contiguous piece of the file; none of it from outside a press.
    pieces: list[tuple[float, float]] = []
    stream = np.concatenate(appended)
    audio = read_wav_24k(wav)  # exactly what the file source played
    pos = 0
    while pos < len(stream):
        probe = stream[pos:pos + 480]
        candidates = np.flatnonzero(audio[: len(audio) - len(probe) + 1] == probe[0])
        hits = [int(i) for i in candidates if np.array_equal(audio[i:i + len(probe)], probe)]
        assert len(hits) == 1, (f"sent audio at {pos} of {len(stream)} is not a unique piece of the input", pieces, len(hits), np.abs(probe).max())
        start = hits[0]
        n = 0
        while pos + n < len(stream) and start + n < len(audio) and stream[pos + n] == audio[start + n]:
            n += 1
        pieces.append((start * 1000 / 24000, (start + n) * 1000 / 24000))
        pos += n
    first = pieces[0]
    # The pre-roll starts after the earlier speech, and before the command whenever the press came less than
    # 300 ms into it (a loaded machine may press late; the exact pre-roll is checked just below).
    assert b0 + 500 < first[0], (pieces, b0)
    assert first[0] < c0 or pressed_at[0] >= c0 + 300, (pieces, c0, pressed_at)
    assert first[0] == pytest.approx(pressed_at[0] - 300, abs=0.5)  # exactly the 300 ms pre-roll before the press
    assert c1 < first[1] < a0  # released after the command, before the later speech
    assert all(p[1] - p[0] < 1500 for p in pieces[1:]), pieces  # the short press
    assert not any(p[0] < a0 + ms(after) and p[1] > a0 for p in pieces), "speech after the release was sent"
    types = [e["type"] for e in sent if e["type"] != "input_audio_buffer.append"]
    assert types.count("input_audio_buffer.commit") == 1, types
    assert "response.cancel" in types or any(isinstance(n, BargeInHappened) for n in notes)
    # The one user turn is the command, with its first word thanks to the pre-roll.
    users = [i for i in session.client.conversation if i.role == "user"]
    assert len(users) == 1, [u.text for u in users]
    said = users[0].text.lower()
    assert "what" in said and "time" in said and "timer" not in said and "thank" not in said, said
    # The short press: a hint, not a server error.
    assert any(isinstance(n, Notice) and "Hold to talk" in n.message for n in notes)
    # (The one error tolerated: the answer's generation can finish on the server just before the press reaches it.)
    errors = [n for n in notes if isinstance(n, Notice) and n.level == "error" and n.code != "response_cancel_not_active"]
    assert not errors, errors
    assert not any(isinstance(n, Notice) and "server kept different" in n.message for n in notes)
