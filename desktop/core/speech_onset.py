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

**Double talk.** While the assistant speaks, WebRTC's AEC3 also suppresses the start of the user's voice for
a while: through the benchmark's stage, the first loud block reached the detector after the canceller
20-530 ms later than without it. So a chunk also counts when the *raw* microphone level is louder than any
echo of what was just played could be: more than `echo_margin_db` above the loudest far-end level of the
last half second plus the echo coupling. The coupling (raw microphone level minus that far-end level) is
learnt from chunks where the far end plays and nothing looks like a voice, as the largest of the last
`coupling_window` such chunks; until `coupling_min_chunks` have been seen this route stays shut. It is a
level test (a Geigel-style double-talk detector), so it keeps working when the echo path's delay shifts,
which the canceller has to re-learn. If the echo got louder (the user turned the speaker up), its chunks
pass this test and are not learnt; but a real barge-in silences the far end, so when the far end is still
playing `verify_chunks` after an onset that needed this route, the onset was the echo: its chunks' coupling
is learnt and the route stops firing on it.

The noise floor follows falls quickly (`floor_fall_db` per chunk) and rises by `floor_rise_db` per chunk, so steady noise (a fan,
a noisy room) stops counting as an onset within seconds. Pure arithmetic on levels; no clocks, no audio.
"""

from __future__ import annotations

from collections import deque
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
    #: Double-talk route (see the module doc). The far end counts as playing above this level.
    far_active_dbfs: float = -50.0
    echo_margin_db: float = 10.0
    coupling_window: int = 150  # chunks (1.5 s of far-end playing)
    coupling_min_chunks: int = 30
    #: Chunks after a loud one during which the coupling is not learnt (the user may still be speaking).
    coupling_pause_chunks: int = 50
    #: After an onset through the double-talk route: the far end still playing this many chunks later means
    #: the hold was released, so the onset was echo.
    verify_chunks: int = 60


class SpeechOnsetDetector:
    def __init__(self, settings: SpeechOnsetSettings | None = None) -> None:
        self.settings = settings or SpeechOnsetSettings()
        self.floor_dbfs: float | None = None
        self._run = 0
        self._coupling: deque[float] = deque(maxlen=self.settings.coupling_window)
        self._learn_pause = 0
        self.double_talk_chunks = 0  # chunks that counted only through the double-talk route
        self.echo_onsets = 0  # double-talk onsets found to be echo (see `verify_chunks`)
        self.last_onset_double_talk = False  # whether the last onset needed the double-talk route
        self._run_coupling: list[float] = []  # raw - far of the current run's double-talk chunks
        self._verify: tuple[int, list[float]] | None = None  # (chunks to go, coupling values to learn)

    @property
    def echo_coupling_db(self) -> float | None:
        """The learnt upper bound of echo level minus far-end level (None until enough far end was heard)."""
        if len(self._coupling) < self.settings.coupling_min_chunks:
            return None
        return max(self._coupling)

    def reset(self) -> None:
        self._run = 0

    def forget_echo_coupling(self) -> None:
        """The speaker or the microphone changed: the echo comes back differently, learn it again."""
        self._coupling.clear()
        self._verify = None

    @property
    def in_run(self) -> bool:
        """Whether the last chunk was loud: the next one may complete an onset."""
        return self._run > 0

    def loud_enough_dbfs(self) -> float:
        """The level a chunk must reach to count: `rise_db` above the noise floor, and `min_dbfs`."""
        s = self.settings
        floor = self.floor_dbfs if self.floor_dbfs is not None else s.initial_floor_dbfs
        return max(floor + s.rise_db, s.min_dbfs)

    def loud(self, level_dbfs: float, raw_dbfs: float | None = None) -> bool:
        """Whether one chunk, taken alone, looks like the start of a voice (before the floor update)."""
        s = self.settings
        if level_dbfs < self.loud_enough_dbfs():
            return False
        if raw_dbfs is not None and raw_dbfs - level_dbfs > s.max_echo_removed_db:
            return False
        return True

    def louder_than_echo(self, raw_dbfs: float | None, far_dbfs: float | None) -> bool:
        """Whether the raw microphone level is above any echo of the far end (the double-talk route)."""
        s = self.settings
        coupling = self.echo_coupling_db
        if raw_dbfs is None or far_dbfs is None or far_dbfs <= s.far_active_dbfs or coupling is None:
            return False
        return raw_dbfs >= max(far_dbfs + coupling + s.echo_margin_db, self.loud_enough_dbfs())

    def update(self, level_dbfs: float, raw_dbfs: float | None = None, far_dbfs: float | None = None) -> bool:
        """One chunk's level (dBFS, after echo cancellation); True on the chunk that completes an onset.

        raw_dbfs: the same chunk before echo cancellation; far_dbfs: the loudest far-end level of the last
        half second (None when unknown: the double-talk route is then off)."""
        s = self.settings
        far_active = far_dbfs is not None and far_dbfs > s.far_active_dbfs
        self._check_verification(far_active)
        loud = self.loud(level_dbfs, raw_dbfs)
        if not loud and self.louder_than_echo(raw_dbfs, far_dbfs):
            loud = True
            self.double_talk_chunks += 1
            self._run_coupling.append(raw_dbfs - far_dbfs)  # type: ignore[operator]
        elif not loud:
            self._run_coupling = []
        if loud:
            self._learn_pause = s.coupling_pause_chunks
        elif self._learn_pause > 0:
            self._learn_pause -= 1
        elif raw_dbfs is not None and far_active:
            self._coupling.append(raw_dbfs - far_dbfs)  # type: ignore[operator]
        self._run = self._run + 1 if loud else 0
        if self.floor_dbfs is None:
            self.floor_dbfs = min(level_dbfs, s.initial_floor_dbfs) if loud else level_dbfs
        elif level_dbfs < self.floor_dbfs:
            self.floor_dbfs = max(level_dbfs, self.floor_dbfs - s.floor_fall_db)
        else:
            self.floor_dbfs = min(level_dbfs, self.floor_dbfs + s.floor_rise_db)
        onset = self._run == s.chunks
        if onset:
            self.last_onset_double_talk = bool(self._run_coupling)
            if self._run_coupling:
                self._verify = (s.verify_chunks, list(self._run_coupling))
        return onset

    def _check_verification(self, far_active: bool) -> None:
        if self._verify is None:
            return
        if not far_active:
            self._verify = None  # the far end fell silent: a real barge-in (or the answer ended)
            return
        left, values = self._verify
        if left > 1:
            self._verify = (left - 1, values)
            return
        self._verify = None
        self.echo_onsets += 1
        self._coupling.extend(values)
