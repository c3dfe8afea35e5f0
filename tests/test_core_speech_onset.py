"""The loudness-onset detector's double-talk route (core.speech_onset): pure level arithmetic, no audio."""

from __future__ import annotations

import random

from desktop.core.speech_onset import SpeechOnsetDetector, SpeechOnsetSettings

QUIET = -75.0  # the canceller's output with nothing but (removed) echo in it


def feed(d: SpeechOnsetDetector, chunks: list[tuple[float, float | None, float | None]]) -> list[int]:
    """(after-canceller level, raw level, far-end level) per chunk -> indices of the chunks completing an onset."""
    return [i for i, (out, raw, far) in enumerate(chunks) if d.update(out, raw, far)]


def echo_only(n: int, coupling_db: float, far_db: float = -20.0, jitter_db: float = 3.0, seed: int = 1):
    """The assistant playing, its echo at the microphone `coupling_db` below the far end (± jitter, never above)."""
    rng = random.Random(seed)
    return [(QUIET, far_db + coupling_db - rng.uniform(0.0, jitter_db), far_db) for _ in range(n)]


def test_a_voice_the_canceller_suppresses_is_an_onset_when_it_is_louder_than_any_echo() -> None:
    d = SpeechOnsetDetector()
    assert feed(d, echo_only(100, coupling_db=-10.0)) == []
    assert d.echo_coupling_db is not None and -13.5 < d.echo_coupling_db <= -10.0
    # The user starts talking: the raw level jumps 20 dB above the echo, but AEC3 suppresses double talk, so
    # the canceller's output stays quiet (it removed ~60 dB): the old rule alone never fires.
    voice = [(QUIET, -10.0, -20.0)] * 5
    assert feed(d, voice) == [1]
    assert d.double_talk_chunks >= 2

    without_far = SpeechOnsetDetector()
    feed(without_far, [(out, raw, None) for out, raw, _ in echo_only(100, -10.0)])
    assert feed(without_far, [(QUIET, -10.0, None)] * 5) == [], "no far-end levels: the route is off"


def test_echo_alone_never_counts_and_a_voice_within_the_margin_does_not_either() -> None:
    d = SpeechOnsetDetector()
    assert feed(d, echo_only(2000, coupling_db=0.0, seed=7)) == []  # an echo as loud as the playback
    assert d.double_talk_chunks == 0
    # 8 dB above the learnt coupling is within the 10 dB margin: not through this route
    assert feed(d, [(QUIET, -20.0 + 0.0 + 8.0, -20.0)] * 5) == []


def test_the_route_stays_shut_until_the_coupling_is_learnt() -> None:
    s = SpeechOnsetSettings()
    d = SpeechOnsetDetector(s)
    feed(d, echo_only(s.coupling_min_chunks - 1, coupling_db=-10.0))
    assert d.echo_coupling_db is None
    assert feed(d, [(QUIET, 0.0, -20.0)] * 3) == []
    d2 = SpeechOnsetDetector(s)
    feed(d2, echo_only(s.coupling_min_chunks, coupling_db=-10.0))
    assert feed(d2, [(QUIET, 0.0, -20.0)] * 3) == [1]


def test_a_louder_echo_fires_once_then_is_learnt_because_the_far_end_kept_playing() -> None:
    s = SpeechOnsetSettings()
    d = SpeechOnsetDetector(s)
    feed(d, echo_only(200, coupling_db=-25.0))
    # The user turns the speaker up by 20 dB: the echo now passes the route once...
    louder = echo_only(400, coupling_db=-5.0, seed=3)
    onsets = feed(d, louder)
    assert onsets == [1], onsets
    # ...and since the far end was still playing verify_chunks later (the hold was released), that was echo.
    assert d.echo_onsets == 1
    assert d.echo_coupling_db is not None and d.echo_coupling_db > -8.5


def test_a_real_barge_in_silences_the_far_end_and_teaches_nothing() -> None:
    d = SpeechOnsetDetector()
    feed(d, echo_only(200, coupling_db=-10.0))
    before = d.echo_coupling_db
    assert feed(d, [(QUIET, -5.0, -20.0)] * 3) == [1]
    # playback paused: the far-end window empties while the user goes on talking
    feed(d, [(QUIET, -5.0, -20.0)] * 10 + [(-8.0, -5.0, None)] * 100)
    assert d.echo_onsets == 0
    assert d.echo_coupling_db == before


def test_the_detector_says_which_route_the_last_onset_took() -> None:
    d = SpeechOnsetDetector()
    feed(d, echo_only(100, coupling_db=-10.0))
    assert feed(d, [(QUIET, -5.0, -20.0)] * 2) == [1] and d.last_onset_double_talk
    feed(d, [(QUIET, -80.0, None)] * 5)
    assert feed(d, [(-20.0, -19.0, None)] * 2) == [1] and not d.last_onset_double_talk  # through the canceller


def test_another_device_forgets_the_learnt_echo_coupling() -> None:
    d = SpeechOnsetDetector()
    feed(d, echo_only(100, coupling_db=-30.0))
    assert d.echo_coupling_db is not None
    d.forget_echo_coupling()
    assert d.echo_coupling_db is None
    # the new speaker is louder: its echo is learnt from scratch instead of firing the route
    assert feed(d, echo_only(200, coupling_db=-5.0, seed=9)) == []
    assert d.echo_coupling_db is not None and d.echo_coupling_db > -8.5
