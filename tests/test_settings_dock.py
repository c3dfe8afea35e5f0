"""The turn-detection dock against the real engine: each edit sends the right session.update, the engine
confirms it, the settings persist, and the engine's turn-taking changes accordingly — the same utterance
with a 600 ms pause in the middle is ONE turn with 800 ms of silence and TWO turns with 300 ms."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from desktop.audio.file_source import WavFileSource
from desktop.core.actions import SpeechBoundary
from desktop.core.session_config import SemanticVad, ServerVad
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow
from tests.protocol_oracle import validate_client_event
from tests.turn_audio import ms, quiet, speech, wait_until, write

pytestmark = pytest.mark.slow


@pytest.fixture
def private_config(tmp_path, monkeypatch):
    """A settings file of this test's own (the dock saves on every change)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    Settings._shared.clear()
    yield tmp_path / "config" / "Parley" / "settings.json"
    Settings._shared.clear()


def test_dock_edits_update_the_engine_and_change_where_turns_end(qtbot, qasync_loop, private_config, tmp_path):
    # The fixture: "Set a timer for ten minutes" + 600 ms pause + "Remind me to call my sister tomorrow",
    # after 1 s of quiet. It is played into the live session twice (at 800 ms, then at 300 ms of silence);
    # in between, and while the dock is edited, the input is quiet.
    utterance = np.concatenate([speech("set_timer.wav"), quiet(600), speech("remind_sister.wav")])
    lead = 1000
    quiet_wav = write(tmp_path / "quiet.wav", quiet(1000, 9))
    utterance_wav = write(tmp_path / "pause_600ms.wav", np.concatenate([quiet(lead), utterance, quiet(2500, 2)]))
    plays: list[tuple[float, float]] = []  # (start, end) of each play's utterance on the input clock

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    dock = window.turn_ui.dock
    # Long cue lists are shown from their start (setText leaves the cursor, and the view, at the end).
    assert dock.think_phrases.text() and dock.think_phrases.cursorPosition() == 0
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=quiet_wav, use_speaker=False))
    session.record_sent = True
    window.attach(session)
    seen = [0]  # samples of input the session has seen: the input clock, to the sample
    session.turns.input_taps.append(lambda chunk: seen.__setitem__(0, seen[0] + len(chunk)))

    def clock_ms() -> float:
        return seen[0] * 1000 / 24000

    async def play_utterance() -> None:
        """Switch the session's input to the utterance file (as if the user began to speak now)."""
        old = session._source
        old.stop()
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        def deliver(chunk, deliver_to=old.on_chunk) -> None:
            if not starts:  # runs before this chunk is handled: the clock is where the new audio begins
                loop.call_soon_threadsafe(lambda: starts.append(clock_ms() + lead))
            deliver_to(chunk)

        new = WavFileSource(utterance_wav, deliver)
        session._source = new
        new.start()
        assert await wait_until(lambda: bool(starts), 10)
        plays.append((starts[0], starts[0] + ms(utterance)))
        assert await wait_until(lambda: new.finished.is_set() and clock_ms() > plays[-1][1] + 1500, 30)
        new.stop()
        quiet_again = WavFileSource(quiet_wav, old.on_chunk)
        session._source = quiet_again
        quiet_again.start()
    boundaries: list[SpeechBoundary] = []
    session.subscribe(lambda n: boundaries.append(n) if isinstance(n, SpeechBoundary) else None)

    def updates() -> list[dict]:
        return [e for e in session.sent_events if e["type"] == "session.update"]

    def effective():
        return session.client.effective.turn_detection if session.client.effective else None

    async def edit(action, expected) -> dict:
        """One dock edit → exactly one session.update carrying `expected`, confirmed by session.updated."""
        before = len(updates())
        action()
        assert len(updates()) == before + 1, [u["session"]["audio"]["input"]["turn_detection"] for u in updates()[before:]]
        sent = updates()[-1]["session"]["audio"]["input"]["turn_detection"]
        assert await wait_until(lambda: effective() == expected, 15), (effective(), expected)
        assert "confirmed" in dock.server_label.text(), dock.server_label.text()
        return sent

    async def scenario():
        assert await session.start()
        assert await wait_until(lambda: effective() == ServerVad(), 15)
        sent = await edit(lambda: dock.profile.setCurrentIndex(dock.profile.findData("fast")), ServerVad(0.6, 200, 300))
        assert sent == {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 200, "silence_duration_ms": 300,
                        "create_response": True, "interrupt_response": True}
        assert dock.threshold.value() == 0.6 and dock.silence.value() == 300
        await edit(lambda: dock.detection.setCurrentIndex(dock.detection.findData("semantic_vad")), SemanticVad("auto"))
        sent = await edit(lambda: dock.eagerness.setCurrentIndex(dock.eagerness.findData("low")), SemanticVad("low"))
        assert sent == {"type": "semantic_vad", "eagerness": "low", "create_response": True, "interrupt_response": True}
        await edit(lambda: dock.detection.setCurrentIndex(dock.detection.findData("server_vad")), ServerVad(0.6, 200, 300))
        await edit(lambda: dock.profile.setCurrentIndex(dock.profile.findData("balanced")), ServerVad())
        sent = await edit(lambda: dock.idle.setValue(30000), ServerVad(idle_timeout_ms=30000))  # too long to fire here
        assert sent["idle_timeout_ms"] == 30000
        await edit(lambda: dock.idle.setValue(0), ServerVad())
        await edit(lambda: dock.interrupt_response.setChecked(False), ServerVad(interrupt_response=False))
        await edit(lambda: dock.create_response.setChecked(False), ServerVad(create_response=False, interrupt_response=False))
        sent = await edit(lambda: dock.silence.setValue(800),
                          ServerVad(0.5, 300, 800, create_response=False, interrupt_response=False))
        assert sent["silence_duration_ms"] == 800 and dock.profile.currentData() == "custom"
        await play_utterance()
        await edit(lambda: dock.silence.setValue(300), ServerVad(0.5, 300, 300, create_response=False, interrupt_response=False))
        await play_utterance()
        await asyncio.sleep(0.5)
        await session.stop()

    qasync_loop.run_until_complete(scenario())

    def stops_in(span) -> list[int]:
        return [b.audio_ms for b in boundaries if not b.started and span[0] - 200 <= b.audio_ms <= span[1] + 1200]

    first, second = plays
    assert len(stops_in(first)) == 1, (first, [(b.started, b.audio_ms) for b in boundaries])
    assert len(stops_in(second)) == 2, (second, [(b.started, b.audio_ms) for b in boundaries])
    # The two turns at 300 ms split at the pause (the pause starts ms("set_timer") into the utterance).
    split = second[0] + ms(speech("set_timer.wav"))
    assert split - 150 <= stops_in(second)[0] <= split + 450, (stops_in(second), split)  # inside the 600 ms pause
    # Rapid edits never made the window claim the server kept different values.
    assert not any("kept different" in n.message for n in window.notices)
    # No responses were asked for (create_response off), so none came.
    assert not any(i.role == "assistant" for i in session.client.conversation)
    for event in session.sent_events:
        validate_client_event(event)
    # The settings persisted: a new window starts with them.
    saved = json.loads(private_config.read_text())["turn"]
    assert (saved["silence_duration_ms"], saved["create_response"], saved["profile"]) == (300, False, "custom")
    Settings._shared.clear()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.turn_ui.dock.silence.value() == 300 and not again.turn_ui.dock.create_response.isChecked()
