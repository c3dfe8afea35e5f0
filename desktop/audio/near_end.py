"""The capture thread's work on the microphone signal, 10 ms at a time, before anything reaches the event loop.

For each 10 ms block: echo cancellation (when an echo canceller is set), the loudness-onset detector on the
result (`core.speech_onset`: reported at once, so that a barge-in can hold playback within ~20 ms of the
user's first sound), and one chunk for the event loop per call once `batch_ms` (40 ms) are pending, or
`chunk_ms` (20 ms) while it is in a hurry (push-to-talk held, a file speaking, an onset under way or just
reported); `playing_chunk_ms` can make it longer while the speaker plays (off by default). The microphone
hands over 40 ms batches while nothing can be interrupted, 100 ms ones in a quiet room (`block_wait_ms`),
and single 10 ms blocks when one may start a barge-in (`wants_block_now`): those are processed at once,
but wake the event loop only every 40 ms unless an onset is under way.
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
from desktop.core.quiet_room import QuietRoom
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
        batch_ms: int = 40,
        quiet_batch_ms: int = 100,
        playing_chunk_ms: int = 40,
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
        #: `block_wait_ms`: the usual wait of a microphone block, and the longer one of a quiet room.
        self.batch_ms = int(batch_ms)
        self.quiet_batch_ms = int(quiet_batch_ms)
        #: Fed from the PortAudio callback only (`block_wait_ms`), with every block's raw level.
        self.quiet_room = QuietRoom(block_ms=block_ms)
        #: Chunks for the event loop go at `chunk_ms` while `hurry` is set (push-to-talk held: its release
        #: commits what has arrived), a sound file speaks for the user, an onset may be under way or one was
        #: reported within `hurry_after_onset_ms`; at `playing_chunk_ms` while the speaker plays something
        #: audible (the onset detector, which holds playback, sees every block at once anyway; what the loop
        #: does with the chunks then is confirm a barge-in, and an onset makes it hurry); otherwise once
        #: `batch_ms` are pending. So single blocks processed at once for the onset detector
        #: (`wants_block_now`) do not each wake the loop.
        self.hurry = False
        self.batch_samples = max(self.chunk_samples, ms_to_samples(self.batch_ms))
        self.playing_chunk_samples = max(self.batch_samples, ms_to_samples(playing_chunk_ms))
        self.hurry_after_onset_ms = 500
        self._since_onset_ms: int | None = None

    def block_wait_ms(self, raw_dbfs: float) -> int:
        """How long a microphone block at `raw_dbfs` (before echo cancellation) may wait before it is processed.

        Asked from the PortAudio callback for every 10 ms block, in order: 0 when it may start an onset that
        would hold playback (`wants_block_now`), `quiet_batch_ms` when the room has been quiet for a while
        and the speaker has played nothing audible within the last half second (`core.quiet_room`; a block
        louder than the room ends the quiet, and its batch then goes within the usual wait), else `batch_ms`."""
        quiet = self.quiet_room.update(raw_dbfs)
        far_dbfs = self._audible_far_dbfs()
        if self._wants_block_now(raw_dbfs, far_dbfs):
            return 0
        return self.quiet_batch_ms if quiet and far_dbfs is None else self.batch_ms

    def _audible_far_dbfs(self) -> float | None:
        """The loudest level the speaker was handed within the last half second, when it counts as playing."""
        far = self.far_levels
        far_dbfs = far.recent_max_dbfs() if far is not None else None
        if far_dbfs is None or far_dbfs <= self.onset_detector.settings.far_active_dbfs:
            return None
        return far_dbfs

    def wants_block_now(self, raw_dbfs: float) -> bool:
        """Whether a microphone block at `raw_dbfs` (before echo cancellation) must be processed at once.

        Asked from the PortAudio callback for every 10 ms block, before any processing: False lets the block
        wait up to 40 ms for its batch. A block waits only when it cannot be part of an onset that would hold
        playback: nothing has played within the last half second (there is nothing to hold), or it is below
        the level an onset needs (echo cancellation only takes level away), or, once the echo coupling is
        learnt, it is not louder than the echo expected of what the speaker plays less `flush_margin_db`.
        Reads only numbers the capture thread writes whole (a stale one costs a late block, not a decision:
        the onset detector sees the same blocks in the same order either way)."""
        return self._wants_block_now(raw_dbfs, self._audible_far_dbfs())

    def _wants_block_now(self, raw_dbfs: float, far_dbfs: float | None) -> bool:
        if far_dbfs is None:
            return False
        detector = self.onset_detector
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
        if self._pending_len >= self._loop_chunk_samples(substitute):
            chunk = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            removed = None
            if self._raw_energy > 0.0:
                removed = 10.0 * math.log10(self._raw_energy / max(self._out_energy, 1e-12 * len(chunk)))
            self._pending = []
            self._pending_len = 0
            self._raw_energy = self._out_energy = 0.0
            self.on_chunk(chunk, removed)

    def _loop_chunk_samples(self, substitute: np.ndarray | None) -> int:
        """How much must be pending before a chunk goes to the event loop (see `hurry`)."""
        since = self._since_onset_ms
        if (self.hurry or substitute is not None or self.onset_detector.in_run
                or (since is not None and since < self.hurry_after_onset_ms)):
            return self.chunk_samples
        return self.batch_samples if self._audible_far_dbfs() is None else self.playing_chunk_samples

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
        if self._since_onset_ms is not None:
            self._since_onset_ms += len(block) * 1000 // PROTOCOL_RATE
        detector = self.onset_detector
        if detector.update(out_dbfs, raw_dbfs, far_dbfs):
            at_ms = self.samples * 1000 // PROTOCOL_RATE
            self._since_onset_ms = 0
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
