"""Barge-in through real audio devices: PulseAudio null sinks as speaker and room, the engine over a real
WebSocket, Parley's LiveSession in between. The user's voice is played into the room while the assistant
tells a long story; the speaker is recorded to see what the user actually heard."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from desktop.core.actions import BargeInHappened, TurnState
from desktop.core.local_barge_in import LocalBargeInSettings
from desktop.core.session_config import ServerVad, SessionConfig
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event
from tests.room_audio import Room, loud_spans
from tests.waiting import wait_until as _wait

pytestmark = [pytest.mark.audio, pytest.mark.slow]

STORY = "Tell me a long story about a dragon."


@pytest.fixture
def room(pulse_audio):
    r = Room(pulse_audio)
    yield r
    r.close()




def _session(config: SessionConfig | None = None, local: LocalBargeInSettings | None = None,
             echo_mode: str = "aec") -> tuple[LiveSession, list]:
    options = SessionOptions(choose_provider(environ={}), config=config or SessionConfig(), echo_mode=echo_mode)
    if local is not None:
        options.local_barge_in = local
    session = LiveSession(options)
    session.record_sent = True
    notes: list = []
    session.subscribe(notes.append)
    return session, notes


def _sent(session: LiveSession, type_: str) -> list[dict]:
    return [e for e in session.sent_events if e["type"] == type_]


async def _interrupt_the_story(session: LiveSession, room: Room, notes: list, listen) -> None:
    """The assistant tells the story; once `await listen()` returns, the user says "stop talking"; the test
    waits for the barge-in, then stops the session."""
    session.send_text(STORY)
    assert await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
    await listen()
    room.say(AUDIO / "stop_talking.wav")
    assert await _wait(lambda: any(isinstance(n, BargeInHappened) for n in notes), 10), "no barge-in"
    await asyncio.sleep(0.5)
    await session.stop()


def test_speech_during_playback_stops_it_and_truncates_to_what_was_heard(room, tmp_path):
    # No echo path in this room: no echo handling (the AEC is tested with echo below).
    session, notes = _session(echo_mode="headset")
    recording = tmp_path / "speaker.raw"
    played: dict[str, list[np.ndarray]] = {}
    session.output_taps.append(lambda item_id, pcm: played.setdefault(item_id, []).append(pcm))

    async def scenario():
        assert await session.start(), session.status
        assert session.devices and session.devices.input_name and session.devices.output_name, session.devices
        room.record_speaker(recording)
        await asyncio.sleep(0.3)
        # the user listens for a while, then speaks up
        await _interrupt_the_story(session, room, notes, lambda: asyncio.sleep(2.5))

    asyncio.run(scenario())
    story = next(i for i in session.client.conversation if i.role == "assistant")
    barge = next(n for n in notes if isinstance(n, BargeInHappened))
    truncates = _sent(session, "conversation.item.truncate")
    assert len(truncates) == 1 and truncates[0]["item_id"] == story.item_id
    heard_ms = truncates[0]["audio_end_ms"]
    assert heard_ms == barge.heard_ms
    assert 1000 < heard_ms < story.audio_received_ms, (heard_ms, story.audio_received_ms)
    # Server VAD cancels the response itself: Parley must not send response.cancel.
    assert not _sent(session, "response.cancel")
    # What came out of the speaker, located in the story's own audio: up to 200 ms of the recording, ending
    # 100 ms before the cut, are matched against the story's PCM.
    pcm = room.read_raw(recording)
    spans = loud_spans(pcm)
    assert spans, "the speaker recording is silent"
    first = spans[0][0]
    ends = [end for start, end in spans if start > first and end - first < (heard_ms + 1500) * 24]
    cut = max(ends) if ends else spans[0][1]
    # The matched stretch stays inside the last sound before the cut: an underrun between it and the cut
    # would insert silence the story's own audio does not have and shift the match by the gap.
    last_start = max(start for start, end in spans if end <= cut)
    tail_start = max(cut - 7200, min(last_start, cut - 3600))
    story_pcm = np.concatenate(played[story.item_id]).astype(np.float64)
    tail = pcm[tail_start : cut - 2400].astype(np.float64)
    corr = np.correlate(story_pcm, tail, mode="valid")
    norms = np.sqrt(np.convolve(story_pcm**2, np.ones(len(tail)), mode="valid")) + 1e-9
    position = int(np.argmax(corr / norms))
    content_ms = (position + cut - tail_start) / 24
    latency_ms = session.playback.output_latency_ms
    print(f"heard {heard_ms} ms, speaker content {content_ms:.0f} ms, latency {latency_ms} ms")
    # The speaker's buffer was cut at the barge-in (SpeakerOutput.interrupt): the last audio that came out is
    # what the truncate says was heard, within 40 ms (~4 callbacks; without the cut it would be one whole
    # device buffer later, heard + 40 ms, and the fade).
    assert session._output.flushes >= 1
    assert abs(content_ms - heard_ms) <= 40, (content_ms, heard_ms, latency_ms)
    # Nothing of the cancelled story was played after the cut: the next sound is the new answer, much later.
    later = [start for start, end in spans if start > cut]
    assert not later or (later[0] - cut) / 24 > 400, (later[:3], cut)
    assert story.interrupted and story.heard_text is not None and len(story.heard_text) < len(story.text)
    for event in session.sent_events:
        validate_client_event(event)


def test_a_click_does_not_end_the_answer(room, tmp_path):
    session, notes = _session(echo_mode="headset")  # no echo path in this room

    async def scenario():
        assert await session.start()
        session.send_text(STORY)  # a long answer whatever the time of day ("It is 2:13 PM." is over in 1.4 s)
        assert await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
        # Past the local barge-in's warm-up (heard audio, not wall time: a busy machine plays late).
        machine = session.client.local_barge_in
        assert await _wait(lambda: machine.assistant_heard_ms >= machine.settings.warmup_ms + 500, 20)
        room.say(AUDIO / "cough_click.wav")
        await asyncio.sleep(2.0)
        await session.stop()

    asyncio.run(scenario())
    assert not _sent(session, "conversation.item.truncate")
    assert not _sent(session, "response.cancel")
    assert not any(isinstance(n, BargeInHappened) for n in notes)
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert not answer.interrupted
    # The click was heard: its sudden loudness held playback for a moment, and the VAD let it go on.
    machine = session.client.local_barge_in
    assert machine.released_holds + machine.false_interruptions >= 1, "the click went unnoticed"


def test_false_interruption_resumes_playback_where_it_paused(room, tmp_path):
    # The server is deaf to the short reply (threshold 1.0) while the local VAD hears it:
    # playback pauses, no user turn follows, and the answer goes on from where it stopped.
    config = SessionConfig(turn_detection=ServerVad(threshold=1.0))
    local = LocalBargeInSettings(threshold=0.5, confirm_ms=150, resume_after_ms=1000, warmup_ms=500)

    def attempt(recording):
        # This room has no echo path, so no echo handling: the echo gate (re-armed after speaker underruns,
        # which the null sink produces now and then) would otherwise hold back the quiet reply at random.
        session, notes = _session(config, local, echo_mode="headset")

        async def scenario():
            assert await session.start()
            try:
                room.record_speaker(recording)
                session.send_text(STORY)
                assert await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
                await asyncio.sleep(3.0)  # past the echo canceller's warm-up gate
                room.say(AUDIO / "thank_you.wav")
                resumed = lambda: any(getattr(n, "message", "").startswith("False interruption") for n in notes)  # noqa: E731
                ok = await _wait(resumed, 8)
                await asyncio.sleep(3.0 if ok else 0)
                return ok
            finally:
                await session.stop()

        return session, notes, asyncio.run(scenario())

    session, notes, resumed = attempt(tmp_path / "speaker.raw")
    if not resumed and session.drops:
        # The connection to the engine dropped mid-answer (seen once in a while on a shared CI machine; the
        # reconnect itself is tested elsewhere): the scenario did not happen, so play it once more.
        tail = list(session.engine._stderr_tail) if session.engine else []
        print("connection dropped during the scenario; engine log tail:", *tail[-10:], sep="\n  ")
        session, notes, resumed = attempt(tmp_path / "speaker2.raw")
        recording = tmp_path / "speaker2.raw"
    else:
        recording = tmp_path / "speaker.raw"
    assert resumed, ("playback did not resume", session.drops, list(session.engine._stderr_tail)[-10:] if session.engine else [])
    kinds = [type(n) for n in notes]
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert not _sent(session, "conversation.item.truncate"), "a false interruption must not truncate"
    assert not answer.interrupted
    # The notifications show the pause and the resume (PausePlayback/ResumePlayback are carried out by the
    # session, so we see them in the log of client states instead).
    assert any(getattr(n, "state", None) == TurnState.INTERRUPTED for n in notes), kinds
    assert any(getattr(n, "message", "").startswith("False interruption") for n in notes), kinds
    # The speaker paused (a silent gap of about the resume window) and then played on.
    spans = loud_spans(room.read_raw(recording))
    gaps = [(b[0] - a[1]) / 24 for a, b in zip(spans, spans[1:])]
    assert max(gaps) > 800, gaps


@pytest.mark.parametrize("echo_db", [-10.0, 0.0])
def test_own_voice_through_the_room_never_interrupts_with_aec(room, echo_db):
    # Loudspeakers: the assistant's voice comes back into the microphone at a realistic level.
    room.add_echo(echo_db)
    session, notes = _session()
    assert session.options.echo_mode == "aec"

    async def scenario():
        assert await session.start()
        session.send_text("What is the weather like today?")
        assert await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 20)
        # The whole answer plays (about 10 s), then a little more.
        assert await _wait(lambda: session.client.state == TurnState.LISTENING and not session.playback.is_playing(), 40)
        await asyncio.sleep(1.0)
        await session.stop()

    asyncio.run(scenario())
    assert type(session.echo).__name__ == "ConvergingEchoCanceller"
    answer = next(i for i in session.client.conversation if i.role == "assistant")
    assert answer.status == "completed" and not answer.interrupted
    assert session.playback.played_ms(answer.item_id) >= answer.audio_received_ms - 100
    assert not _sent(session, "conversation.item.truncate")
    assert not any(isinstance(n, BargeInHappened) for n in notes)
    assert not any(getattr(n, "state", None) == TurnState.INTERRUPTED for n in notes)
    # The server's VAD (the engine) heard no user speech either.
    assert not any(type(n).__name__ == "SpeechBoundary" for n in notes)


def test_the_user_still_interrupts_over_the_assistants_echo(room):
    """Loudspeakers and AEC: the assistant's voice comes back at -10 dB, and the user speaks over it. The echo
    residue is kept from the server and from the local VAD, the voice is not: the answer is cut and truncated."""
    room.add_echo(-10.0)
    session, notes = _session()

    async def scenario():
        assert await session.start()
        machine = session.client.local_barge_in

        async def past_the_warm_ups():  # the local barge-in's and the echo canceller's (heard audio, not wall time)
            assert await _wait(lambda: machine.assistant_heard_ms >= 3000, 20)

        await _interrupt_the_story(session, room, notes, past_the_warm_ups)

    asyncio.run(scenario())
    story = next(i for i in session.client.conversation if i.role == "assistant")
    truncates = _sent(session, "conversation.item.truncate")
    assert len(truncates) == 1 and truncates[0]["item_id"] == story.item_id
    assert story.interrupted and 2500 < truncates[0]["audio_end_ms"] < story.audio_received_ms
    for event in session.sent_events:
        validate_client_event(event)


def test_a_voice_the_echo_canceller_holds_back_still_pauses_the_answer_at_once(room):
    """Loudspeakers that the microphone barely hears (no echo path in this room) with AEC on: WebRTC's AEC3
    suppresses the start of double talk, so the first sound of the user's voice only gets through the
    canceller late. The raw microphone is far louder than any echo of what was played, and that alone
    holds playback (the onset detector's double-talk route); the barge-in then completes as usual."""
    session, notes = _session()

    async def scenario():
        assert await session.start()
        machine = session.client.local_barge_in

        async def past_the_warm_ups():
            assert await _wait(lambda: machine.assistant_heard_ms >= 3000, 20)

        await _interrupt_the_story(session, room, notes, past_the_warm_ups)

    asyncio.run(scenario())
    detector = session.near_end.onset_detector
    # Nothing came back: an echo path in these rooms is -10 dB. The learnt figure is a max over the quiet chunks
    # around the voice (the room's floor, a soft first syllable) relative to the answer's level, so it varies from
    # run to run (one CI run learnt -38.4 dB); anything far below the echo rooms' -10 dB means no echo.
    assert detector.echo_coupling_db is not None and detector.echo_coupling_db < -25
    assert detector.double_talk_chunks >= 2, "the onset did not come through the double-talk route"
    story = next(i for i in session.client.conversation if i.role == "assistant")
    truncates = _sent(session, "conversation.item.truncate")
    assert len(truncates) == 1 and story.interrupted
    for event in session.sent_events:
        validate_client_event(event)
