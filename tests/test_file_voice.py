"""Audio → Speak a sound file: a recorded utterance spoken into the conversation as the user's voice.

The file parts are checked on their own; the rest runs the real engine over a real WebSocket: the file's
words become the user's turn and get an answer, in voice-activity mode (the server ends the turn) and in
push-to-talk (held for the file, released at its end), with a microphone pacing it or none at all, and
through the window (drop, Ctrl+P, Esc)."""

from __future__ import annotations

import asyncio
import base64
import os
import wave

import numpy as np
import pytest

from desktop.audio.file_source import FileVoice, read_audio_24k, read_wav_24k
from desktop.core.actions import Notice
from desktop.providers import choose_provider
from desktop.session import FileVoiceState, LiveSession, SessionOptions
from desktop.transcript_export import item_meta
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until


def _write_wav(path, samples: np.ndarray, rate: int = 24000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


# ---------------------------------------------------------------------------------------------- the file
def test_a_file_voice_hands_out_the_file_then_silence():
    audio = np.arange(1, 1001, dtype=np.int16)
    voice = FileVoice(audio, "ramp.wav")
    first = voice.take(600)
    assert np.array_equal(first, audio[:600]) and not voice.finished
    second = voice.take(600)
    assert np.array_equal(second[:400], audio[600:]) and not second[400:].any() and len(second) == 600
    assert voice.finished and voice.position_ms == 1000 * 1000 // 24000
    assert not voice.take(240).any()


@pytest.mark.parametrize("case, reason", [
    ("missing", "not found"),
    ("text", "not a WAV file"),
    ("corrupt", "corrupt header"),
    ("silent", "is silent"),
    ("short", "less than 0.1 s"),
    ("long", "at most 5 min 00 s can be spoken"),
])
def test_a_file_that_cannot_be_spoken_says_why(tmp_path, case, reason):
    path = tmp_path / f"{case}.wav"
    if case == "text":
        path.write_text("not audio at all")
    elif case == "corrupt":
        path.write_bytes(b"RIFF0000WAVEnot really")  # a chunk size far past the file's end
    elif case == "silent":
        path = AUDIO / "silence_2s.wav"
    elif case == "short":
        _write_wav(path, np.full(1200, 3000, dtype=np.int16))  # 50 ms
    elif case == "long":
        # 301 s at 8 kHz, 8-bit: refused from its header, before its 2.4 MB are read
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)
            w.setframerate(8000)
            w.writeframes(bytes([128]) * (8000 * 301))
    with pytest.raises(ValueError, match=reason):
        FileVoice.open(path)


def test_compressed_formats_are_read_through_pyav(tmp_path):
    av = pytest.importorskip("av")  # a source install has it (faster-whisper); the bundle reads WAV only
    speech = read_wav_24k(AUDIO / "hello_weather.wav")
    flac = tmp_path / "hello.flac"
    with av.open(str(flac), "w") as out:
        stream = out.add_stream("flac", rate=48000)
        stream.layout = "mono"
        upsampled = np.repeat(speech, 2)  # 48 kHz: the reader resamples
        frame = av.AudioFrame.from_ndarray(upsampled.reshape(1, -1), format="s16", layout="mono")
        frame.rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = read_audio_24k(flac)
    assert abs(len(decoded) - len(speech)) < 24000 * 0.03, (len(decoded), len(speech))
    n = min(len(decoded), len(speech))
    # the same sound: correlation near 1 once aligned (the resampler's delay is a few samples)
    best = max(np.corrcoef(decoded[k:n].astype(float), speech[:n - k].astype(float))[0, 1] for k in range(0, 64))
    assert best > 0.95, best
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3" + bytes(200))
    with pytest.raises(ValueError, match="broken.mp3"):
        read_audio_24k(bad)


# ---------------------------------------------------------------------------------------------- with the engine
def _appended_ms(session) -> int:
    return sum(len(base64.b64decode(e["audio"])) // 2 for e in session.sent_events
               if e["type"] == "input_audio_buffer.append") * 1000 // 24000


