"""The capture thread's near-end processing: 10 ms blocks in, 20 ms chunks out, onsets reported at once."""

from __future__ import annotations

import numpy as np

from desktop.audio.echo_canceller import EchoCanceller
from desktop.audio.near_end import FarEndLevels, NearEndProcessor


def tone(ms: int, dbfs: float, rate: int = 24000) -> np.ndarray:
    n = rate * ms // 1000
    amp = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    return (amp * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.int16)


def test_blocks_become_40ms_chunks_20ms_around_an_onset_which_is_reported_on_its_second_block():
    chunks, onsets, removed = [], [], []
    near = NearEndProcessor(lambda c, r: (chunks.append(c), removed.append(r)), onsets.append)
    quiet = np.random.default_rng(1).normal(0, 10, 24000).astype(np.int16)  # ~ -70 dBFS room noise
    for start in range(0, len(quiet), 240):
        near.process(quiet[start:start + 240])
    assert onsets == [] and [len(c) for c in chunks] == [960] * 25  # 10 ms blocks wake the loop every 40 ms
    near.process(tone(10, -30))
    assert onsets == []  # one loud block is not yet an onset
    near.process(tone(10, -28))
    assert onsets == [1020]  # at once, on the second block (1.02 s on the input clock), not at the chunk
    assert len(chunks) == 26 and len(chunks[-1]) == 480  # and its chunk goes at 20 ms
    near.process(tone(35, -25))  # any block length: split into 10 ms pieces
    assert len(chunks) == 27 and near.samples == 24000 + 240 * 2 + 840
    chunks.clear()
    for start in range(0, 24000, 240):  # 500 ms after the onset, the loop is woken every 40 ms again
        near.process(quiet[start:start + 240])
    sizes = [len(c) for c in chunks]
    assert set(sizes[:20]) == {480} and set(sizes[-5:]) == {960}, sizes
    chunks.clear()
    near.hurry = True  # push-to-talk held: its release commits what has arrived
    for start in range(0, 4800, 240):
        near.process(quiet[start:start + 240])
    sizes = [len(c) for c in chunks]  # (the first takes what was pending before)
    assert sizes[0] <= 960 and set(sizes[1:]) == {480} and len(sizes) >= 9, sizes
    assert set(removed) == {None}  # no echo canceller: nothing known about echo


def _with_canceller():
    """A processor with AEC3 on, what it hands on, and 2 s of far end to play (skips without livekit)."""
    if not EchoCanceller.available():
        import pytest

        pytest.skip("livekit's AEC is not installed")
    chunks, onsets, removed = [], [], []
    near = NearEndProcessor(lambda c, r: (chunks.append(c), removed.append(r)), onsets.append)
    near.echo = EchoCanceller()
    return chunks, onsets, removed, near, tone(2000, -20)


