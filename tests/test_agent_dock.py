"""The Instructions and voice dock with the real engine: edits reach the server by session.update, the dock
shows what the server then uses, the settings persist, and a session that has spoken keeps its voice."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from desktop.core.actions import Notice
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def _updates(session: LiveSession) -> list[dict]:
    return [e["session"] for e in session.sent_events if e["type"] == "session.update"]


def test_instructions_voice_and_speed_apply_live_and_persist(qtbot, qasync_loop, tmp_path):
    store_path = tmp_path / "settings.json"
    window, session = window_and_session(qtbot, store_path)
    dock = window.agent_ui.dock

    async def scenario():
        assert await session.start(), session.status
        assert await wait_until(lambda: "voice joe" in dock.server_label.text(), 10), dock.server_label.text()
        # Typing does not send; Ctrl+Enter does, once.
        sent_before = len(_updates(session))
        dock.instructions.setFocus()
        qtbot.keyClicks(dock.instructions, "You are Ada. Answer in one short sentence.")
        assert dock.apply_button.isEnabled() and "not applied" in dock.pending_label.text()
        assert len(_updates(session)) == sent_before
        qtbot.keyClick(dock.instructions, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert len(_updates(session)) == sent_before + 1
        assert _updates(session)[-1]["instructions"] == "You are Ada. Answer in one short sentence."
        assert not dock.apply_button.isEnabled()
        # Speed applies at once; the server's own report is shown.
        dock.speed.setValue(1.25)
        assert _updates(session)[-1]["audio"]["output"]["speed"] == 1.25
        assert await wait_until(lambda: "speed 1.25×" in dock.server_label.text(), 10), dock.server_label.text()
        assert "instructions: 8 words" in dock.server_label.text()
        assert session.client.effective.instructions == "You are Ada. Answer in one short sentence."
        # The offline engine's rule-based brain cannot follow instructions, but it answers to the name they give.
        assert session.send_text("Who are you?")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final and "I'm Ada" in i.text
                                            for i in session.client.conversation), 20), window.transcript_text()
        # Clearing the instructions brings the server's default back (it is sent, not left as it was).
        dock.instructions.clear()
        dock.apply_instructions()
        assert _updates(session)[-1]["instructions"] == (session.client.server_defaults.instructions or "")
        assert await wait_until(lambda: "instructions: 8 words" not in dock.server_label.text(), 10)
        # The turn-detection dock's updates keep these settings (one requested session, not two).
        window.turn_ui.dock.threshold.setValue(0.7)
        assert _updates(session)[-1]["audio"]["output"]["speed"] == 1.25

        # After an answer has been spoken, a new voice waits for the next session, and the window says so.
        assert session.client.session_spoke  # the answer above was spoken
        index = dock.voice.findText("joe")
        assert index >= 0, [dock.voice.itemText(i) for i in range(dock.voice.count())]
        dock.voice.setEditText("coral")
        dock.voice.lineEdit().editingFinished.emit()
        assert "voice" not in _updates(session)[-1]["audio"]["output"]
        assert session.client.requested.voice == "coral"
        assert any(isinstance(n, Notice) and "next session" in n.message for n in window.notices)
        assert "next session" in window.notice_label.text()
        assert await wait_until(lambda: "used from the next session" in dock.server_label.text(), 10)
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    for event in session.sent_events:
        validate_client_event(event)
    saved = json.loads(store_path.read_text())["agent"]
    assert saved == {"instructions": "", "voice": "coral", "speed": 1.25, "noise_reduction": "default",
                     "answer_mode": "audio", "transcription": "", "language": ""}

    # The next run starts with them, and its first session.update carries them.
    again = MainWindow(settings=Settings.load(store_path), keep_layout=False)
    qtbot.addWidget(again)
    assert again.agent_ui.dock.settings().voice == "coral" and again.agent_ui.dock.speed.value() == 1.25
    second = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    again.attach(second)
    first_update = second.client.requested.to_wire()
    assert first_update["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "coral",
                                              "speed": 1.25}


def test_the_dock_shares_the_right_column_with_turn_detection(qtbot, tmp_path):
    window = MainWindow(settings=Settings.load(tmp_path / "settings.json"), keep_layout=False)
    qtbot.addWidget(window)
    window.show()
    assert window.turn_ui.dock.isVisible()
    assert window.agent_ui.dock in window.tabifiedDockWidgets(window.turn_ui.dock)
    toggle = next(a for a in window.findChildren(type(window.agent_ui.dock.toggleViewAction()))
                  if a.text() == "Instructions and voice")
    assert toggle.shortcut().toString() == "Ctrl+I"


def test_text_answers_and_transcription_settings_apply_live(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    dock = window.agent_ui.dock

    async def scenario():
        assert await session.start(), session.status
        dock.answer_mode.setCurrentIndex(dock.answer_mode.findData("text"))
        assert _updates(session)[-1]["output_modalities"] == ["text"]
        assert await wait_until(lambda: "text answers" in dock.server_label.text(), 10), dock.server_label.text()
        assert session.send_text("Repeat after me: only words.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 20)
        answer = next(i for i in session.client.conversation if i.role == "assistant")
        assert "only words" in answer.text and not answer.has_audio  # no audio tokens spent
        # Transcription: a typed model name, then off (null on the wire), then a language hint.
        dock.transcription.setEditText("whisper-1")
        dock.transcription.lineEdit().editingFinished.emit()
        assert _updates(session)[-1]["audio"]["input"]["transcription"] == {"model": "whisper-1"}
        dock.transcription.setCurrentIndex(dock.transcription.findData("off"))
        dock.transcription.activated.emit(dock.transcription.currentIndex())
        assert _updates(session)[-1]["audio"]["input"]["transcription"] is None
        assert await wait_until(lambda: "no transcription" in dock.server_label.text(), 10), dock.server_label.text()
        dock.transcription.setCurrentIndex(0)
        dock.transcription.activated.emit(0)
        dock.language.setText("en")
        dock.language.editingFinished.emit()
        assert _updates(session)[-1]["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "en"}
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    for event in session.sent_events:
        validate_client_event(event)
