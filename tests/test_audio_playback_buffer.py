"""PlaybackBuffer: sample-exact accounting, click-free stop / pause / duck, thread safety. Pure, fast."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from desktop.audio.playback import NullOutput, _DeviceRateAdapter
from desktop.audio.playback_buffer import PlaybackBuffer, StopReport
from desktop.core.pcm import PROTOCOL_RATE

RATE = PROTOCOL_RATE


def tone(ms: float, freq: float = 440.0, amp: float = 0.5, phase0: int = 0) -> np.ndarray:
    n = int(round(ms * RATE / 1000))
    t = np.arange(phase0, phase0 + n)
    return (amp * np.sin(2 * np.pi * freq * t / RATE) * 32767).astype(np.int16)


def ramp_pcm(n: int, start: int = 0) -> np.ndarray:
    """Distinct, easily recognised samples: start, start+1, ... (wrapping inside int16)."""
    return ((np.arange(start, start + n) % 20000) + 1).astype(np.int16)


def read_all(buf: PlaybackBuffer, ms: float, block: int = 480) -> np.ndarray:
    n = int(round(ms * RATE / 1000))
    out = []
    while n > 0:
        out.append(buf.read(min(block, n)))
        n -= block
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def max_jump(x: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(x)))) if len(x) > 1 else 0.0


# A 440 Hz sine at amplitude 0.5 moves at most 2π·440/24000·0.5 ≈ 0.058 per sample.
SINE_MAX_STEP = 2 * np.pi * 440 / RATE * 0.5


class TestReadAndAccounting:
    def test_read_returns_exact_frames_zero_padded(self):
        buf = PlaybackBuffer()
        assert buf.read(100).shape == (100,) and not buf.read(100).any()
        buf.enqueue("a", ramp_pcm(150))
        x = buf.read(200)
        assert x.dtype == np.float32 and x.shape == (200,)
        np.testing.assert_array_equal(x[:150], ramp_pcm(150).astype(np.float32) / 32768.0)
        assert not x[150:].any()

    def test_samples_are_played_in_order_across_items_and_blocks(self):
        buf = PlaybackBuffer()
        a, b = ramp_pcm(1000), ramp_pcm(700, start=5000)
        buf.enqueue("a", a[:333])
        buf.enqueue("a", a[333:])
        buf.enqueue("b", b)
        got = np.concatenate([buf.read(n) for n in (1, 479, 480, 17, 723)])
        expected = np.concatenate([a, b]).astype(np.float32) / 32768.0
        np.testing.assert_array_equal(got[:1700], expected)
        assert not got[1700:].any()

    def test_accounting_is_sample_exact_without_latency(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", np.zeros(24000, np.int16))  # 1000 ms
        assert buf.received_ms("a") == 1000
        assert buf.played_ms("a") == 0
        assert buf.is_playing() and buf.queued_ms() == 1000
        buf.read(240)
        assert buf.played_ms("a") == 10 and buf.played_samples("a") == 240
        buf.read(24 * 333)
        assert buf.played_ms("a") == 343
        assert buf.queued_ms() == 657
        assert buf.current_item() == "a"

    def test_latency_is_subtracted_and_catches_up_after_the_item(self):
        buf = PlaybackBuffer()
        buf.set_output_latency(0.050)  # 1200 samples
        assert buf.output_latency_ms == 50
        buf.enqueue("a", np.zeros(2400, np.int16))  # 100 ms
        buf.read(960)  # 40 ms handed: still inside the device's latency
        assert buf.played_ms("a") == 0
        assert buf.current_item() is None
        buf.read(960)  # 80 ms handed
        assert buf.played_ms("a") == 30
        assert buf.handed_ms("a") == 80
        assert buf.current_item() == "a"
        buf.read(480)  # all 100 ms handed
        assert buf.played_ms("a") == 50
        assert not buf.is_playing()
        buf.read(1200)  # silence while the device drains its buffer
        assert buf.played_ms("a") == 100
        buf.read(24000)
        assert buf.played_ms("a") == 100 == buf.received_ms("a")
        assert buf.current_item() == "a"  # last played

    def test_played_never_exceeds_received_nor_goes_negative(self):
        rng = np.random.default_rng(1)
        buf = PlaybackBuffer()
        buf.set_output_latency(0.02)
        for step in range(400):
            if rng.random() < 0.4:
                buf.enqueue(f"i{step % 3}", np.zeros(int(rng.integers(1, 900)), np.int16))
            buf.read(int(rng.integers(1, 1000)))
            for item in ("i0", "i1", "i2"):
                assert 0 <= buf.played_ms(item) <= buf.received_ms(item)
                assert buf.played_samples(item) <= buf.handed_ms(item) * 24 + 24
        assert buf.played_ms("unknown") == 0 and buf.received_ms("unknown") == 0

    def test_current_item_follows_what_is_heard(self):
        buf = PlaybackBuffer()
        buf.set_output_latency(0.010)  # 240 samples
        buf.enqueue("a", np.ones(480, np.int16))
        buf.enqueue("b", np.ones(480, np.int16))
        buf.read(600)  # a fully handed, 120 of b handed; heard up to 360
        assert buf.current_item() == "a"
        buf.read(200)  # heard up to 560: b
        assert buf.current_item() == "b"
        buf.read(5000)
        assert buf.current_item() == "b"

    def test_read_into_fills_a_strided_view(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", ramp_pcm(300))
        out = np.full((256, 1), 7.0, dtype=np.float32)
        buf.read_into(out[:, 0])
        np.testing.assert_array_equal(out[:, 0], ramp_pcm(256).astype(np.float32) / 32768.0)

    def test_float_input_and_2d_input_are_accepted(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", np.full(10, 0.25, dtype=np.float32))
        buf.enqueue("a", np.ones((10, 1), dtype=np.int16))
        x = buf.read(20)
        assert np.allclose(x[:10], 0.25) and np.allclose(x[10:], 1 / 32768)


class TestStop:
    def test_stop_fades_out_without_a_click_then_silence(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(1000))
        before = read_all(buf, 100, block=441)
        report = buf.stop(fade_ms=5.0)
        assert isinstance(report, StopReport)
        after = read_all(buf, 100, block=441)
        signal = np.concatenate([before, after])
        assert max_jump(signal) <= SINE_MAX_STEP * 1.05  # no discontinuity larger than the sine itself
        nonzero = np.nonzero(after)[0]
        assert len(nonzero) and nonzero[-1] < 120  # fade ≤ 5 ms (120 samples), then silence
        assert not buf.is_playing() and buf.queued_ms() == 0

    def test_stop_report(self):
        buf = PlaybackBuffer()
        buf.set_output_latency(0.02)
        buf.enqueue("a", tone(300))
        buf.enqueue("b", tone(200))
        read_all(buf, 120)
        report = buf.stop()
        assert report == StopReport(item_id="a", played_ms=100, discarded_ms=380)
        read_all(buf, 200)
        # the device still plays what it was handed: a's 120 ms, not the fade-out
        assert buf.played_ms("a") == 120
        assert buf.played_ms("b") == 0

    def test_stop_when_idle(self):
        buf = PlaybackBuffer()
        assert buf.stop() == StopReport(None, 0, 0)
        buf.enqueue("a", tone(50))
        read_all(buf, 100)
        assert buf.stop() == StopReport("a", 50, 0)

    def test_late_deltas_of_a_stopped_item_are_ignored(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(100))
        read_all(buf, 20)
        buf.stop()
        buf.enqueue("a", tone(100))  # late delta of the cancelled response
        assert buf.queued_ms() == 0
        assert buf.received_ms("a") == 200
        buf.enqueue("b", tone(100))  # the next response plays
        assert buf.queued_ms() == 100
        read_all(buf, 30)
        assert buf.current_item() == "b"

    def test_stop_while_ducked_and_double_stop(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(500))
        buf.duck(0.3)
        x = read_all(buf, 60)
        buf.stop()
        buf.stop()
        y = read_all(buf, 60)
        assert max_jump(np.concatenate([x, y])) <= SINE_MAX_STEP * 1.05
        assert not y[120:].any()


class TestDuck:
    def test_duck_ramps_smoothly_to_the_gain_and_back(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", np.full(24000, 16384, np.int16))  # DC 0.5: gain changes show directly
        read_all(buf, 10)
        buf.duck(0.2)
        x = read_all(buf, 50, block=100)
        assert max_jump(x) <= 0.5 / 240 * 1.01  # ramp of 10 ms = 240 samples
        assert np.isclose(x[0], 0.5, atol=0.01)
        assert np.allclose(x[260:], 0.1)  # settled after ~10 ms
        buf.unduck()
        y = read_all(buf, 50, block=100)
        assert max_jump(np.concatenate([x, y])) <= 0.5 / 240 * 1.01
        assert np.allclose(y[260:], 0.5)

    def test_duck_does_not_change_accounting(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", np.ones(4800, np.int16))
        buf.duck(0.0)
        read_all(buf, 100)
        assert buf.played_ms("a") == 100


class TestPauseResume:
    def test_pause_resume_continues_where_it_stopped(self):
        buf = PlaybackBuffer()
        pcm = ramp_pcm(4800)
        buf.enqueue("a", pcm)
        first = buf.read(1000)
        report = buf.pause()
        assert report == StopReport("a", 41, 158)  # 1000 samples = 41.67 ms heard; 3800 kept
        assert buf.is_paused() and not buf.is_playing()
        fade = buf.read(480)
        assert not fade[120:].any()
        silence = buf.read(2000)
        assert not silence.any()
        assert buf.played_samples("a") == 1000 and buf.queued_ms() == 158
        buf.resume()
        assert buf.is_playing()
        rest = buf.read(4000)
        expected = pcm[1000:].astype(np.float32) / 32768.0
        # after a 5 ms fade-in, exactly the samples that were not played yet
        np.testing.assert_array_equal(rest[120:3800], expected[120:])
        assert np.all(np.abs(rest[:120]) <= np.abs(expected[:120]) + 1e-7)
        assert buf.played_samples("a") == 4800

    def test_pause_and_resume_are_click_free(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(1000))
        x = read_all(buf, 100)
        buf.pause()
        y = read_all(buf, 40)
        buf.resume()
        z = read_all(buf, 100)
        assert max_jump(np.concatenate([x, y, z])) <= SINE_MAX_STEP * 1.05

    def test_stop_after_pause_discards_the_kept_audio(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(500))
        read_all(buf, 100)
        buf.pause()
        read_all(buf, 20)
        report = buf.stop()
        assert report.item_id == "a" and report.played_ms == 100 and report.discarded_ms == 400
        buf.resume()
        assert not read_all(buf, 100).any()


class TestDiscardAndClear:
    def test_discard_item_drops_only_that_item(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", ramp_pcm(480))
        buf.enqueue("b", ramp_pcm(480, start=1000))
        buf.enqueue("a", ramp_pcm(480, start=480))
        assert buf.discard_item("b") == 20
        buf.enqueue("b", ramp_pcm(480))  # late delta of the discarded item
        got = buf.read(1200)
        np.testing.assert_array_equal(got[:960], ramp_pcm(960).astype(np.float32) / 32768.0)
        assert not got[960:].any()

    def test_discard_of_the_playing_item_fades_out(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(500))
        buf.enqueue("b", tone(500, amp=0.0))
        x = read_all(buf, 100)
        assert buf.discard_item("a") == 400
        y = read_all(buf, 100)
        assert max_jump(np.concatenate([x, y])) <= SINE_MAX_STEP * 1.05
        assert buf.current_item() == "b"

    def test_clear_forgets_everything(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(100))
        read_all(buf, 50)
        buf.stop()
        buf.clear()
        assert buf.received_ms("a") == 0 and buf.current_item() is None and buf.queued_ms() == 0
        buf.enqueue("a", tone(100))  # no longer blocked after clear()
        assert buf.queued_ms() == 100


class TestThreads:
    def test_concurrent_producers_reader_and_controls(self):
        buf = PlaybackBuffer()
        buf.set_output_latency(0.01)
        stop = threading.Event()
        errors: list[BaseException] = []
        total_read = [0]

        def reader():
            try:
                while not stop.is_set():
                    x = buf.read(256)
                    assert x.shape == (256,) and np.all(np.abs(x) <= 1.0)
                    total_read[0] += 256
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        def producer(name):
            try:
                for k in range(300):
                    buf.enqueue(f"{name}{k % 5}", tone(5, phase0=k))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        def controller():
            try:
                for k in range(200):
                    [buf.pause, buf.resume, lambda: buf.duck(0.5), buf.unduck,
                     lambda: buf.discard_item("p1"), buf.stop][k % 6]()
                    for item in ("p0", "q3"):
                        assert 0 <= buf.played_ms(item) <= buf.received_ms(item)
                    buf.current_item(), buf.is_playing(), buf.queued_ms()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=reader)] + [
            threading.Thread(target=producer, args=(n,)) for n in ("p", "q")
        ] + [threading.Thread(target=controller)]
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join(timeout=20)
        stop.set()
        threads[0].join(timeout=5)
        assert not errors, errors
        assert total_read[0] > 0
        assert buf.position_samples == total_read[0]


class TestOutputsWithoutDevice:
    def test_null_output_consumes_in_real_time(self):
        buf = PlaybackBuffer()
        buf.enqueue("a", tone(300))
        out = NullOutput(buf)
        t0 = time.monotonic()
        out.start()
        try:
            while buf.is_playing() and time.monotonic() - t0 < 3:
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
        finally:
            out.stop()
        assert 0.25 <= elapsed <= 0.6
        assert buf.played_ms("a") == 300
        assert not out.running

    def test_fallback_resampler_keeps_accounting_in_24k_samples(self):
        for rate in (48000, 44100, 16000):
            buf = PlaybackBuffer()
            buf.enqueue("a", tone(1000))
            res = _DeviceRateAdapter(buf, rate)
            chunks = []
            for n in [512] * 40 + [333] * 30:
                block = np.zeros(n, np.float32)
                res.fill(block)
                chunks.append(block)
            y = np.concatenate(chunks)
            consumed = len(y) * RATE / rate
            # The adapter reads ahead by soxr's delay plus at most one 10 ms step, which it reports
            # as extra output latency so heard-ms stay honest.
            lead = (buf.position_samples - consumed) / RATE
            assert 0 <= lead <= res.extra_latency_s + 0.006, (rate, lead, res.extra_latency_s)
            seg = y[rate // 10 : rate // 10 + rate // 2]  # past soxr's start-up transient
            spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
            assert abs(np.argmax(spectrum) * rate / len(seg) - 440) < 5
            assert max_jump(seg) <= 2 * np.pi * 440 / rate * 0.5 * 1.05


@pytest.mark.parametrize("fade_ms", [0.0, 1.0, 5.0, 20.0])
def test_stop_fade_length(fade_ms):
    buf = PlaybackBuffer()
    buf.enqueue("a", np.full(24000, 16384, np.int16))
    buf.read(100)
    buf.stop(fade_ms=fade_ms)
    y = buf.read(2000)
    n = int(round(fade_ms * 24))
    assert not y[n:].any()
    if n:
        assert y[0] > 0 and max_jump(np.concatenate([[0.5], y])) <= 0.5 / n * 1.01


# ---------------------------------------------------------------- the device's buffer cut (flush_unheard)

def _as_pcm(x: np.ndarray) -> np.ndarray:
    return np.round(x * 32768.0).astype(np.int32)


def test_flush_takes_back_what_the_device_had_not_played_and_pause_resumes_from_there():
    buf = PlaybackBuffer()
    buf.set_output_latency(0.040)
    samples = ramp_pcm(RATE)  # 1 s of distinct samples
    buf.enqueue("a", samples)
    read_all(buf, 200)  # 200 ms handed to the device: 160 heard, 40 in the device's buffer
    assert buf.played_ms("a") == 160 and buf.unheard_ms() == 40
    taken = buf.flush_unheard()
    assert taken == 40 * RATE // 1000
    assert buf.unheard_ms() == 0
    report = buf.pause(fade_ms=0.0)
    assert report == StopReport("a", 160, 840)  # heard exactly up to the cut; the rest is kept
    assert not np.any(read_all(buf, 100))  # paused: silence (and no fade blip after the cut)
    assert buf.played_ms("a") == 160  # the silence after the cut adds nothing to what was heard
    buf.resume()
    out = _as_pcm(read_all(buf, 800))
    # after the 5 ms fade-in, playback continues with the first sample that was never heard
    start = 160 * RATE // 1000
    fade = 5 * RATE // 1000
    np.testing.assert_array_equal(out[fade:fade + 1000], samples[start + fade:start + fade + 1000])
    read_all(buf, 100)
    assert buf.played_ms("a") == 1000  # everything heard exactly once


def test_flush_then_stop_reports_the_cut_and_drops_the_rest():
    buf = PlaybackBuffer()
    buf.set_output_latency(0.040)
    buf.enqueue("a", ramp_pcm(RATE // 2))
    read_all(buf, 300)
    buf.flush_unheard()
    report = buf.stop(fade_ms=0.0)
    assert report == StopReport("a", 260, 240)  # 40 ms taken back from the device + 200 ms never handed
    assert not np.any(read_all(buf, 100))
    buf.enqueue("a", ramp_pcm(480))  # a late delta of the stopped item is not played
    assert not np.any(read_all(buf, 100))
    assert buf.played_ms("a") == 260


def test_flush_spanning_two_items_and_without_unheard_audio():
    buf = PlaybackBuffer()
    buf.set_output_latency(0.040)
    buf.enqueue("a", ramp_pcm(RATE // 10))  # 100 ms
    buf.enqueue("b", ramp_pcm(RATE // 10, start=5000))
    read_all(buf, 120)  # a: 100 ms handed, b: 20 ms handed; heard up to 80 ms
    buf.flush_unheard()
    assert buf.played_ms("a") == 80 and buf.played_ms("b") == 0
    assert buf.queued_ms() == 120  # a's last 20 ms, all 100 ms of b
    out = _as_pcm(read_all(buf, 200))
    np.testing.assert_array_equal(out[:480], ramp_pcm(480, start=1920))
    np.testing.assert_array_equal(out[480:2880], ramp_pcm(2400, start=5000))
    read_all(buf, 100)
    assert buf.played_ms("a") == 100 and buf.played_ms("b") == 100
    assert buf.flush_unheard() == 0  # everything heard: nothing to take back
