"""The embedded engine's speech components: Silero VAD, Whisper recognition, Piper / espeak-ng synthesis.

Tests that load a speech model are marked `slow`. The audio fixtures are committed WAVs (see
tests/fixtures/make_audio_fixtures.py).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from desktop.core.pcm import PROTOCOL_RATE, rms_dbfs
from desktop.engine.speech import (
    EspeakSynthesizer,
    PiperSynthesizer,
    SileroSpeechProbability,
    WhisperRecognizer,
    best_synthesizer,
)
from desktop.engine.speech.tts import split_sentences

AUDIO = Path(__file__).parent / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text(encoding="utf-8"))
SAMPLES_PER_VAD_FRAME_24K = PROTOCOL_RATE * 32 // 1000  # 768


def load_wav(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, PROTOCOL_RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


# ---------------------------------------------------------------- fixtures themselves


def test_manifest_lists_existing_24k_mono_fixtures_of_the_right_length():
    required = {"hello_weather.wav", "what_time.wav", "repeat_after_me.wav", "tell_story.wav",
                "cough_click.wav", "silence_2s.wav"}
    assert required <= set(MANIFEST)
    speech = {k: v for k, v in MANIFEST.items() if v["text"]}
    assert len(speech) >= 14
    total = 0
    for name, info in MANIFEST.items():
        assert set(info) == {"text", "voice", "key_words"}
        pcm = load_wav(name)
        total += (AUDIO / name).stat().st_size
        if info["text"]:
            assert 1.5 <= len(pcm) / PROTOCOL_RATE <= 4.0, name
            for kw in info["key_words"]:
                assert kw in words(info["text"]), (name, kw)
            # at most 50 ms of leading silence
            first = int(np.argmax(np.abs(pcm.astype(np.int32)) > 300))
            assert first <= PROTOCOL_RATE * 50 // 1000, (name, first)
    assert total < 3_000_000
    assert rms_dbfs(load_wav("silence_2s.wav")) < -60
    assert len(load_wav("silence_2s.wav")) == 2 * PROTOCOL_RATE


# ---------------------------------------------------------------- VAD


def test_vad_frame_count_matches_input_length():
    vad = SileroSpeechProbability()
    pcm = load_wav("hello_weather.wav")
    probs = vad.process(pcm)
    expected = len(pcm) / SAMPLES_PER_VAD_FRAME_24K
    # the streaming resampler holds back a few ms, so at most one frame may still be pending
    assert expected - 1.5 <= len(probs) <= expected
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert vad.frame_ms == 32


def test_vad_is_high_inside_speech_and_low_in_silence():
    vad = SileroSpeechProbability()
    pcm = load_wav("tell_story.wav")
    probs = np.array(vad.process(pcm))
    # frames whose 24 kHz span is clearly loud are "inside speech"
    n = len(probs)
    spans = pcm[: n * SAMPLES_PER_VAD_FRAME_24K].reshape(n, SAMPLES_PER_VAD_FRAME_24K)
    loud = np.array([rms_dbfs(s) > -30 for s in spans])
    assert loud.sum() >= 20
    assert np.mean(probs[loud] > 0.5) >= 0.8
    assert np.mean(probs[~loud][-5:]) < 0.3  # trailing silence after the utterance

    vad.reset()
    silent = np.array(vad.process(load_wav("silence_2s.wav")))
    assert len(silent) >= 60
    assert silent.max() < 0.2


def test_vad_ignores_a_click():
    vad = SileroSpeechProbability()
    assert max(vad.process(load_wav("cough_click.wav"))) < 0.5


def test_vad_streaming_in_odd_chunks_equals_one_shot():
    pcm = load_wav("what_time.wav")
    one_shot = SileroSpeechProbability().process(pcm)
    vad = SileroSpeechProbability()
    streamed: list[float] = []
    rng = np.random.default_rng(1)
    pos = 0
    while pos < len(pcm):
        step = int(rng.integers(1, 2000))
        streamed += vad.process(pcm[pos:pos + step])
        pos += step
    assert abs(len(streamed) - len(one_shot)) <= 1
    n = min(len(streamed), len(one_shot))
    assert np.allclose(streamed[:n], one_shot[:n], atol=0.05)
    assert vad.process(np.zeros(0, dtype=np.int16)) == []


def test_vad_reset_gives_the_same_result_again():
    vad = SileroSpeechProbability()
    pcm = load_wav("hello_weather.wav")
    first = vad.process(pcm)
    vad.reset()
    assert np.allclose(vad.process(pcm), first, atol=1e-6)


def test_vad_accepts_16k_input():
    vad = SileroSpeechProbability(input_rate=16000)
    assert len(vad.process(np.zeros(512 * 3 + 100, dtype=np.int16))) == 3
    assert len(vad.process(np.zeros(412, dtype=np.int16))) == 1


def test_vad_is_cheap():
    vad = SileroSpeechProbability()
    pcm = np.concatenate([load_wav("hello_weather.wav")] * 4)
    vad.process(pcm[:4800])
    t0 = time.perf_counter()
    probs = vad.process(pcm)
    per_frame = (time.perf_counter() - t0) / len(probs)
    assert per_frame < 0.002  # measured ~150 µs on 2 cores; this only catches gross regressions


# ---------------------------------------------------------------- sentence splitting and espeak


def test_split_sentences():
    assert split_sentences("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert split_sentences("Dr. Smith paid 3.5 dollars. Then he left.") == [
        "Dr. Smith paid 3.5 dollars.", "Then he left."]
    assert split_sentences("  ") == []
    long = ", ".join(["a clause of several words"] * 20) + "."
    parts = split_sentences(long)
    assert len(parts) > 1 and all(len(p) <= 220 for p in parts)
    assert " ".join(parts) == long


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_synthesizer_yields_sentences_at_24k():
    synth = EspeakSynthesizer()
    chunks = list(synth.synthesize("Hello there. This is a test."))
    assert [s for s, _ in chunks] == ["Hello there.", "This is a test."]
    for _s, pcm in chunks:
        assert pcm.dtype == np.int16
        assert 0.3 <= len(pcm) / synth.sample_rate <= 5.0
        assert rms_dbfs(pcm) > -40
    assert synth.sample_rate == 24000


def test_best_synthesizer_prefers_piper_without_loading_it():
    synth = best_synthesizer()
    assert isinstance(synth, PiperSynthesizer)
    assert not synth.loaded


# ---------------------------------------------------------------- models (slow)


@pytest.fixture(scope="module")
def recognizer():
    r = WhisperRecognizer()
    assert not r.loaded  # the constructor must not load the model
    r.load()
    r.load()  # idempotent
    return r


@pytest.fixture(scope="module")
def piper():
    p = PiperSynthesizer()
    assert not p.loaded
    p.load()
    return p


@pytest.mark.slow
def test_asr_transcribes_fixtures(recognizer):
    assert "weather" in words(recognizer.transcribe(load_wav("hello_weather.wav")))
    assert "time" in words(recognizer.transcribe(load_wav("what_time.wav")))


@pytest.mark.slow
def test_asr_returns_empty_for_silence_and_noise(recognizer):
    assert recognizer.transcribe(load_wav("silence_2s.wav")) == ""
    assert recognizer.transcribe(np.zeros(0, dtype=np.int16)) == ""
    assert len(words(recognizer.transcribe(load_wav("cough_click.wav")))) <= 1


@pytest.mark.slow
def test_asr_is_thread_safe(recognizer):
    from concurrent.futures import ThreadPoolExecutor

    clips = [load_wav("what_time.wav"), load_wav("tell_story.wav")] * 2
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(recognizer.transcribe, clips))
    assert "time" in words(texts[0]) and "time" in words(texts[2])
    assert "story" in words(texts[1]) and "story" in words(texts[3])


@pytest.mark.slow
def test_tts_yields_one_nonsilent_chunk_per_sentence(piper):
    chunks = list(piper.synthesize("Hello, I am Parley. How can I help you today?"))
    assert len(chunks) == 2
    assert chunks[0][0] == "Hello, I am Parley."
    first = chunks[0][1]
    assert first.dtype == np.int16 and first.ndim == 1
    assert piper.sample_rate == 24000
    assert rms_dbfs(first) > -40
    for _s, pcm in chunks:
        assert 0.3 <= len(pcm) / piper.sample_rate <= 5.0


@pytest.mark.slow
def test_tts_produces_the_first_sentence_before_synthesizing_the_rest(piper, monkeypatch):
    calls: list[str] = []
    real = piper._synthesize_one

    def spy(sentence, speed):
        calls.append(sentence)
        return real(sentence, speed)

    monkeypatch.setattr(piper, "_synthesize_one", spy)
    gen = piper.synthesize("One sentence here. Another sentence there. And a third.")
    sentence, _pcm = next(gen)
    assert sentence == "One sentence here."
    assert calls == ["One sentence here."]
    assert len(list(gen)) == 2


@pytest.mark.slow
def test_recognizer_reads_back_the_synthesizer(recognizer, piper):
    ref = "The quick brown fox jumps over the lazy dog."
    pcm = np.concatenate([p for _s, p in piper.synthesize(ref)])
    heard = words(recognizer.transcribe(pcm))
    ref_words = words(ref)
    right = sum(1 for w in ref_words if w in heard)
    assert right >= len(ref_words) - 2, heard
