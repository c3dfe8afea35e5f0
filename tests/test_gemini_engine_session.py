"""Parley's Gemini Live adapter end to end against the offline engine's Gemini dialect: real audio through the
engine's VAD, ASR and TTS; a barge-in that Gemini reports with `interrupted` (and cannot truncate: the transcript
says so); push-to-talk with activityStart/activityEnd; an image and a typed question in the window; and every
message Parley put on the wire valid for the google-genai SDK."""

from __future__ import annotations

import asyncio

import pytest

from desktop.providers import ProviderChoice
from desktop.session import LiveSession, SessionOptions
from tests.conftest import AUDIO
from tests.gemini_oracle import check_client_message
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

GEMINI_ENGINE = ProviderChoice("engine", "offline engine (Gemini dialect)", None, dialect="gemini")
IMAGES = AUDIO.parent / "images"


def _session(**options) -> LiveSession:
    session = LiveSession(SessionOptions(GEMINI_ENGINE, audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False,
                                         **options))
    session.record_sent = True
    return session


def _all_valid(session: LiveSession) -> None:
    assert session.sent_wire
    for message in session.sent_wire:
        check_client_message(message)


def test_barge_in_on_gemini_cuts_the_answer_and_says_the_model_kept_it(tmp_path):
    session = _session()
    files = [str(AUDIO / "tell_story.wav"), str(AUDIO / "thank_you.wav")]

    async def scenario():
        assert await session.start(), session.status
        try:
            series = session.speak_files(files, tmp_path, interrupt_after_s=2.0)
            assert await wait_until(lambda: not series.running, 90)
        finally:
            await session.stop()
        return series

    series = asyncio.run(scenario())
    story, thanks = series.turns
    assert [story.outcome, thanks.outcome] == ["answered", "answered"], [(t.outcome, t.detail) for t in series.turns]
    assert story.interrupted and 2000 <= story.cut_at_ms < 4500, story.cut_at_ms
    assert story.answer_heard and len(story.answer_heard) < len(story.answer)
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert answer.model_kept_unheard, "the transcript says the model was not told where the answer was cut"
    assert "welcome" in thanks.answer.lower()
    # Nothing OpenAI-shaped went out: no truncate, no cancel — Gemini has neither.
    assert not [m for m in session.sent_wire if "type" in m]
    _all_valid(session)
    # Parley's own barge-in held the answer at the file's first sound (the local path, as on every provider).
    assert session.client.local_barge_in.onset_holds >= 1


def test_push_to_talk_on_gemini_then_manual_turns_in_the_next_session():
    """The first press comes in a session set up with automatic detection (Gemini fixes it at setup): the held
    audio goes out on the release with audioStreamEnd. Parley then renews the session at the next pause, resumed
    by its handle, with manual turns: the next press is activityStart … activityEnd."""
    session = _session()

    async def press_and_speak(name: str, answers: int) -> None:
        session.turns.press()
        assert session.speak_file(str(AUDIO / name))
        assert await wait_until(lambda: session.file_voice is None, 20)
        await asyncio.sleep(0.3)
        session.turns.release()
        assert await wait_until(lambda: sum(1 for i in session.client.conversation
                                            if i.role == "assistant" and i.text_final) >= answers, 60)

    async def scenario():
        assert await session.start(), session.status
        try:
            assert await wait_until(lambda: session.client.effective is not None, 20)
            await press_and_speak("what_time.wav", 1)
            first = len(session.sent_wire)
            assert await wait_until(lambda: session.renewals == 1 and session.status.phase == "connected", 30)
            assert session.dialect.resumed, "the new session resumed the old one by its handle"
            await press_and_speak("hello_weather.wav", 2)
            return first
        finally:
            await session.stop()

    first = asyncio.run(scenario())
    before = [m["realtimeInput"] for m in session.sent_wire[:first] if "realtimeInput" in m]
    after = [m["realtimeInput"] for m in session.sent_wire[first:] if "realtimeInput" in m]
    assert {"audioStreamEnd": True} in before and not [m for m in before if "activityStart" in m]
    starts = [n for n, m in enumerate(after) if "activityStart" in m]
    ends = [n for n, m in enumerate(after) if "activityEnd" in m]
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]
    audio_between = [m for m in after[starts[0]:ends[0]] if "audio" in m]
    assert audio_between and all(m["audio"]["mimeType"] == "audio/pcm;rate=16000" for m in audio_between)
    assert not [m for m in after[:starts[0]] if "audio" in m], "nothing was sent before the press"
    setups = [m["setup"] for m in session.sent_wire if "setup" in m]
    assert setups[-1]["realtimeInputConfig"]["automaticActivityDetection"] == {"disabled": True}
    assert setups[-1]["sessionResumption"].get("handle")
    users = [i.text.lower() for i in session.client.conversation if i.role == "user"]
    assert len(users) == 2 and "time" in users[0] and "weather" in users[1]
    _all_valid(session)