def test_the_echo_canceller_runs_on_each_block():
    chunks, onsets, removed, near, far = _with_canceller()
    for start in range(0, len(far), 240):
        near.echo.feed_far_end(far[start:start + 240])
        near.process(far[start:start + 240])  # the microphone hears exactly the far end
    out = np.concatenate(chunks).astype(np.float64)
    assert len(out) >= 24000 * 2 - 480
    tail = out[-24000:]
    assert 20 * np.log10(np.sqrt(np.mean(tail ** 2)) / 32768 + 1e-12) < -40  # the echo is gone
    assert len(onsets) <= 1 and all(t < 500 for t in onsets)  # at most while it was converging (the warm-up covers that)
    # each chunk says how much the canceller took out: the converged echo loses far more than a voice would
    assert min(removed[-25:]) > 30  # its last second
    # a voice over the echo: the microphone hears both, the canceller removes little of the sum
    voice = np.random.default_rng(3).normal(0, 32768 * 10 ** (-20 / 20), 24000 * 400 // 1000).astype(np.int16)
    removed.clear()
    for start in range(0, len(voice), 240):
        echo = far[start:start + 240]
        near.echo.feed_far_end(echo)
        near.process((echo.astype(np.int32) + voice[start:start + 240]).clip(-32768, 32767).astype(np.int16))
    assert max(removed[3:]) < 6, removed


def _speech_like(ms: int, dbfs: float, seed: int) -> np.ndarray:
    """Noise with a 3 Hz syllable envelope at `dbfs` RMS."""
    n = 24 * ms
    x = np.random.default_rng(seed).normal(0.0, 1.0, n) * (np.abs(np.sin(2 * np.pi * 3 * np.arange(n) / 24000)) + 0.2)
    return (x / np.sqrt(np.mean(x ** 2)) * 32768 * 10 ** (dbfs / 20)).clip(-32768, 32767).astype(np.int16)


def test_a_voice_the_canceller_suppresses_during_playback_is_an_onset_on_its_second_block():
    """AEC3 suppresses the start of double talk; the far end's level tells the voice from an echo at once."""
    if not EchoCanceller.available():
        import pytest

        pytest.skip("livekit's AEC is not installed")
    results = {}
    for use_far_levels in (True, False):
        onsets: list[int] = []
        clock = [0.0]
        near = NearEndProcessor(lambda c, r: None, onsets.append)
        near.echo = EchoCanceller()
        far_levels = FarEndLevels(clock=lambda: clock[0])
        near.far_levels = far_levels if use_far_levels else None
        far = _speech_like(4000, -20, 1)  # the assistant speaking; this microphone hears little of it
        voice = _speech_like(400, -30, 2)  # the user, 10 dB quieter than the playback, from 3.0 s
        noise = np.random.default_rng(5).normal(0, 3, len(far))
        for start in range(0, len(far), 240):
            block = far[start:start + 240]
            near.echo.feed_far_end(block)
            far_levels.feed(block)
            clock[0] += 0.01
            mic = noise[start:start + 240].copy()
            if 72000 <= start < 72000 + len(voice):
                mic += voice[start - 72000:start - 72000 + 240]
            near.process(mic.clip(-32768, 32767).astype(np.int16))
        results[use_far_levels] = (onsets, near.onset_detector.double_talk_chunks)
    onsets, double_talk = results[True]
    assert onsets == [3020], results  # the voice's second block
    assert double_talk > 0
    late, _ = results[False]
    assert not late or late[0] > 3020, results  # the canceller alone lets the voice through later, or never


def test_far_end_levels_keep_the_loudest_of_the_last_half_second():
    clock = [100.0]
    levels = FarEndLevels(window_s=0.5, clock=lambda: clock[0])
    assert levels.recent_max_dbfs() is None
    levels.feed(np.full(240, 0.1, dtype=np.float32))  # -20 dBFS
    clock[0] += 0.2
    levels.feed(tone(10, -40).astype(np.float32) / 32768)
    assert abs(levels.recent_max_dbfs() - (-20.0)) < 0.1
    clock[0] += 0.4  # the -20 dBFS block is now 0.6 s old
    assert abs(levels.recent_max_dbfs() - (-40.0)) < 0.2
    clock[0] += 0.2
    assert levels.recent_max_dbfs() is None


def test_far_end_levels_match_the_loudest_block_of_the_window_at_every_step():
    rng = np.random.default_rng(3)
    clock = [0.0]
    levels = FarEndLevels(window_s=0.5, clock=lambda: clock[0])
    fed: list[tuple[float, float]] = []
    for _ in range(400):
        clock[0] += float(rng.uniform(0.0, 0.03))
        block = (rng.standard_normal(240) * 10 ** rng.uniform(-4, -0.5)).astype(np.float32)
        levels.feed(block)
        fed.append((clock[0], 10 * np.log10(max(float(np.mean(block.astype(np.float64) ** 2)), 1e-12))))
        if rng.uniform() < 0.3:
            clock[0] += float(rng.uniform(0.0, 0.4))
        window = [lvl for t, lvl in fed if t >= clock[0] - 0.5]
        got = levels.recent_max_dbfs()
        assert (got is None) == (not window)
        if window:
            assert abs(got - max(window)) < 1e-3


def test_a_substitute_bypasses_the_canceller_which_still_takes_the_microphone():
    """A sound file speaking for the user: it holds no echo, so the converged canceller (which would subtract its
    echo estimate from it) must not touch it; the canceller keeps taking the microphone, in step with the far end."""
    chunks, onsets, removed, near, far = _with_canceller()
    for start in range(0, len(far), 240):  # converge on an echo path
        near.echo.feed_far_end(far[start:start + 240])
        near.process(far[start:start + 240])
    chunks.clear(), removed.clear()
    voice = np.random.default_rng(5).normal(0, 32768 * 10 ** (-25 / 20), 24000 // 2).astype(np.int16)
    mic = tone(500, -20)
    for start in range(0, len(voice), 240):
        near.echo.feed_far_end(mic[start:start + 240])  # the far end goes on playing, and echoes
        near.process(mic[start:start + 240], substitute=voice[start:start + 240])
    out = np.concatenate(chunks)
    assert np.array_equal(out, voice[:len(out)]) and len(out) >= len(voice) - 480  # sample for sample
    assert set(removed) == {None}  # nothing is known about echo in it
    assert len(onsets) == 1  # its own onset, as a voice's (the far end playing does not count against it)
