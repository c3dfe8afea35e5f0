"""Recording a conversation's audio to a stereo WAV: left the microphone, right the assistant as played.

For demos and for bug reports about turn-taking ("it cut me off here"): both sides on one timeline, so the
overlap of a barge-in and the gap before an answer can be seen and heard. No Qt, no event loop.

The microphone is the clock. Each microphone chunk (24 kHz int16, after echo cancellation: what the model
could hear) is written with as many samples of played assistant audio beside it, taken from what the speaker
callback handed the device meanwhile (silence where nothing played). The two devices' clocks drift apart
slowly; played audio more than `max_lag_ms` ahead of the microphone is dropped, so the sides never drift
further apart than that. With no microphone chunks at all, what was played is written at the end.
"""

from __future__ import annotations

import threading
import wave
from collections import deque
from pathlib import Path

import numpy as np

from ..core.pcm import PROTOCOL_RATE, float_to_pcm16

__all__ = ["ConversationRecorder"]


class ConversationRecorder:
    def __init__(self, path: str | Path, rate: int = PROTOCOL_RATE, max_lag_ms: int = 250) -> None:
        self.path = Path(path)
        self.rate = rate
        self.max_lag = rate * max_lag_ms // 1000
        self._played: deque[np.ndarray] = deque()  # float32 blocks as the speaker got them
        self._played_len = 0
        self._lock = threading.Lock()
        self._wav = wave.open(str(self.path), "wb")  # raises OSError: the caller says so
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self.frames_written = 0
        self.dropped_played = 0  # samples of played audio dropped to keep the sides aligned
        self.closed = False

    @property
    def seconds(self) -> float:
        return self.frames_written / self.rate

    # ------------------------------------------------------------------ the speaker callback's side
    def add_played(self, block: np.ndarray) -> None:
        """A block handed to the speaker (float32 at `rate`, full scale 1.0). The audio callback calls it: a copy
        under a lock, nothing more."""
        if self.closed:
            return
        copy = np.array(block, dtype=np.float32).reshape(-1)  # only a copy here; converted on the microphone's side
        with self._lock:
            self._played.append(copy)
            self._played_len += len(copy)

    # ------------------------------------------------------------------ the microphone's side (the clock)
    def add_input(self, pcm16: np.ndarray) -> None:
        """A microphone chunk (int16 at `rate`): written now, with the played audio of the same span."""
        if self.closed:
            return
        mic = np.asarray(pcm16, dtype=np.int16).reshape(-1)
        n = len(mic)
        if n == 0:
            return
        self._write(mic, self._take_played(n))

    def _take_played(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            excess = self._played_len - n - self.max_lag
            while excess > 0 and self._played:  # the speaker's clock ran ahead: keep the sides together
                head = self._played[0]
                cut = min(excess, len(head))
                if cut == len(head):
                    self._played.popleft()
                else:
                    self._played[0] = head[cut:]
                self._played_len -= cut
                self.dropped_played += cut
                excess -= cut
            filled = 0
            while filled < n and self._played:
                head = self._played[0]
                k = min(n - filled, len(head))
                out[filled:filled + k] = head[:k]
                if k == len(head):
                    self._played.popleft()
                else:
                    self._played[0] = head[k:]
                self._played_len -= k
                filled += k
        return float_to_pcm16(out)

    def _write(self, left: np.ndarray, right: np.ndarray) -> None:
        frames = np.empty(2 * len(left), dtype="<i2")
        frames[0::2] = left
        frames[1::2] = right
        self._wav.writeframes(frames.tobytes())
        self.frames_written += len(left)

    def close(self) -> float:
        """Write what was played and not yet written (beside silence), finish the file; the seconds written."""
        if self.closed:
            return self.seconds
        self.closed = True
        with self._lock:
            rest = float_to_pcm16(np.concatenate(list(self._played))) if self._played else np.zeros(0, dtype=np.int16)
            self._played.clear()
            self._played_len = 0
        if len(rest):
            self._write(np.zeros(len(rest), dtype=np.int16), rest)
        self._wav.close()
        return self.seconds
