"""The window opens, starts the embedded engine, connects, and shows both sides of a spoken turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import time

import pytest
from PySide6.QtCore import Qt

from desktop.core.actions import TurnState
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
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
        assert window.windowTitle() == "Parley — offline engine"  # which model this window talks to
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
    # How long the voice took after the turn ended, with the answer (the figure builders tune turn-taking by).
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert answer.reply_latency_ms is not None and 0 < answer.reply_latency_ms < 10_000
    assert f"voice {answer.reply_latency_ms} ms after your turn ended" in text
    # ... and how long the server's VAD heard the question (the fixture speaks for about 1.5 s).
    question = next(i for i in session.client.conversation if i.role == "user")
    assert question.audio_start_ms is not None and 800 < question.audio_end_ms - question.audio_start_ms < 3000
    assert "spoken for " in text
    # The answer's token usage (the engine estimates it in the API's shape), and the conversation's sum.
    assert answer.usage is not None and answer.usage.output_audio > 0
    assert "tokens in" in text and "out (" in text
    assert window.usage_label.text().startswith("tokens ") and " out" in window.usage_label.text()
    # The conversation's voice latency in the status bar (one answer: its own figure).
    assert window.latency_label.text() == f"voice {answer.reply_latency_ms} ms"
    assert "over 1 answer:" in window.latency_label.toolTip()
    user_at = text.lower().find("what time is it")
    answer_at = text.find("It is ")
    assert 0 <= user_at < answer_at, text
    # The level meter followed the input: loud during speech, quiet in the trailing silence.
    assert window.level_meter.updates > 20
    assert max(levels) > -30 and min(levels) < -60
    assert "no microphone" in window.devices_label.text() or "mic" in window.devices_label.text()
    for event in session.sent_events:
        validate_client_event(event)


def test_window_size_and_docks_are_kept_between_runs(qtbot, tmp_path):
    store_path = tmp_path / "settings.json"
    window = MainWindow(settings=Settings.load(store_path))
    qtbot.addWidget(window)
    window.show()
    default_size = window.size()
    assert window.turn_ui.dock.isVisible() and not window.reliability_ui.inspector.isVisible()
    # The user resizes the window, closes the turn-detection dock and opens the event inspector. (Smaller than
    # the default: a restored window is fitted into its screen, and the offscreen screen is 800 x 800.)
    window.resize(700, 600)
    window.turn_ui.dock.close()
    window.reliability_ui.inspector_action.trigger()
    qtbot.waitUntil(lambda: window.reliability_ui.inspector.isVisible())
    size = window.size()
    window.close()
    saved = json.loads(store_path.read_text())
    assert saved["window.geometry"] and saved["window.state"]

    again = MainWindow(settings=Settings.load(store_path))
    qtbot.addWidget(again)
    again.show()
    assert again.size() == size and size != default_size
    assert not again.turn_ui.dock.isVisible()
    assert again.reliability_ui.inspector.isVisible()

    # The self-test's window (keep_layout=False) neither uses nor changes the saved layout.
    before = store_path.read_text()
    probe = MainWindow(settings=Settings.load(store_path), keep_layout=False)
    qtbot.addWidget(probe)
    probe.show()
    assert probe.turn_ui.dock.isVisible() and not probe.reliability_ui.inspector.isVisible()
    probe.close()
    assert store_path.read_text() == before

    # A damaged value is ignored: the default layout, no error.
    store = Settings.load(store_path)
    store.set("window.geometry", "not a layout")
    store.set("window.state", 12)
    fresh = MainWindow(settings=store)
    qtbot.addWidget(fresh)
    fresh.show()
    assert fresh.turn_ui.dock.isVisible()


def test_help_lists_the_shortcuts_and_shows_the_licence_and_notices(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus[-1] == "Help", menus
    dialog = window.help_menu.show_shortcuts()
    qtbot.addWidget(dialog)
    rows = dict(dialog.rows())
    # Read from the window's own actions: the inspector, stopping the answer, retrying, quitting ...
    assert rows["Event inspector"] == "Ctrl+Shift+E"
    assert rows["Stop answer"] == "Ctrl+."
    assert rows["Keyboard shortcuts"] == "F1"
    assert "Ctrl+Q" in rows.values() and "Ctrl+Shift+S" in rows.values()
    # ... and the keys handled outside actions.
    assert "Space" in rows.values() and "Esc" in rows.values()
    dialog.close()

    about = window.help_menu.show_about()
    qtbot.addWidget(about)
    assert "Parley 0." in about.summary.text() and "GNU General Public License" in about.summary.text()
    notices, licence = about.tab_text(0), about.tab_text(1)
    assert notices.startswith("Third-party notices") and "Piper" in notices and "espeak-ng" in notices
    assert "GNU GENERAL PUBLIC LICENSE" in licence and "Version 3" in licence
    about.close()

    # Help → Open log folder: the folder exists, the file manager is asked to show it (none runs here, which
    # the notice says), and the path is in the notice to copy.
    folder = window.help_menu.open_logs()
    assert Path(folder).is_dir() and folder in window.notice_label.text()
    assert rows["Apply the instructions, or send a tool's typed result (in their box)"] == "Ctrl+Enter"


def test_push_to_talk_without_a_microphone_says_so(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    window.attach(session)
    window.microphone_missing = True  # as after a ConnectionStatus whose devices found no input
    window.turn_ui.ptt_button.pressed.emit()
    window.turn_ui.ptt_button.released.emit()
    assert not session.turns.ptt.held
    assert window.notices and window.notices[-1].message.startswith("No microphone is capturing")
    # (Not pressed with a microphone here: a press switches to push-to-talk and saves that setting, which the
    # tests after this one would start with. tests/test_turn_ptt.py covers the press.)


def test_a_typed_question_after_an_unanswered_spoken_turn_gets_no_voice_latency(qtbot, qasync_loop):
    # "Answer automatically" off: the spoken turn is heard but not answered. The answer to the question typed
    # afterwards must not be timed from that spoken turn's end.
    from desktop.core.session_config import ServerVad, SessionConfig

    config = SessionConfig(turn_detection=ServerVad(create_response=False))
    session = LiveSession(SessionOptions(choose_provider(environ={}), config=config,
                                         audio_in=str(AUDIO / "what_time.wav"), use_speaker=False))

    async def scenario():
        assert await session.start()
        try:
            assert await _wait_until(lambda: any(i.role == "user" and i.text_final for i in session.client.conversation), 40)
            await asyncio.sleep(1.0)
            assert not any(i.role == "assistant" for i in session.client.conversation)
            assert session.send_text("What time is it?")
            assert await _wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 40)
        finally:
            await session.stop()

    qasync_loop.run_until_complete(scenario())
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert answer.has_audio and answer.reply_latency_ms is None


def test_transcript_text_size_for_demos_is_kept(qtbot, tmp_path):
    store_path = tmp_path / "settings.json"
    window = MainWindow(settings=Settings.load(store_path), keep_layout=False)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)  # shortcuts reach the active window only
    normal = window.transcript.font().pointSizeF()
    window.transcript.conversation.place("u1", None, role="user", text="Hello there.", text_final=True)
    qtbot.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)  # Ctrl+= (Ctrl++ too)
    qtbot.keyClick(window, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    window.transcript.render_now()  # a re-render keeps the size
    assert window.transcript.font().pointSizeF() == normal + 2
    assert json.loads(store_path.read_text())["transcript.text_size"] == 2
    again = MainWindow(settings=Settings.load(store_path), keep_layout=False)
    qtbot.addWidget(again)
    assert again.transcript.font().pointSizeF() == normal + 2
    qtbot.keyClick(window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # Ctrl+0: normal again
    assert window.transcript.font().pointSizeF() == normal
    qtbot.keyClick(window, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.transcript.font().pointSizeF() == normal - 1