def test_an_image_and_a_question_in_the_window_on_gemini(qtbot, qasync_loop):
    from desktop.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    session = LiveSession(SessionOptions(GEMINI_ENGINE, use_speaker=False))
    session.record_sent = True
    window.attach(session)

    async def scenario():
        assert await session.start(), session.status
        assert await wait_until(lambda: session.client.effective is not None, 20)
        assert "Gemini" in window.windowTitle()
        window.text_input.setText("What does this say?")
        window.attachments.attach_paths([str(IMAGES / "document.png")], origin="button")
        assert await wait_until(lambda: any("INVOICE" in i.text for i in session.client.conversation
                                            if i.role == "assistant" and i.text_final), 60)
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    inputs = [m["realtimeInput"] for m in session.sent_wire if "realtimeInput" in m]
    video = [m["video"] for m in inputs if "video" in m]
    text = [m["text"] for m in inputs if "text" in m]
    assert video and video[0]["mimeType"] in ("image/jpeg", "image/png")
    assert text == ["What does this say?"]
    assert inputs.index(next(m for m in inputs if "video" in m)) < inputs.index(next(m for m in inputs if "text" in m))
    # the dock shows Gemini's knobs
    dock = window.turn_ui.dock
    assert dock.capabilities.name.startswith("Offline engine (Gemini") and not dock.idle.isEnabled()
    _all_valid(session)


def test_go_away_renews_the_session_by_its_handle_before_the_server_closes(monkeypatch):
    """The engine's Gemini path says goAway 8 s into each connection and closes it 5 s later: Parley opens the next
    session at the next pause, resumed by its handle (nothing re-sent), and the server's close is no drop."""
    monkeypatch.setenv("PARLEY_ENGINE_GEMINI_SESSION_SECONDS", "8")
    session = _session()
    notes: list = []
    session.subscribe(notes.append)

    async def scenario():
        assert await session.start(), session.status
        try:
            assert session.send_text("Repeat after me: the copper bell.")
            assert await wait_until(lambda: any("copper bell" in i.text.lower() for i in session.client.conversation
                                                if i.role == "assistant" and i.text_final), 30)
            assert await wait_until(lambda: session.renewals >= 1 and session.status.phase == "connected", 30)
            assert session.dialect.resumed
            await asyncio.sleep(6)  # past the old connection's close
            assert session.drops == 0
            assert session.send_text("Repeat after me: the brass key.")
            assert await wait_until(lambda: any("brass key" in i.text.lower() for i in session.client.conversation
                                                if i.role == "assistant" and i.text_final), 30)
        finally:
            await session.stop()

    asyncio.run(scenario())
    assert any("resumed by its handle" in getattr(n, "message", "") for n in notes)
    assert any("Gemini will end this connection" in getattr(n, "message", "") for n in notes)
    setups = [m["setup"] for m in session.sent_wire if "setup" in m]
    assert len(setups) >= 2 and setups[1]["sessionResumption"].get("handle")
    # the resumed session got no history re-sent: it has the conversation
    assert not [m for m in session.sent_wire if "clientContent" in m and m["clientContent"].get("turns")]
