"""Choosing devices in the Audio menu, persisting the choice, and surviving a microphone or speaker that stops
(what unplugging does to a stream) — with real PortAudio streams on the PulseAudio null sink."""

from __future__ import annotations

import pytest

from desktop.core.actions import Notice
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.qt_loop import close_qasync_loop, new_qasync_loop
from tests.waiting import wait_until as _wait

pytestmark = [pytest.mark.audio, pytest.mark.slow]




def test_device_choice_persists_and_unplugging_is_survived(qtbot, qapp, pulse_audio, tmp_path):
    store = Settings(tmp_path / "settings.json")
    loop = new_qasync_loop(qapp)
    window = MainWindow()
    qtbot.addWidget(window)
    window.audio_menu.store = store
    session = LiveSession(SessionOptions(choose_provider(environ={})))
    window.attach(session)
    notes: list = []
    session.subscribe(notes.append)

    async def scenario():
        assert await session.start()
        # Pick the microphone and speaker by name from the menu's own lists, and headset mode.
        window.audio_menu.input_menu.aboutToShow.emit()
        names = [a.text() for a in window.audio_menu.input_menu.actions()]
        assert names[0] == "System default" and "pulse" in names, names
        window.audio_menu.choose_device("input", "pulse")
        window.audio_menu.choose_device("output", "pulse")
        window.audio_menu.set_echo_mode("headset")
        window.audio_menu.hold_action.setChecked(False)
        assert not session.client.local_barge_in.settings.energy_onset
        assert session.options.cut_speaker_buffer and window.audio_menu.cut_action.isChecked()
        window.audio_menu.cut_action.setChecked(False)
        assert not session.options.cut_speaker_buffer
        window.audio_menu.local_vad_action.setChecked(False)
        assert not window.audio_menu.hold_action.isEnabled()  # the hold belongs to local detection
        assert session.options.input_device == "pulse" and session.echo is None
        assert not session.client.local_barge_in.settings.enabled
        assert await _wait(lambda: session._source is not None and session._source.running, 5)
        # The microphone stream dies (as when the device is unplugged).
        session._source._stream.abort()
        assert await _wait(lambda: any(isinstance(n, Notice) and "microphone stopped" in n.message for n in notes), 5)
        assert "microphone lost" in window.devices_label.text()
        # The state chip says so for as long as it lasts (the notice goes away after a few seconds).
        assert await _wait(lambda: "No microphone" in window.state_label.text(), 5), window.state_label.text()
        # The conversation goes on meanwhile: a typed question is answered.
        session.send_text("What time is it?")
        assert await _wait(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 30)
        # And the microphone comes back by itself.
        assert await _wait(lambda: any(isinstance(n, Notice) and "microphone is back" in n.message for n in notes), 10)
        assert session._source is not None and session._source.running
        assert await _wait(lambda: not window.microphone_missing, 5)
        assert "No microphone" not in window.state_label.text()
        # The speaker stream dies too: answers continue silently, then it is reopened.
        session._output._stream.abort()
        assert await _wait(lambda: any(isinstance(n, Notice) and "speaker stopped" in n.message for n in notes), 5)
        assert await _wait(lambda: any(isinstance(n, Notice) and "speaker is back" in n.message for n in notes), 10)
        await session.stop()

    try:
        loop.run_until_complete(scenario())
    finally:
        close_qasync_loop(loop)
    saved = Settings.load(tmp_path / "settings.json").get("audio")
    assert saved == {"input_device": "pulse", "output_device": "pulse", "echo_mode": "headset", "hold_on_onset": False,
                     "local_barge_in": False, "cut_speaker_buffer": False}
    # A new window and session get the saved choices.
    session2 = LiveSession(SessionOptions(choose_provider(environ={})))
    window2 = MainWindow()
    qtbot.addWidget(window2)
    window2.audio_menu.store = Settings.load(tmp_path / "settings.json")
    window2.audio_menu.attach(session2)
    assert session2.options.input_device == "pulse" and session2.options.echo_mode == "headset"
    assert not session2.options.local_barge_in.enabled and not session2.options.local_barge_in.energy_onset
    assert not session2.options.cut_speaker_buffer
