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
import struct
import threading
import time
import wave
from typing import Callable

import numpy as np
import soxr

from desktop.core.pcm import PROTOCOL_RATE, float_to_pcm16, ms_to_samples

log = logging.getLogger(__name__)

__all__ = ["FileVoice", "WavFileSource", "read_audio_24k", "read_wav_24k", "write_wav_24k"]

#: Other formats than WAV are decoded by PyAV (FFmpeg) where it is installed (a source install: faster-whisper
#: brings it); the installer bundle leaves it out, so there only WAV is read.
OTHER_FORMATS = (".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm", ".mka")


def read_wav_24k(path: str | os.PathLike, max_seconds: float | None = None) -> np.ndarray:
    """Decode an integer-PCM WAV file (8/16/24/32-bit, any channels, any rate) to 24 kHz mono int16.

    Raises ValueError with a readable message for a missing file, a non-WAV file, an unsupported
    encoding, or (with `max_seconds`) a file longer than that, told from its header before it is read.
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
            frames = w.getnframes()
            if max_seconds is not None and rate > 0 and frames / rate > max_seconds:
                raise ValueError(f"{os.path.basename(path)} is {_duration_text(frames / rate)} long; "
                                 f"at most {_duration_text(max_seconds)} can be spoken")
            raw = w.readframes(frames)
    except wave.Error as exc:
        msg = str(exc)
        if "unknown format" in msg:
            raise ValueError(
                f"{path}: unsupported WAV encoding ({msg}); only integer PCM (8/16/24/32-bit) is supported"
            ) from None
        raise ValueError(f"{path} is not a WAV file ({msg})") from None
    except EOFError:
        raise ValueError(f"{path} is not a WAV file (truncated header)") from None
    except (RuntimeError, struct.error):  # the wave module's answer to chunk sizes that point past the file
        raise ValueError(f"{path} is not a WAV file (corrupt header)") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if channels < 1 or rate < 1:
        raise ValueError(f"{path}: invalid WAV header ({channels} channels, {rate} Hz)")
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{path}: unsupported sample width of {width * 8} bits")
    usable = len(raw) - len(raw) % (width * channels)
    if width == 2 and channels == 1 and rate == PROTOCOL_RATE:
        return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int16)  # already the protocol's format: as is
    audio = _decode(raw[:usable], width).reshape(-1, channels)
    mono = audio.mean(axis=1, dtype=np.float64) if channels > 1 else audio[:, 0].astype(np.float64)
    if rate != PROTOCOL_RATE and len(mono):
        mono = soxr.resample(mono, rate, PROTOCOL_RATE, quality="HQ")
    return float_to_pcm16(mono)


def write_wav_24k(path: str | os.PathLike, pcm16: np.ndarray) -> None:
    """24 kHz mono int16 samples to a WAV file (written beside, then renamed: never half a file)."""
    path = os.fspath(path)
    partial = path + ".part"
    try:
        with wave.open(partial, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(PROTOCOL_RATE)
            w.writeframes(np.asarray(pcm16, dtype="<i2").tobytes())
        os.replace(partial, path)
    except BaseException:
        try:
            os.unlink(partial)
        except OSError:
            pass  # the partial file may never have been made; the write's own error is what is raised
        raise


def read_audio_24k(path: str | os.PathLike, max_seconds: float | None = None) -> np.ndarray:
    """Any sound file to 24 kHz mono int16: WAV here, other formats through PyAV when it is installed.

    Raises ValueError with a message for the user (missing, unreadable, unsupported, too long)."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in OTHER_FORMATS:
        return read_wav_24k(path, max_seconds)
    if not os.path.isfile(path):
        raise ValueError(f"audio file not found: {path}")
    try:
        import av

        decode_error = av.error.FFmpegError  # the installer's placeholder module raises RuntimeError here
    except (ImportError, RuntimeError):
        raise ValueError(f"{os.path.basename(path)}: this build reads WAV files only; convert it first "
                         "(e.g. ffmpeg -i in.mp3 out.wav)") from None
    limit = None if max_seconds is None else int(max_seconds * PROTOCOL_RATE)
    pieces: list[np.ndarray] = []
    total = 0
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise ValueError(f"{os.path.basename(path)} has no sound in it")
            stream = container.streams.audio[0]
            if max_seconds is not None and stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
                if seconds > max_seconds:
                    raise ValueError(f"{os.path.basename(path)} is {_duration_text(seconds)} long; "
                                     f"at most {_duration_text(max_seconds)} can be spoken")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=PROTOCOL_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                    total += len(pieces[-1])
                if limit is not None and total > limit:
                    raise ValueError(f"{os.path.basename(path)} is longer than {_duration_text(max_seconds)}; "
                                     "that is the most that can be spoken")
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except decode_error as exc:
        raise ValueError(f"{os.path.basename(path)} could not be decoded ({exc})") from None
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)


def _duration_text(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


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
        audio: np.ndarray | None = None,
    ) -> None:
        """`audio`: 24 kHz int16 samples to play instead of reading `path` (which then only names them)."""
        self.path = os.fspath(path)
        self.on_chunk = on_chunk
        self.chunk_ms = chunk_ms
        self.trailing_silence_s = trailing_silence_s
        self.chunk_samples = ms_to_samples(chunk_ms)
        if self.chunk_samples < 1:
            raise ValueError("chunk_ms must be at least 1/24 ms")
        self._audio = read_wav_24k(self.path) if audio is None else np.asarray(audio, dtype=np.int16).reshape(-1)
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


class FileVoice:
    """A sound file spoken as the user's voice: each microphone chunk is swapped for the file's next one.

    Pulled in step with the microphone's own chunks (no clock of its own), so the server's audio clock and
    Parley's stay together; after the file's end `take` gives silence and `finished` is True."""

    #: The longest file that can be spoken (a realtime turn is seconds long; this also bounds memory).
    MAX_SECONDS = 300.0

    def __init__(self, audio: np.ndarray, name: str, path: str = "") -> None:
        self.audio = np.asarray(audio, dtype=np.int16).reshape(-1)
        self.name = name
        self.path = path
        self.position = 0  # samples handed out
        self.end_reported = False  # the capture thread has told the event loop that it was all handed out

    @classmethod
    def open(cls, path: str | os.PathLike) -> "FileVoice":
        """Raises ValueError with the reason (missing, not audio, silent, too long)."""
        audio = read_audio_24k(path, cls.MAX_SECONDS)
        name = os.path.basename(os.fspath(path))
        if len(audio) < ms_to_samples(100):
            raise ValueError(f"{name} holds less than 0.1 s of sound")
        if not np.any(np.abs(audio.astype(np.int32)) > 32):  # below -60 dBFS throughout
            raise ValueError(f"{name} is silent")
        return cls(audio, name, os.fspath(path))

    @property
    def duration_ms(self) -> int:
        return len(self.audio) * 1000 // PROTOCOL_RATE

    @property
    def position_ms(self) -> int:
        return min(self.position, len(self.audio)) * 1000 // PROTOCOL_RATE

    @property
    def finished(self) -> bool:
        return self.position >= len(self.audio)

    def take(self, n: int) -> np.ndarray:
        """The next `n` samples, padded with silence past the end."""
        piece = self.audio[self.position:self.position + n]
        self.position += n
        if len(piece) < n:
            piece = np.concatenate([piece, np.zeros(n - len(piece), dtype=np.int16)])
        return piece
