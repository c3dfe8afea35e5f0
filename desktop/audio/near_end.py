"""The capture thread's work on the microphone signal, 10 ms at a time, before anything reaches the event loop.

For each 10 ms block: echo cancellation (when an echo canceller is set), the loudness-onset detector on the
result (`core.speech_onset`: reported at once, so that a barge-in can hold playback within ~20 ms of the
user's first sound), and one chunk for the event loop per call once `chunk_ms` (20 ms) are pending: the
microphone hands over 40 ms batches while nothing can be interrupted (one loop wake-up per 40 ms) and single
10 ms blocks when one may start a barge-in (`wants_block_now`; one loop wake-up per 20 ms, as before).
Each chunk goes with how many dB the canceller took out of it (None without a canceller): the local VAD's
barge-in decisions use it to tell the assistant's echo residue from the user's voice.

`FarEndLevels` keeps the level of what the speaker was handed over the last half second (fed from the
playback callback), so the onset detector can tell a voice from any echo of it while the canceller is still
suppressing double talk (see `core.speech_onset`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from desktop.core.pcm import PROTOCOL_RATE, block_levels_dbfs, ms_to_samples, rms_dbfs
from desktop.core.speech_onset import SpeechOnsetDetector, SpeechOnsetSettings

log = logging.getLogger(__name__)


class FarEndLevels:
    """The loudest far-end level of the last `window_s`, fed from any thread (the playback callback)."""

    def __init__(self, window_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = float(window_s)
        self._clock = clock
        self._lock = threading.Lock()
        # (when fed, dBFS), levels strictly decreasing from left to right: a block louder than earlier ones
        # retires them (they can never again be the loudest of a window that holds it), so the loudest of
        # the window is the leftmost entry still inside it.
        self._levels: deque[tuple[float, float]] = deque()

    def feed(self, block: np.ndarray) -> None:
        """A float block handed to the speaker (full scale 1.0, any rate; the playback tap's blocks)."""
        x = np.asarray(block).reshape(-1)
        if x.size == 0:
            return
        level = rms_dbfs(x, full_scale=1.0)
        now = self._clock()
        with self._lock:
            levels = self._levels
            while levels and levels[-1][1] <= level:
                levels.pop()
            levels.append((now, level))
            while levels and levels[0][0] < now - self.window_s:
                levels.popleft()

    def recent_max_dbfs(self) -> float | None:
        """None when nothing was fed within the window."""
        horizon = self._clock() - self.window_s
        with self._lock:
            levels = self._levels
            while levels and levels[0][0] < horizon:
                levels.popleft()
            return levels[0][1] if levels else None


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
        self.far_levels: FarEndLevels | None = None  # what the speaker plays, for the double-talk route
        self.onset_detector = SpeechOnsetDetector(onset)
        self.chunk_samples = ms_to_samples(chunk_ms)
        self.block_samples = ms_to_samples(block_ms)
        #: Samples delivered since the start: the input clock (ms = samples * 1000 // PROTOCOL_RATE).
        self.samples = 0
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self._raw_energy = 0.0  # of the pending blocks, before / after the canceller (mean square × samples)
        self._out_energy = 0.0
        #: `wants_block_now`: how far below the loudest echo expected a block may be and still be processed
        #: at once (the learnt coupling is an upper bound; a voice as loud as the echo lifts the block ~3 dB).
        self.flush_margin_db = 6.0

    def wants_block_now(self, raw_dbfs: float) -> bool:
        """Whether a microphone block at `raw_dbfs` (before echo cancellation) must be processed at once.

        Asked from the PortAudio callback for every 10 ms block, before any processing: False lets the block
        wait up to 40 ms for its batch. A block waits only when it cannot be part of an onset that would hold
        playback: nothing has played within the last half second (there is nothing to hold), or it is below
        the level an onset needs (echo cancellation only takes level away), or, once the echo coupling is
        learnt, it is not louder than the echo expected of what the speaker plays less `flush_margin_db`.
        Reads only numbers the capture thread writes whole (a stale one costs a late block, not a decision:
        the onset detector sees the same blocks in the same order either way)."""
        far = self.far_levels
        detector = self.onset_detector
        s = detector.settings
        far_dbfs = far.recent_max_dbfs() if far is not None else None
        if far_dbfs is None or far_dbfs <= s.far_active_dbfs:
            return False
        if detector.in_run:
            return True  # in the middle of a possible onset: its next block decides
        if raw_dbfs < detector.loud_enough_dbfs() - 1.0:
            return False
        coupling = detector.echo_coupling_db
        if coupling is None or self.echo is None:
            return True
        return raw_dbfs >= far_dbfs + coupling - self.flush_margin_db

    def process(self, pcm16: np.ndarray, substitute: np.ndarray | None = None) -> None:
        """One block from the microphone (int16 mono, 24 kHz, any length; 10 ms from MicrophoneCapture).

        `substitute` (as long as `pcm16`): what goes on in the microphone's place, a sound file speaking for the
        user. The echo canceller still takes the microphone's block, to stay in step with what the speaker plays,
        but the substitute bypasses it: it holds no echo, and a canceller would subtract its echo estimate from
        it. Onsets, levels and chunks then come from the substitute, as without a canceller."""
        self._blocks(pcm16, substitute)
        if self._pending_len >= self.chunk_samples:
            chunk = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            removed = None
            if self._raw_energy > 0.0:
                removed = 10.0 * math.log10(self._raw_energy / max(self._out_energy, 1e-12 * len(chunk)))
            self._pending = []
            self._pending_len = 0
            self._raw_energy = self._out_energy = 0.0
            self.on_chunk(chunk, removed)

    def _blocks(self, pcm16: np.ndarray, substitute: np.ndarray | None) -> None:
        """A batch of blocks (40 ms while nothing plays, one block when it may start a barge-in), deciding as
        block by block would: the canceller takes the batch in one call (before each of its frames it is handed
        the far end fed so far, as block by block) and the levels come from one numpy pass; the onset detector
        still sees every block, in order."""
        echo = self.echo
        raw_levels = None
        if substitute is not None:
            if echo is not None:
                echo.process_near_end(pcm16)  # kept in step; its output is not used
            out = substitute
        elif echo is not None:
            out = echo.process_near_end(pcm16)
            if len(out) != len(pcm16):  # the canceller held part of a frame back: its output goes as one block
                self._pending_from_canceller(pcm16, out)
                return
            raw_levels = block_levels_dbfs(pcm16, self.block_samples)
        else:
            out = pcm16
        n = self.block_samples
        out_levels = block_levels_dbfs(out, n)
        far = self.far_levels
        far_dbfs = far.recent_max_dbfs() if far is not None and raw_levels is not None else None
        for i, out_dbfs in enumerate(out_levels):
            raw_dbfs = None if raw_levels is None else raw_levels[i]
            self._after_canceller(out[i * n:(i + 1) * n], out_dbfs, raw_dbfs, far_dbfs)

    def _pending_from_canceller(self, raw: np.ndarray, out: np.ndarray) -> None:
        """A canceller's output that does not line up with its input (a partial frame held back): as one block."""
        if len(out) == 0:
            return
        far = self.far_levels
        self._after_canceller(out, rms_dbfs(out), rms_dbfs(raw),
                              far.recent_max_dbfs() if far is not None else None)

    def _after_canceller(self, block: np.ndarray, out_dbfs: float, raw_dbfs: float | None,
                         far_dbfs: float | None) -> None:
        self.samples += len(block)
        detector = self.onset_detector
        if detector.update(out_dbfs, raw_dbfs, far_dbfs):
            at_ms = self.samples * 1000 // PROTOCOL_RATE
            self.on_onset(at_ms)
            if detector.last_onset_double_talk:
                expected_echo = (far_dbfs or 0.0) + (detector.echo_coupling_db or 0.0)
                log.info("voice onset at %d ms over the playback (double talk): the microphone is %.1f dB above "
                         "the loudest echo expected (%.1f dBFS)", at_ms, (raw_dbfs or 0.0) - expected_echo,
                         expected_echo)
            else:
                log.debug("voice onset at %d ms (after echo cancellation)", at_ms)
        if raw_dbfs is not None:
            self._raw_energy += 10.0 ** (raw_dbfs / 10.0) * len(block)
            self._out_energy += 10.0 ** (out_dbfs / 10.0) * len(block)
        self._pending.append(block)
        self._pending_len += len(block)