def _run(session: LiveSession, scenario) -> list:
    notes: list = []
    session.subscribe(notes.append)
    session.record_sent = True

    async def main():
        assert await session.start(), session.status
        try:
            await scenario(session, notes)
        finally:
            await session.stop()

    asyncio.run(main())
    for event in session.sent_events:
        validate_client_event(event)
    return notes


def _answered(session) -> bool:
    return any(i.role == "assistant" and i.text_final for i in session.client.conversation)


def _contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    """Whether `needle` occurs in `haystack` sample for sample."""
    for at in np.flatnonzero(haystack == needle[0]):
        if at + len(needle) <= len(haystack) and np.array_equal(haystack[at:at + len(needle)], needle):
            return True
    return False


def _speech(pcm: np.ndarray) -> np.ndarray:
    """The part of a fixture between its first and last loud sample."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 2000)
    return pcm[loud[0]:loud[-1] + 1]


@pytest.mark.slow
def test_a_spoken_file_is_the_users_turn_gets_an_answer_and_can_be_kept_and_spoken_again(tmp_path):
    """A microphone (here a silent one) paces the file: its chunks are swapped for the file's. Then the turn it
    made is kept as a WAV file (what the model heard: the file's speech, sample for sample, with the server's
    padding around it), and that file, spoken, makes the same turn."""
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=False))
    kept: list = []

    async def scenario(session, notes):
        await asyncio.sleep(0.5)
        assert session.keep_turn(tmp_path) is None  # nothing said yet: a notice says so
        assert session.speak_file(AUDIO / "what_time.wav")
        assert session._file_clock is None  # the microphone keeps time
        assert await wait_until(lambda: _answered(session), 30)
        user = next(i for i in session.client.conversation if i.role == "user")
        assert await wait_until(lambda: user.text_final, 10)
        assert "time" in user.text.lower(), user.text
        kept.append(session.keep_turn(tmp_path))
        assert kept[0] is not None
        # The file's trailing silence may still be going out when the answer is done (a loaded machine): speaking
        # the kept turn then would replace it, not follow it.
        assert await wait_until(lambda: session.file_voice is None, 10)
        assert session.speak_file(kept[0][0])
        assert await wait_until(lambda: len([i for i in session.client.conversation if i.role == "user"
                                             and i.text_final]) == 2, 30)
        again = [i for i in session.client.conversation if i.role == "user"][1]
        assert "time" in again.text.lower(), again.text

    notes = _run(session, scenario)
    states = [n for n in notes if isinstance(n, FileVoiceState)]
    assert [(s.name, s.speaking, s.finished) for s in states[:2]] == [("what_time.wav", True, False),
                                                                     ("what_time.wav", False, True)]
    fixture = read_wav_24k(AUDIO / "what_time.wav")
    assert states[0].duration_ms == len(fixture) * 1000 // 24000
    path, duration_ms = kept[0]
    audio = read_wav_24k(path)
    assert len(audio) * 1000 // 24000 == duration_ms
    assert _contains(audio, _speech(fixture)), "the kept turn is not the audio the model got"
    user, again = [i for i in session.client.conversation if i.role == "user"]
    assert abs(duration_ms - (user.audio_end_ms - user.audio_start_ms)) <= 1  # the server's span of the turn
    # Each turn says which file said it, in the transcript and the saved Markdown.
    assert user.spoken_from == "what_time.wav" and again.spoken_from == os.path.basename(path)
    assert f"from {os.path.basename(path)}" in " · ".join(item_meta(again))
    assert any(isinstance(n, Notice) and n.message.startswith("No spoken turn to keep yet") for n in notes)


@pytest.mark.slow
def test_with_no_microphone_the_file_keeps_time_itself_and_push_to_talk_is_held_for_it():
    """No microphone at all (a device that does not exist), push-to-talk mode: the file is its own clock, the
    key is held for it and released at its end, which commits the turn and asks for the answer."""
    from desktop.core.turn_taking import TurnSettings

    session = LiveSession(SessionOptions(choose_provider(environ={}), input_device="no such microphone",
                                         use_speaker=False, turn_settings=TurnSettings(mode="push_to_talk")))

    async def scenario(session, notes):
        assert session._source is None
        before = _appended_ms(session)
        assert session.speak_file(AUDIO / "hello_weather.wav")
        assert session._file_clock is not None and session.turns.ptt.held
        assert await wait_until(lambda: _answered(session), 30)
        assert not session.turns.ptt.held
        user = next(i for i in session.client.conversation if i.role == "user")
        assert await wait_until(lambda: user.text_final, 10)
        assert "weather" in user.text.lower(), user.text
        assert user.spoken_from == "hello_weather.wav"
        fixture = read_wav_24k(AUDIO / "hello_weather.wav")
        # the file, plus the push-to-talk pre-roll of silence before it: all of it went out
        assert _appended_ms(session) - before >= len(fixture) * 1000 // 24000
        # and a push-to-talk turn is kept whole: everything sent between press and release
        _, audio = session.client.sent_audio.last_turn()
        assert _contains(audio, fixture) and len(audio) - len(fixture) < 24000 * 0.5

    _run(session, scenario)
    types = [e["type"] for e in session.sent_events]
    assert types.count("input_audio_buffer.commit") == 1
    assert types.index("input_audio_buffer.commit") < types.index("response.create")


@pytest.mark.slow
def test_esc_stops_a_file_and_discards_what_it_said():
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=False))

    async def scenario(session, notes):
        assert session.speak_file(AUDIO / "tell_story.wav")
        assert await wait_until(lambda: session.file_voice is not None and session.file_voice.position_ms > 800, 5)
        session.turns.cancel()  # Esc
        assert session.file_voice is None
        await asyncio.sleep(2.0)
        assert not _answered(session)
        # a file that cannot be spoken leaves the conversation as it was, and says why
        assert not session.speak_file(AUDIO / "manifest.json")
        assert session.file_voice is None

    notes = _run(session, scenario)
    states = [n for n in notes if isinstance(n, FileVoiceState)]
    assert [(s.speaking, s.finished) for s in states] == [(True, False), (False, False)]
    assert any(e["type"] == "input_audio_buffer.clear" for e in session.sent_events)
    assert any(isinstance(n, Notice) and n.level == "error" and "manifest.json" in n.message for n in notes)


def test_without_pyav_other_formats_are_refused_with_a_way_out(tmp_path, monkeypatch):
    """The installer's bundle leaves PyAV out and puts a placeholder module in its place."""
    import sys
    import types

    class Placeholder(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            raise RuntimeError("this Parley bundle does not include PyAV")

    monkeypatch.setitem(sys.modules, "av", Placeholder("av"))
    song = tmp_path / "question.mp3"
    song.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(ValueError, match="reads WAV files only; convert it first"):
        read_audio_24k(song)


@pytest.mark.slow
def test_a_file_started_over_another_replaces_it_and_push_to_talk_is_released_once():
    from desktop.core.turn_taking import TurnSettings

    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=False, turn_settings=TurnSettings(mode="push_to_talk")))

    async def scenario(session, notes):
        assert session.speak_file(AUDIO / "tell_story.wav")
        assert await wait_until(lambda: session.file_voice.position_ms > 300, 5)
        assert session.speak_file(AUDIO / "what_time.wav")  # replaces the story, the key still held
        assert session.turns.ptt.held and session.file_voice.name == "what_time.wav"
        assert await wait_until(lambda: _answered(session), 30)
        assert not session.turns.ptt.held

    notes = _run(session, scenario)
    types = [e["type"] for e in session.sent_events]
    assert types.count("input_audio_buffer.commit") == 1
    states = [(n.name, n.speaking, n.finished) for n in notes if isinstance(n, FileVoiceState)]
    assert states == [("tell_story.wav", True, False), ("tell_story.wav", False, False),
                      ("what_time.wav", True, False), ("what_time.wav", False, True)]
