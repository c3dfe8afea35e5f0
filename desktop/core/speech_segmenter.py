"""Turning per-frame speech probabilities into speech start / stop decisions (server-VAD semantics).

Used by the embedded engine for `server_vad` turn detection and by the client for its local VAD.
Semantics follow the Realtime API's server VAD:
- speech starts on the first frame whose probability reaches `threshold` (after `min_speech_ms` of such
  frames); `audio_start_ms` is that frame's start minus `prefix_padding_ms` (never before 0);
- speech stops once the probability has stayed below `threshold - hysteresis` for `silence_duration_ms`;
  `audio_end_ms` is the end of the last speech frame.
Times count from the first frame pushed (the start of the session's input audio).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentStart:
    audio_start_ms: int
    #: When the decision was made (end of the deciding frame), for latency accounting.
    decided_at_ms: int


@dataclass(frozen=True)
class SegmentEnd:
    audio_end_ms: int
    decided_at_ms: int


class SpeechSegmenter:
    def __init__(
        self,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        frame_ms: float = 32.0,
        min_speech_ms: float = 0.0,
        hysteresis: float = 0.15,
    ) -> None:
        self.frame_ms = frame_ms
        self.configure(threshold, prefix_padding_ms, silence_duration_ms, min_speech_ms, hysteresis)
        self.frames = 0
        self.in_speech = False
        self._candidate_start: int | None = None  # frame index where above-threshold run began
        self._last_speech_frame = -1
        self.last_probability = 0.0

    def configure(
        self,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
        min_speech_ms: float | None = None,
        hysteresis: float | None = None,
    ) -> None:
        self.threshold = min(1.0, max(0.0, float(threshold)))
        self.prefix_padding_ms = max(0, int(prefix_padding_ms))
        self.silence_duration_ms = max(0, int(silence_duration_ms))
        if min_speech_ms is not None:
            self.min_speech_ms = max(0.0, float(min_speech_ms))
        if hysteresis is not None:
            self.hysteresis = max(0.0, float(hysteresis))

    @property
    def now_ms(self) -> int:
        return int(self.frames * self.frame_ms)

    def reset(self) -> None:
        """Forget any speech in progress (after a commit or clear); the clock keeps running."""
        self.in_speech = False
        self._candidate_start = None

    def push(self, probability: float) -> SegmentStart | SegmentEnd | None:
        """One frame's speech probability; returns a boundary decided at the end of this frame, if any."""
        index = self.frames
        self.frames += 1
        self.last_probability = probability
        end_ms = int(self.frames * self.frame_ms)
        if not self.in_speech:
            if probability >= self.threshold:
                if self._candidate_start is None:
                    self._candidate_start = index
                run_ms = (index - self._candidate_start + 1) * self.frame_ms
                if run_ms >= max(self.min_speech_ms, self.frame_ms):
                    self.in_speech = True
                    self._last_speech_frame = index
                    start_ms = int(self._candidate_start * self.frame_ms) - self.prefix_padding_ms
                    self._candidate_start = None
                    return SegmentStart(max(0, start_ms), end_ms)
            else:
                self._candidate_start = None
            return None
        if probability >= self.threshold - self.hysteresis:
            self._last_speech_frame = index
            return None
        silent_ms = (index - self._last_speech_frame) * self.frame_ms
        if silent_ms >= self.silence_duration_ms:
            self.in_speech = False
            return SegmentEnd(int((self._last_speech_frame + 1) * self.frame_ms), end_ms)
        return None
