"""The first 20 ms of a voice, from loudness alone — fast enough to hold playback before a VAD could know.

Silero needs 100-150 ms of speech before its probability crosses the threshold. A sudden rise in the
microphone's level (after echo cancellation) is visible within two 10 ms chunks. It is not proof of
speech — a cough, a door, a keystroke rise too — so it only *holds* playback (reversibly); the VAD then
confirms it or playback goes on (see `local_barge_in`).

An onset is `chunks` consecutive chunks that are all
- at least `rise_db` above the tracked noise floor and above `min_dbfs`, and
- not echo: when the raw microphone level is known, the echo canceller removed at most `max_echo_removed_db`
  from the chunk. Echo is what the canceller removes (20-60 dB once converged); the user's voice passes
  through it almost unchanged. Without echo cancellation (headset, files) this test is skipped.

The noise floor follows falls quickly (`floor_fall_db` per chunk) and rises by `floor_rise_db` per chunk, so steady noise (a fan,
a noisy room) stops counting as an onset within seconds. Pure arithmetic on levels; no clocks, no audio.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeechOnsetSettings:
    rise_db: float = 18.0
    min_dbfs: float = -50.0
    chunks: int = 2
    max_echo_removed_db: float = 6.0
    floor_rise_db: float = 0.1  # per chunk (10 dB/s with 10 ms chunks)
    floor_fall_db: float = 3.0  # per chunk: one suppressed chunk does not empty the floor
    initial_floor_dbfs: float = -70.0


class SpeechOnsetDetector:
    def __init__(self, settings: SpeechOnsetSettings | None = None) -> None:
        self.settings = settings or SpeechOnsetSettings()
        self.floor_dbfs: float | None = None
        self._run = 0

    def reset(self) -> None:
        self._run = 0

    def loud(self, level_dbfs: float, raw_dbfs: float | None = None) -> bool:
        """Whether one chunk, taken alone, looks like the start of a voice (before the floor update)."""
        s = self.settings
        floor = self.floor_dbfs if self.floor_dbfs is not None else s.initial_floor_dbfs
        if level_dbfs < max(floor + s.rise_db, s.min_dbfs):
            return False
        if raw_dbfs is not None and raw_dbfs - level_dbfs > s.max_echo_removed_db:
            return False
        return True

    def update(self, level_dbfs: float, raw_dbfs: float | None = None) -> bool:
        """One chunk's level (dBFS, after echo cancellation); True on the chunk that completes an onset."""
        s = self.settings
        loud = self.loud(level_dbfs, raw_dbfs)
        self._run = self._run + 1 if loud else 0
        if self.floor_dbfs is None:
            self.floor_dbfs = min(level_dbfs, s.initial_floor_dbfs) if loud else level_dbfs
        elif level_dbfs < self.floor_dbfs:
            self.floor_dbfs = max(level_dbfs, self.floor_dbfs - s.floor_fall_db)
        else:
            self.floor_dbfs = min(level_dbfs, self.floor_dbfs + s.floor_rise_db)
        return self._run == s.chunks
