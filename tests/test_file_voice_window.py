"""Speak a sound file through the window, with the engine: drop a WAV, watch it play in the status bar, keep
the turn it made (Ctrl+Shift+K), speak that again (Ctrl+P), stop one with Esc; the recent files persist."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl

from desktop.settings import Settings
from desktop.ui.file_voice_ui import KEY, turns_folder
from tests.conftest import AUDIO
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def _user_turns(session) -> list:
    return [i for i in session.client.conversation if i.role == "user" and i.text_final]


def test_drop_keep_and_speak_again(qtbot, qasync_loop, tmp_path):
    settings_path = tmp_path / "settings.json"
    window, session = window_and_session(qtbot, settings_path, audio_in=str(AUDIO / "silence_2s.wav"))
    ui = window.file_voice_ui
    seen_labels: list[str] = []
    ui._timer.timeout.connect(lambda: seen_labels.append(ui.label.text()))

    async def scenario():
        assert await session.start(), session.status
        window.activateWindow()
        assert await wait_until(window.isActiveWindow, 5)
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(AUDIO / "what_time.wav"))])
        window.attachments.handle_drop(mime)
        assert session.file_voice is not None and session.file_voice.name == "what_time.wav"
        assert await wait_until(lambda: len(_user_turns(session)) == 1, 30)
        assert "time" in _user_turns(session)[0].text.lower()
        assert await wait_until(lambda: ui.label.text() == "", 5)
        assert ui.again_action.text() == "Speak what_time.wav again"
        # Keep the turn just made; it becomes the file that Ctrl+P speaks.
        qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        kept = ui.recent()[0]
        assert kept.startswith(str(turns_folder())) and kept.endswith(".wav")
        ui.keep_action.triggered[bool].emit(False)  # the signal's `checked` is not a turn's id: the last turn again
        assert ui.recent()[0] != kept and ui.recent()[0].startswith(str(turns_folder())) and ui.recent()[1] == kept
        kept = ui.recent()[0]
        assert ui.again_action.text().startswith("Speak turn ")
        qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
        assert session.file_voice is not None and session.file_voice.name.startswith("turn ")
        assert await wait_until(lambda: len(_user_turns(session)) == 2, 30)
        assert "time" in _user_turns(session)[1].text.lower()
        # A long file, stopped with Esc: nothing it said becomes a turn.
        assert ui.speak(str(AUDIO / "tell_story.wav"))
        assert await wait_until(lambda: session.file_voice.position_ms > 700, 5)
        window.transcript.setFocus()
        qtbot.keyClick(window.transcript, Qt.Key.Key_Escape)
        assert session.file_voice is None and ui.label.text() == ""
        await asyncio.sleep(2.0)
        assert len([i for i in session.client.conversation if i.role == "user"]) == 2
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    assert any(t.startswith("▶ what_time.wav 0:0") and t.endswith("/ 0:01") for t in seen_labels), seen_labels
    saved = Settings.load(settings_path).get(KEY)
    assert saved[0].endswith("tell_story.wav") and saved[1].startswith(str(turns_folder()))
    assert saved[2].startswith(str(turns_folder())) and saved[3] == str(AUDIO / "what_time.wav")
    # The menu lists them, newest first, for the next start too.
    ui.recent_menu.aboutToShow.emit()
    texts = [a.text() for a in ui.recent_menu.actions()]
    assert len(texts) == 4 and texts[0] == "tell_story.wav" and texts[1].startswith("turn ") and texts[3] == "what_time.wav"


def test_a_dropped_file_that_is_not_sound_says_so(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEnot really")

    async def scenario():
        assert await session.start(), session.status
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(broken))])
        window.attachments.handle_drop(mime)
        assert session.file_voice is None
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    assert window.notices and "broken.wav" in window.notices[-1].message and window.notices[-1].level == "error"
    assert window.file_voice_ui.recent() == []


def test_a_series_from_the_window_shows_its_progress_and_ends_with_the_report(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"))
    ui = window.file_voice_ui
    seen_labels: list[str] = []
    ui._timer.timeout.connect(lambda: seen_labels.append(ui.label.text()))

    async def scenario():
        assert await session.start(), session.status
        series = ui.speak_series([str(AUDIO / "what_time.wav"), str(AUDIO / "thank_you.wav")])
        assert series is not None and ui.stop_action.isEnabled()
        assert await wait_until(lambda: not series.running, 90)
        await session.stop()
        return series

    series = qasync_loop.run_until_complete(scenario())
    assert [t.outcome for t in series.turns] == ["answered", "answered"]
    assert any(t.startswith("▶ 1/2 thank_you.wav") for t in seen_labels), seen_labels  # sorted by name
    assert any(t.startswith("▶ 2/2 what_time.wav") for t in seen_labels), seen_labels
    assert ui.report_action.isEnabled() and ui.last_report == str(series.report_path)
    assert window.notices[-1].message.startswith("Series done: 2 files: 2 answered")
    assert ui.label.text() == "" and not ui.stop_action.isEnabled()
