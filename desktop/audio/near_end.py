"""The capture thread's work on the microphone signal, 10 ms at a time, before anything reaches the event loop.

For each 10 ms block: echo cancellation (when an echo canceller is set), the loudness-onset detector on the
result (`core.speech_onset`: reported at once, so that a barge-in can hold playback within ~20 ms of the
user's first sound), and batching into 20 ms chunks for the event loop (one wake-up per 20 ms, not per block).
Each chunk goes with how many dB the canceller took out of it (None without a canceller): the local VAD's
barge-in decisions use it to tell the assistant's echo residue from the user's voice.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from desktop.core.pcm import PROTOCOL_RATE, ms_to_samples, rms_dbfs
from desktop.core.speech_onset import SpeechOnsetDetector, SpeechOnsetSettings


class NearEndProcessor:
    """Not thread-safe: one capture thread calls `process`; `echo` may be swapped between blocks."""

    def __init__(
        self,
        on_chunk: Callable[[np.ndarray, float | None], None],
        on_onset: Callable[[int], None],
        *,
        chunk_ms: int = 20,
        block_ms: int = 10,
        onset: SpeechOnsetSettings | None = None,
    ) -> None:
        self.on_chunk = on_chunk
        self.on_onset = on_onset
        self.echo = None  # EchoCanceller | EchoGate | ConvergingEchoCanceller | None
        self.onset_detector = SpeechOnsetDetector(onset)
        self.chunk_samples = ms_to_samples(chunk_ms)
        self.block_samples = ms_to_samples(block_ms)
        #: Samples delivered since the start: the input clock (ms = samples * 1000 // PROTOCOL_RATE).
        self.samples = 0
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._raw_energy = 0.0  # of the pending blocks, before / after the canceller (mean square × samples)
        self._out_energy = 0.0

    def process(self, pcm16: np.ndarray) -> None:
        """One block from the microphone (int16 mono, 24 kHz, any length; 10 ms from MicrophoneCapture)."""
        n = self.block_samples
        for start in range(0, len(pcm16), n):
            self._block(pcm16[start:start + n])

    def _block(self, block: np.ndarray) -> None:
        echo = self.echo
        raw_dbfs = None
        if echo is not None:
            raw_dbfs = rms_dbfs(block)  # how much the canceller removes tells echo from a voice
            block = echo.process_near_end(block)
            if len(block) == 0:
                return
        self.samples += len(block)
        out_dbfs = rms_dbfs(block)
        if self.onset_detector.update(out_dbfs, raw_dbfs):
            self.on_onset(self.samples * 1000 // PROTOCOL_RATE)
        if raw_dbfs is not None:
            self._raw_energy += 10.0 ** (raw_dbfs / 10.0) * len(block)
            self._out_energy += 10.0 ** (out_dbfs / 10.0) * len(block)
        self._pending.append(block)
        self._pending_len += len(block)
        if self._pending_len >= self.chunk_samples:
            chunk = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            removed = None
            if self._raw_energy > 0.0:
                removed = 10.0 * math.log10(self._raw_energy / max(self._out_energy, 1e-12 * len(chunk)))
            self._pending = []
            self._pending_len = 0
            self._raw_energy = self._out_energy = 0.0
            self.on_chunk(chunk, removed)
