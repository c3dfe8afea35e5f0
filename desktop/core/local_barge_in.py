"""Barge-in from a local voice activity detector, before the server knows — and recovery from false ones.

Loudness onsets (from `speech_onset`, detected on the capture thread) and the microphone's speech
probability frame by frame arrive here, both with the time in ms on the input clock. While the assistant
is audible:

0. **hold** — a sudden rise in the microphone's level that is not echo (two 10 ms blocks) pauses playback
   at once, keeping the unplayed audio; unless the VAD hears speech within
   `hold_confirm_ms`, playback goes on where it stopped (a cough, a knock). This is what makes the voice
   stop within the user's first syllable; the VAD alone needs 100-150 ms of speech;
1. **onset** — the first frame at or above `threshold` silences playback at once: with `duck_gain` 0 (the
   default) it is a hold like the loudness one (playback pauses, keeping the unplayed audio, so a false
   onset loses no words and a muted moment is never counted as heard); a `duck_gain` above 0 lowers the
   volume instead and playback runs on;
2. **confirmed** — speech lasting `confirm_ms` (or the server's `speech_started`) pauses playback, keeping
   the unplayed audio: the interruption is still reversible;
3. **committed** — the server starts a user turn (`speech_started`): the client stops playback for good,
   truncates the assistant item to what was heard, and cancels the response where the server won't;
4. **false interruption** — a cough, a click or a short "mm-hmm": if local speech ends before
   `confirm_ms`, playback un-ducks; if the server starts no turn within `resume_after_ms` of the pause,
   playback resumes where it stopped.

A **warm-up** keeps the assistant's first `warmup_ms` of audio in a session (while an echo canceller
converges) from triggering anything. Pure logic: no clocks, no devices; the caller passes time in.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from .speech_onset import SpeechOnsetSettings


@dataclass(frozen=True)
class LocalBargeInSettings:
    enabled: bool = True
    threshold: float = 0.6
    #: Local speech this long confirms the interruption (pause playback).
    confirm_ms: int = 200
    #: With no server turn this long after the pause, it was a false interruption: resume.
    resume_after_ms: int = 1500
    #: Gain while ducked (onset, before confirmation). 0.0: hold playback instead (see phase 1 above).
    duck_gain: float = 0.0
    #: The assistant's first ms of audio in a session cannot trigger a local barge-in (AEC convergence).
    warmup_ms: int = 1000
    #: Frames below threshold - hysteresis count as silence (ends a tentative onset).
    hysteresis: float = 0.15
    #: A gap this long ends a local speech run.
    gap_ms: int = 96
    #: Hold playback on a sudden, non-echo rise in level, before the VAD can tell (see `speech_onset`).
    energy_onset: bool = True
    #: A hold the VAD does not confirm within this long is released (playback goes on).
    hold_confirm_ms: int = 320
    #: A speaker underrun (the device played silence nobody handed it) takes the assistant's echo away for
    #: the gap and brings it back shifted, which the canceller has to find again: the echo's return looks
    #: like a sudden rise. A loudness onset within this long of an underrun report, before or after it, is
    #: taken for that (the hold is released at once, or not made). 0: off.
    underrun_onset_ms: int = 150
    onset: SpeechOnsetSettings = field(default_factory=SpeechOnsetSettings)
    #: With echo cancellation, while the assistant is audible and nothing local suggests the user speaks, the
    #: microphone is sent to the server at this gain: what is left is echo residue, which a server VAD can
    #: mistake for a barge-in. Full level from the first hint of the user's voice (hold, VAD onset). 1.0: off.
    echo_residue_gain: float = 0.1
    #: While the assistant is audible, VAD frames whose microphone signal the echo canceller reduced by more
    #: than this are its echo residue, not the user: they neither duck playback nor count as the user's
    #: voice (which would lift `echo_residue_gain`). A voice over the echo passes the canceller nearly
    #: unchanged (a few dB); the assistant's own voice loses 20-40 dB. None: off.
    echo_dominated_db: float | None = 12.0
    #: ... judged over this long: a frame counts as echo residue when the canceller took more than
    #: `echo_dominated_db` out of any frame of the last `echo_dominated_window_ms` (this one included). The
    #: canceller's grip on the echo slips for a single 20 ms chunk now and then (3-4 dB taken out instead of
    #: 12-40), and Silero, whose probability had been climbing on the residue before, calls that frame speech;
    #: a voice keeps the reduction low for as long as it lasts. 0: this frame only.
    echo_dominated_window_ms: int = 96


class LocalBargeInPhase(enum.Enum):
    IDLE = "idle"
    HELD = "held"  # a loudness onset paused playback; waiting for the VAD
    DUCKED = "ducked"  # onset seen, waiting for confirmation
    PAUSED = "paused"  # confirmed locally, waiting for the server's turn
    COMMITTED = "committed"  # the server started a turn; waiting for the assistant to stop being audible


@dataclass(frozen=True)
class Duck:
    gain: float


@dataclass(frozen=True)
class Unduck:
    pass


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Hold:
    """Pause playback, keeping the unplayed audio, until the VAD decides (tentative: no state change, no
    message). `cause`: what was noticed, for the log."""

    cause: str = "a sudden sound"


@dataclass(frozen=True)
class Release:
    """The hold was not speech: play on from where the hold stopped."""

    held_ms: int


@dataclass(frozen=True)
class Resume:
    """A false interruption: play on from where playback paused."""

    paused_ms: int


@dataclass(frozen=True)
class Commit:
    """A real interruption: stop playback for good (the client truncates and cancels as needed)."""

    onset_ms: int


LocalAction = Duck | Unduck | Pause | Resume | Commit | Hold | Release


class LocalBargeIn:
    def __init__(self, settings: LocalBargeInSettings | None = None) -> None:
        self.settings = settings or LocalBargeInSettings()
        self.phase = LocalBargeInPhase.IDLE
        self.onset_ms: int | None = None
        self._speech_run_start: int | None = None
        self._last_speech_ms: int | None = None
        self._paused_at: int | None = None
        self._held_at: int | None = None
        #: Assistant audio heard so far in this session (for the warm-up), reported by playback.
        self.assistant_heard_ms = 0
        self.false_interruptions = 0
        self.released_holds = 0
        #: Holds made by a loudness onset (before any voice detection could tell).
        self.onset_holds = 0
        #: Loudness onsets put down to a speaker underrun (see `underrun_onset_ms`).
        self.underrun_onsets = 0
        self._underrun_at: int | None = None
        self.commits = 0
        #: Frames the VAD called speech that were the assistant's echo residue (see `echo_dominated_db`).
        self.echo_frames_ignored = 0
        self._removed: deque[tuple[int, float]] = deque()  # (frame end ms, dB the canceller took out)

    def configure(self, settings: LocalBargeInSettings) -> list[LocalAction]:
        self.settings = settings
        if not settings.enabled and self.phase in (LocalBargeInPhase.DUCKED, LocalBargeInPhase.PAUSED,
                                                   LocalBargeInPhase.HELD):
            return self._back_to_idle(resume=True, now_ms=self._paused_at or self._held_at or 0)
        if not settings.energy_onset and self.phase == LocalBargeInPhase.HELD:
            return self._back_to_idle(resume=True, now_ms=self._held_at or 0)
        return []

    @property
    def warming_up(self) -> bool:
        return self.assistant_heard_ms < self.settings.warmup_ms

    def uplink_gain(self, assistant_audible: bool, echo_cancelled: bool) -> float:
        """The gain for the microphone audio sent to the server now (see `echo_residue_gain`)."""
        s = self.settings
        if not (s.enabled and echo_cancelled and assistant_audible) or self.warming_up:
            return 1.0
        if self.phase != LocalBargeInPhase.IDLE or self._speech_run_start is not None:
            return 1.0
        return s.echo_residue_gain

    def on_onset(self, now_ms: int, assistant_audible: bool) -> list[LocalAction]:
        """A loudness onset (`speech_onset.SpeechOnsetDetector`) completed at `now_ms`."""
        s = self.settings
        if not (s.enabled and s.energy_onset):
            return []
        if self.phase == LocalBargeInPhase.IDLE and assistant_audible and not self.warming_up:
            if self._underrun_at is not None and abs(now_ms - self._underrun_at) <= s.underrun_onset_ms:
                self.underrun_onsets += 1
                return []
            self.phase = LocalBargeInPhase.HELD
            self._held_at = now_ms
            self.onset_ms = now_ms
            self.onset_holds += 1
            return [Hold()]
        return self._expire_hold(now_ms)

    def on_speaker_underrun(self, now_ms: int) -> list[LocalAction]:
        """The speaker reported an underrun at about `now_ms` on the input clock: a hold made just before is
        the echo coming back (released at once), and onsets just after are not held (see `underrun_onset_ms`)."""
        s = self.settings
        if s.underrun_onset_ms <= 0:
            return []
        self._underrun_at = now_ms
        if (self.phase == LocalBargeInPhase.HELD and self._held_at is not None
                and now_ms - self._held_at <= s.underrun_onset_ms):
            self.underrun_onsets += 1
            self.released_holds += 1
            return self._back_to_idle(resume=True, now_ms=now_ms)
        return []

    def _expire_hold(self, now_ms: int) -> list[LocalAction]:
        if self.phase == LocalBargeInPhase.HELD and self._held_at is not None:
            if now_ms - self._held_at >= self.settings.hold_confirm_ms:
                self.released_holds += 1
                return self._back_to_idle(resume=True, now_ms=now_ms)
        return []

    def on_frame(self, probability: float, now_ms: int, assistant_audible: bool,
                 echo_removed_db: float | None = None) -> list[LocalAction]:
        """One VAD frame ending at `now_ms` on the input clock; `echo_removed_db`: how much the echo canceller
        took out of the microphone signal around this frame (None: no canceller, or not known)."""
        s = self.settings
        echo_removed_db = self._most_removed(now_ms, echo_removed_db)
        if (assistant_audible and self.phase == LocalBargeInPhase.IDLE and s.echo_dominated_db is not None
                and echo_removed_db is not None and echo_removed_db > s.echo_dominated_db):
            self.echo_frames_ignored += probability >= s.threshold
            probability = 0.0  # the canceller's leftovers of the assistant's voice
        speech = probability >= s.threshold
        continuing = probability >= s.threshold - s.hysteresis
        if speech or (continuing and self._speech_run_start is not None):
            if self._speech_run_start is None:
                self._speech_run_start = now_ms
            self._last_speech_ms = now_ms
        elif self._last_speech_ms is not None and now_ms - self._last_speech_ms >= s.gap_ms:
            self._speech_run_start = None
        actions: list[LocalAction] = []
        if not s.enabled:
            return actions
        if self.phase == LocalBargeInPhase.IDLE:
            if speech and assistant_audible and not self.warming_up:
                self.phase = LocalBargeInPhase.DUCKED
                self.onset_ms = self._speech_run_start if self._speech_run_start is not None else now_ms
                if s.duck_gain > 0.0:
                    actions.append(Duck(s.duck_gain))
                else:
                    # Muting is holding: what is not heard stays queued (released if this was no speech).
                    self._held_at = now_ms
                    actions.append(Hold(cause="the VAD heard speech"))
        elif self.phase == LocalBargeInPhase.HELD:
            if speech:
                # The VAD agrees: carry on as a local onset (playback is already silent).
                self.phase = LocalBargeInPhase.DUCKED
            else:
                actions += self._expire_hold(now_ms)
        elif self.phase == LocalBargeInPhase.DUCKED:
            if self._speech_run_start is None:
                # Speech ended before it was confirmed: a click or a breath.
                self.false_interruptions += 1
                actions += self._back_to_idle(resume=False, now_ms=now_ms)
            elif now_ms - self._speech_run_start >= s.confirm_ms:
                self.phase = LocalBargeInPhase.PAUSED
                self._paused_at = now_ms
                actions.append(Pause())
        elif self.phase == LocalBargeInPhase.PAUSED:
            actions += self.tick(now_ms)
        return actions

    def tick(self, now_ms: int) -> list[LocalAction]:
        """Time passes (called regularly): a pause with no server turn in time is resumed."""
        if self.phase == LocalBargeInPhase.HELD:
            return self._expire_hold(now_ms)
        if self.phase == LocalBargeInPhase.PAUSED and self._paused_at is not None:
            if now_ms - self._paused_at >= self.settings.resume_after_ms and self._speech_run_start is None:
                self.false_interruptions += 1
                return self._back_to_idle(resume=True, now_ms=now_ms)
        return []

    def on_server_turn_started(self, now_ms: int) -> list[LocalAction]:
        """The server's VAD started a user turn: any pending local interruption becomes real."""
        if self.phase in (LocalBargeInPhase.DUCKED, LocalBargeInPhase.PAUSED, LocalBargeInPhase.HELD):
            self.phase = LocalBargeInPhase.COMMITTED
            self._held_at = None
            self.commits += 1
            return [Commit(self.onset_ms if self.onset_ms is not None else now_ms)]
        return []

    def on_assistant_silent(self) -> list[LocalAction]:
        """Playback ended or was stopped: nothing left to interrupt."""
        if self.phase in (LocalBargeInPhase.DUCKED, LocalBargeInPhase.HELD):
            self._held_at = None  # nothing left to release
            return self._back_to_idle(resume=False, now_ms=0)
        if self.phase == LocalBargeInPhase.COMMITTED:
            self.phase = LocalBargeInPhase.IDLE
            self.onset_ms = None
            self._paused_at = None
        return []

    def _most_removed(self, now_ms: int, removed_db: float | None) -> float | None:
        """The most the canceller took out of any frame within `echo_dominated_window_ms` up to `now_ms`."""
        history = self._removed
        if removed_db is None:
            history.clear()  # no canceller (or not known): nothing to judge by
            return None
        history.append((now_ms, removed_db))
        horizon = now_ms - self.settings.echo_dominated_window_ms
        while history and (history[0][0] <= horizon or history[0][0] > now_ms):
            history.popleft()
        return max(db for _, db in history)

    def _back_to_idle(self, resume: bool, now_ms: int) -> list[LocalAction]:
        was = self.phase
        self.phase = LocalBargeInPhase.IDLE
        self.onset_ms = None
        paused_at, self._paused_at = self._paused_at, None
        held_at, self._held_at = self._held_at, None
        if was == LocalBargeInPhase.PAUSED or resume and paused_at is not None:
            return [Resume(max(0, now_ms - (paused_at or now_ms)))]
        if held_at is not None:
            return [Release(max(0, now_ms - held_at))]
        if was == LocalBargeInPhase.DUCKED:
            return [Unduck()]
        return []
