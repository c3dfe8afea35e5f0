"""A WAV file played into the app as if it were a microphone (tests, demos, `--input-file`).

The whole file is decoded and resampled to 24 kHz mono int16 up front; a thread then hands out
`chunk_ms` chunks in real time: chunk k (0-based) is delivered when (k + 1) × chunk_ms have passed
since start — as a microphone would, a chunk exists only once its audio has been "recorded". Timing
uses deadlines on a monotonic clock, so sleep overshoot does not accumulate into drift. After the
file, silence keeps coming (forever, or `trailing_silence_s`) so that server-side VAD sees the end
of speech.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import wave
from typing import Callable

import numpy as np
import soxr

from desktop.core.pcm import PROTOCOL_RATE, float_to_pcm16, ms_to_samples

log = logging.getLogger(__name__)

__all__ = ["WavFileSource", "read_wav_24k"]


def read_wav_24k(path: str | os.PathLike) -> np.ndarray:
    """Decode an integer-PCM WAV file (8/16/24/32-bit, any channels, any rate) to 24 kHz mono int16.

    Raises ValueError with a readable message for a missing file, a non-WAV file or an unsupported
    encoding.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"audio file is a directory: {path}")
    try:
        with wave.open(path, "rb") as w:
            channels = w.getnchannels()
            width = w.getsampwidth()
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    except wave.Error as exc:
        msg = str(exc)
        if "unknown format" in msg:
            raise ValueError(
                f"{path}: unsupported WAV encoding ({msg}); only integer PCM (8/16/24/32-bit) is supported"
            ) from None
        raise ValueError(f"{path} is not a WAV file ({msg})") from None
    except EOFError:
        raise ValueError(f"{path} is not a WAV file (truncated header)") from None
    if channels < 1 or rate < 1:
        raise ValueError(f"{path}: invalid WAV header ({channels} channels, {rate} Hz)")
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{path}: unsupported sample width of {width * 8} bits")
    usable = len(raw) - len(raw) % (width * channels)
    audio = _decode(raw[:usable], width).reshape(-1, channels)
    mono = audio.mean(axis=1, dtype=np.float64) if channels > 1 else audio[:, 0].astype(np.float64)
    if rate != PROTOCOL_RATE and len(mono):
        mono = soxr.resample(mono, rate, PROTOCOL_RATE, quality="HQ")
    return float_to_pcm16(mono)


def _decode(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes to float64 in [-1, 1)."""
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float64) / float(1 << 23)
    return np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)


class WavFileSource:
    """Feeds a WAV file to `on_chunk` (24 kHz int16 chunks of `chunk_ms`) in real time from a thread."""

    def __init__(
        self,
        path: str | os.PathLike,
        on_chunk: Callable[[np.ndarray], None],
        chunk_ms: int = 20,
        trailing_silence_s: float | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.on_chunk = on_chunk
        self.chunk_ms = chunk_ms
        self.trailing_silence_s = trailing_silence_s
        self.chunk_samples = ms_to_samples(chunk_ms)
        if self.chunk_samples < 1:
            raise ValueError("chunk_ms must be at least 1/24 ms")
        self._audio = read_wav_24k(self.path)
        self.finished = threading.Event()  # all of the file's audio has been delivered
        self.done = threading.Event()  # the thread ended (file + trailing silence, or stop())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def duration_s(self) -> float:
        return len(self._audio) / PROTOCOL_RATE

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="parley-wav-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop feeding (also the trailing silence) and join the thread. Idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        n = self.chunk_samples
        period = n / PROTOCOL_RATE
        audio = self._audio
        file_chunks = -(-len(audio) // n)
        silence_chunks = None if self.trailing_silence_s is None else int(
            round(self.trailing_silence_s * PROTOCOL_RATE / n)
        )
        silence = np.zeros(n, dtype=np.int16)
        t0 = time.monotonic()
        k = 0
        try:
            while not self._stop.is_set():
                if k >= file_chunks:
                    self.finished.set()
                    if silence_chunks is not None and k - file_chunks >= silence_chunks:
                        break
                # chunk k exists once (k + 1) periods have passed: wait for that deadline
                delay = t0 + (k + 1) * period - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                if k < file_chunks:
                    chunk = audio[k * n:(k + 1) * n]
                    if len(chunk) < n:
                        chunk = np.concatenate([chunk, silence[: n - len(chunk)]])
                else:
                    chunk = silence
                try:
                    self.on_chunk(chunk.copy())
                except Exception:  # noqa: BLE001
                    log.exception("file source chunk handler failed")
                k += 1
                if k == file_chunks:
                    self.finished.set()
        finally:
            self.done.set()
