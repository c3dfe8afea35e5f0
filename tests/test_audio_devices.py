"""Real audio streams through a PulseAudio null sink: speaker -> parley_sink -> its monitor -> microphone.

Also the WAV file source (no device needed) and device probing.
"""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from desktop.audio import (
    AudioDeviceError,
    MicrophoneCapture,
    PlaybackBuffer,
    SpeakerOutput,
    WavFileSource,
    list_devices,
    probe_devices,
    read_wav_24k,
)
from desktop.core.pcm import PROTOCOL_RATE, rms_dbfs

# The `pulse_audio` fixture comes from tests/audio_fixtures.py (a pytest plugin of tests/conftest.py).

RATE = PROTOCOL_RATE
SILENT = 0.01 * 32768  # -40 dBFS: below this a recorded sample counts as silence


class Recorder:
    """Collects microphone chunks; remembers how many samples had arrived at marked instants."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, chunk: np.ndarray) -> None:
        with self.lock:
            self.chunks.append(chunk)
            self.count += len(chunk)

    def mark(self) -> int:
        with self.lock:
            return self.count

    def audio(self) -> np.ndarray:
        with self.lock:
            return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


def sine(seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE))
    return (amp * np.sin(2 * np.pi * freq * t / RATE) * 32767).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.fixture
def devices(pulse_audio):
    """A recording microphone and a speaker on the null sink, both running; stopped afterwards."""
    buf = PlaybackBuffer()
    rec = Recorder()
    mic = MicrophoneCapture(rec)
    speaker = SpeakerOutput(buf)
    mic.start()
    speaker.start()
    time.sleep(0.3)  # let both streams settle
    yield buf, rec, mic, speaker
    speaker.stop()
    mic.stop()


@pytest.mark.audio
def test_probe_devices_finds_input_and_output(pulse_audio):
    status = probe_devices()
    assert status.input_name and status.output_name, status
    assert status.problems == []
    assert status.summary == f"mic: {status.input_name} · speaker: {status.output_name}"
    inputs, outputs = list_devices()
    assert "pulse" in inputs and "pulse" in outputs
    missing = probe_devices(input_device="no such microphone")
    assert missing.input_name is None and "not found" in missing.summary


@pytest.mark.audio
def test_opening_a_missing_microphone_raises_a_clear_error(pulse_audio):
    mic = MicrophoneCapture(lambda chunk: None, device="no such microphone")
    with pytest.raises(AudioDeviceError, match="not found"):
        mic.start()
    assert not mic.running
    mic.stop()  # harmless


@pytest.mark.audio
def test_microphone_delivers_24k_int16_chunks_in_real_time(devices):
    buf, rec, mic, speaker = devices
    t0, n0 = time.monotonic(), rec.mark()
    time.sleep(1.0)
    elapsed, n1 = time.monotonic() - t0, rec.mark()
    with rec.lock:
        shapes = {(c.dtype, c.shape) for c in rec.chunks}
    assert shapes == {(np.dtype("int16"), (480,))}
    assert abs((n1 - n0) / elapsed - RATE) < 0.1 * RATE
    assert mic.running and mic.error is None and mic.device_rate


@pytest.mark.audio
def test_tone_played_is_recorded_back_and_stop_silences_it_quickly(devices):
    buf, rec, mic, speaker = devices
    latency_ms = speaker.output_latency * 1000
    assert buf.output_latency_ms == int(latency_ms)

    start_mark = rec.mark()
    buf.enqueue("tone", sine(3.0))
    time.sleep(1.2)
    report = buf.stop()
    stop_mark = rec.mark()
    time.sleep(0.6)

    x = rec.audio()[start_mark:]
    loud = np.nonzero(np.abs(x) > SILENT)[0]
    assert len(loud), "nothing was recorded from the monitor"
    onset, end = loud[0], loud[-1] + 1
    body = x[onset + 2400:end - 2400]  # skip 100 ms at either edge
    level = rms_dbfs(body)
    freq = peak_hz(body)
    assert level > -30.0, f"recorded level {level:.1f} dBFS"
    assert abs(freq - 440.0) < 10.0, f"recorded peak at {freq:.1f} Hz"

    # Stop -> silence, measured on the recording: samples recorded after the instant of stop() until
    # silence. The microphone's own delay only makes this larger, so it is an upper bound.
    stop_to_silence_ms = (start_mark + end - stop_mark) / RATE * 1000
    assert stop_to_silence_ms < 150.0, f"{stop_to_silence_ms:.0f} ms from stop() to silence"
    assert not np.any(np.abs(x[end:]) > SILENT)

    # What stop() says was heard agrees with what reached the sink before silence (within one device
    # buffer: the latency still queued in the device, plus the 5 ms fade-out).
    # (count 5 ms windows with sound rather than the span, so that a gap from an underflow under a
    # loaded CPU does not count as played audio)
    windows = np.abs(x[onset:end][: (end - onset) // 120 * 120]).reshape(-1, 120).max(axis=1)
    recorded_ms = float(np.count_nonzero(windows > SILENT) * 5 + ((end - onset) % 120) / RATE * 1000)
    assert report.item_id == "tone"
    assert report.played_ms <= recorded_ms + 5, (report, recorded_ms)
    assert recorded_ms - report.played_ms <= latency_ms + 5 + 30, (report, recorded_ms, latency_ms)
    print(f"\noutput latency {latency_ms:.1f} ms, stop->silence <= {stop_to_silence_ms:.1f} ms, "
          f"played_ms at stop {report.played_ms}, recorded {recorded_ms:.1f} ms, level {level:.1f} dBFS, "
          f"peak {freq:.1f} Hz, underflows {speaker.underflows}, overflows {mic.overflows}")


@pytest.mark.audio
def test_pause_and_resume_on_a_real_stream(devices):
    buf, rec, mic, speaker = devices
    buf.enqueue("tone", sine(1.0))
    time.sleep(0.4)
    paused = buf.pause()
    time.sleep(0.4)
    quiet_from = rec.mark()
    time.sleep(0.3)
    quiet = rec.audio()[quiet_from:]
    assert not np.any(np.abs(quiet) > SILENT), "audio went on while paused"
    buf.resume()
    time.sleep(1.0)
    assert not buf.is_playing()
    # heard + still in the device's buffer + kept for resume = the whole item
    assert abs(paused.played_ms + buf.output_latency_ms + paused.discarded_ms - 1000) <= 2, paused
    assert buf.played_ms("tone") == 1000


def write_wav(path: Path, data: np.ndarray, rate: int, width: int) -> None:
    """data: float in [-1, 1], shape (n, channels)."""
    if width == 1:
        raw = np.clip(data * 127 + 128, 0, 255).astype(np.uint8).tobytes()
    elif width == 2:
        raw = (data * 32767).astype("<i2").tobytes()
    elif width == 3:
        v = (data * 8388607).astype("<i4").reshape(-1)
        raw = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], axis=1).astype(np.uint8).tobytes()
    else:
        raw = (data * 2147483647).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def test_wav_file_source_paces_in_real_time(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / "tone.wav"
    write_wav(path, stereo, rate, 2)
    rec = Recorder()
    source = WavFileSource(path, rec, chunk_ms=20, trailing_silence_s=0.2)
    assert abs(source.duration_s - 1.0) < 1e-3
    t0 = time.monotonic()
    source.start()
    assert source.finished.wait(3.0)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed <= 1.2, f"1 s of audio took {elapsed:.3f} s"
    assert source.done.wait(2.0)
    source.stop()
    with rec.lock:
        chunks = list(rec.chunks)
    assert {(c.dtype, c.shape) for c in chunks} == {(np.dtype("int16"), (480,))}
    audio = np.concatenate(chunks)
    assert len(audio) == 50 * 480 + 10 * 480  # 1 s of file, then 0.2 s of silence
    assert abs(peak_hz(audio[:RATE]) - 440) < 2
    assert not audio[RATE:].any()


def test_wav_file_source_keeps_sending_silence_until_stopped(tmp_path):
    path = tmp_path / "short.wav"
    write_wav(path, np.full((2400, 1), 0.25), 24000, 2)  # 100 ms
    rec = Recorder()
    source = WavFileSource(path, rec)
    source.start()
    assert source.finished.wait(2.0)
    time.sleep(0.3)
    source.stop()
    assert not source.running and source.done.is_set()
    n = rec.mark()
    assert n >= 2400 + 10 * 480
    time.sleep(0.1)
    assert rec.mark() == n


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("rate,channels", [(24000, 1), (16000, 2), (48000, 3)])
def test_read_wav_24k_formats(tmp_path, width, rate, channels):
    t = np.arange(rate // 2) / rate
    mono = 0.5 * np.sin(2 * np.pi * 300 * t)
    data = np.stack([mono] * channels, axis=1)
    path = tmp_path / f"x{width}.wav"
    write_wav(path, data, rate, width)
    pcm = read_wav_24k(path)
    assert pcm.dtype == np.int16 and abs(len(pcm) - RATE // 2) <= 1
    assert abs(peak_hz(pcm) - 300) < 3
    assert abs(rms_dbfs(pcm[1000:-1000]) - (-9.03)) < 0.5


def test_wav_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        WavFileSource(tmp_path / "missing.wav", print)
    text = tmp_path / "notes.wav"
    text.write_text("hello, this is not audio at all")
    with pytest.raises(ValueError, match="not a WAV file"):
        WavFileSource(text, print)
    # IEEE float WAV (format tag 3): written by hand since the wave module only writes PCM
    floats = np.zeros(100, np.float32).tobytes()
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (3).to_bytes(2, "little") + (1).to_bytes(2, "little")
           + (24000).to_bytes(4, "little") + (96000).to_bytes(4, "little") + (4).to_bytes(2, "little")
           + (32).to_bytes(2, "little"))
    body = b"WAVE" + fmt + b"data" + len(floats).to_bytes(4, "little") + floats
    float_wav = tmp_path / "float.wav"
    float_wav.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    with pytest.raises(ValueError, match="unsupported WAV encoding"):
        WavFileSource(float_wav, print)
