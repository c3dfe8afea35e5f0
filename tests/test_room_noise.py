"""Simulated background noise in the microphone: its level and colour, a recording of your own looped, and
with the engine: what is sent carries it, and a spoken turn is still heard through moderate noise."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from desktop.audio.room_noise import RoomNoise
from desktop.core.actions import Notice
from desktop.core.pcm import rms_dbfs
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from tests.conftest import AUDIO
from tests.waiting import wait_until


def _mixed(noise: RoomNoise, seconds: float) -> np.ndarray:
    silence = np.zeros(240, dtype=np.int16)
    return np.concatenate([noise.mix(silence) for _ in range(int(seconds * 100))])


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / 24000)
    return 10 * np.log10(spectrum[(f >= lo) & (f < hi)].mean())


@pytest.mark.parametrize("kind", ["fan", "hiss"])
def test_noise_comes_at_the_level_asked_with_its_colour(kind):
    for level in (-45.0, -30.0):
        x = _mixed(RoomNoise(kind, level), 4.0)
        assert abs(rms_dbfs(x) - level) < 1.0, (kind, level, rms_dbfs(x))
    # Per octave, a fan's power falls ~6 dB, hiss ~3 dB: from 200-400 Hz to 3.2-6.4 kHz (4 octaves).
    x = _mixed(RoomNoise(kind, -30.0), 4.0)
    drop = _band_db(x, 200, 400) - _band_db(x, 3200, 6400)
    expected = 24.0 if kind == "fan" else 12.0
    assert abs(drop - expected) < 4.0, (kind, drop)


def test_the_loop_has_no_click_and_the_noise_adds_to_the_voice():
    noise = RoomNoise("hiss", -30.0)
    x = _mixed(noise, 9.0).astype(np.float64)  # past the 8 s loop's seam
    jumps = np.abs(np.diff(x))
    assert jumps.max() < 12 * jumps.mean()  # no step at the seam
    voice = (np.sin(np.arange(2400) * 0.05) * 8000).astype(np.int16)
    noisy = RoomNoise("fan", -40.0).mix(voice)
    assert np.abs(noisy.astype(int) - voice).max() > 0 and abs(rms_dbfs(noisy) - rms_dbfs(voice)) < 0.5


def test_a_recording_of_your_own_is_looped_at_the_level_asked(tmp_path):
    noise = RoomNoise("file", -35.0, str(AUDIO / "tell_story.wav"))
    assert abs(rms_dbfs(_mixed(noise, 6.0)) - -35.0) < 3.0
    with pytest.raises(ValueError, match="silent"):
        RoomNoise("file", -35.0, str(AUDIO / "silence_2s.wav"))
    with pytest.raises(ValueError, match="not found"):
        RoomNoise("file", -35.0, str(tmp_path / "nothing.wav"))
    with pytest.raises(ValueError, match="unknown noise"):
        RoomNoise("traffic", -35.0)


@pytest.mark.slow
def test_with_noise_what_is_sent_carries_it_and_a_spoken_turn_is_still_heard():
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=False))
    session.record_sent = True
    notes: list = []
    session.subscribe(notes.append)

    async def scenario():
        assert await session.start(), session.status
        try:
            assert not session.set_noise("file", -35.0, str(AUDIO / "silence_2s.wav"))  # says why, keeps none
            assert session.noise is None
            assert session.set_noise("fan", -40.0)
            before = len(session.sent_events)
            await asyncio.sleep(1.0)
            appended = [np.frombuffer(base64.b64decode(e["audio"]), dtype="<i2") for e in session.sent_events[before:]
                        if e["type"] == "input_audio_buffer.append"]
            assert abs(rms_dbfs(np.concatenate(appended)) - -40.0) < 2.0  # the room is heard, at that level
            assert session.speak_file(AUDIO / "what_time.wav")
            assert await wait_until(lambda: any(i.role == "assistant" and i.text_final
                                                for i in session.client.conversation), 30)
            user = next(i for i in session.client.conversation if i.role == "user")
            assert await wait_until(lambda: user.text_final, 10)
            assert "time" in user.text.lower(), user.text
            session.set_noise(None)
            assert session.noise is None
        finally:
            await session.stop()

    asyncio.run(scenario())
    assert any(isinstance(n, Notice) and n.level == "error" and "noise" in n.message for n in notes)
