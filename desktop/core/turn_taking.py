"""Client-side turn taking: the settings a user tunes, and the modes the client drives itself.

Sans-I/O like the rest of `desktop.core`: every class takes audio, speech probabilities, transcripts and
times (input-clock milliseconds) in, and returns `TurnOp` values out; the session adapter
(`desktop/turn_controller.py`) turns those into client events.

- `TurnSettings`: everything the settings dock edits (profile, server/semantic VAD values, the mode,
  dynamic silence rules, semantic cue lists, wake phrase), to and from a plain dict for the settings file.
- `PushToTalk`: manual turns while a key/button is held, with a pre-roll ring buffer so the first
  syllable (spoken a moment before the press registers) is not lost.
- `DynamicSilence`: per-turn silence-duration overrides ("let me think" → 2000 ms for that turn; the
  assistant just asked a yes/no question → 300 ms for the reply), then back to the profile.
- `ClientSemanticTurns`: manual mode driven by the transcript: each pause the local VAD hears commits a
  segment (no response); its transcript decides — completion cue → answer now, hesitation cue → hold,
  otherwise answer when a fallback silence timer runs out.
- `WakeWordGate`: audio before the wake phrase never leaves the machine (and the server's buffer is
  cleared); the command after the phrase is streamed and committed when the local VAD hears it end.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable

import numpy as np

from .pcm import PROTOCOL_RATE
from .session_config import EAGERNESS_VALUES, VAD_PROFILES, ManualTurns, SemanticVad, ServerVad, TurnDetection
from .speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter

log = logging.getLogger(__name__)

MODES = ("vad", "push_to_talk", "wake_word", "client_semantic")  # what the dock offers
#: "manual": turn_detection null with all audio streamed; the caller commits (sessions driven by code).
ALL_MODES = MODES + ("manual",)
MODE_LABELS = {
    "vad": "Voice activity (server decides)",
    "push_to_talk": "Push-to-talk (manual)",
    "wake_word": "Wake word",
    "client_semantic": "Semantic (client decides from the transcript)",
    "manual": "Manual (the caller commits)",
}
PROFILES = ("fast", "balanced", "patient", "noisy", "custom")
#: The server rejects a manual commit of less than this much audio.
MIN_COMMIT_MS = 100


# ---------------------------------------------------------------------------------------------- ops
@dataclass(frozen=True)
class SendAudio:
    pcm16: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class Commit:
    """`input_audio_buffer.commit`, followed by `response.create` when `respond`."""

    respond: bool = True


@dataclass(frozen=True)
class CreateResponse:
    pass


@dataclass(frozen=True)
class ClearInput:
    reason: str = ""


@dataclass(frozen=True)
class Interrupt:
    """Stop the assistant (the barge-in path)."""


@dataclass(frozen=True)
class SetSilence:
    """Use this silence duration (ms) for now; None returns to the profile's value."""

    silence_ms: int | None
    reason: str


@dataclass(frozen=True)
class Hint:
    message: str
    level: str = "info"


TurnOp = SendAudio | Commit | CreateResponse | ClearInput | Interrupt | SetSilence | Hint


def pcm_ms(pcm16: np.ndarray) -> float:
    return len(pcm16) * 1000.0 / PROTOCOL_RATE


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class SilenceRule:
    """When `trigger` matches one of `phrases`, use `silence_ms` for one user turn.

    trigger: "user_said" (the user's words so far contain a phrase) or "assistant_yes_no" (the assistant's
    last answer ends with a yes/no question; `phrases` are the question openers).
    """

    name: str
    trigger: str
    phrases: tuple[str, ...]
    silence_ms: int
    enabled: bool = True


YES_NO_OPENERS = (
    "do", "does", "did", "is", "are", "was", "were", "can", "could", "should", "would", "will", "shall",
    "have", "has", "had", "may", "might", "am", "isn't", "aren't", "don't", "doesn't", "didn't", "won't",
    "can't", "shouldn't", "wouldn't",
)

DEFAULT_RULES: tuple[SilenceRule, ...] = (
    SilenceRule("thinking", "user_said",
                ("let me think", "let me see", "give me a second", "give me a moment", "hold on", "hang on"), 2000),
    SilenceRule("yes/no question", "assistant_yes_no", YES_NO_OPENERS, 300),
)

DEFAULT_COMPLETION_CUES = ("that's all", "that is all", "go ahead", "thanks", "thank you", "over to you", "that's it")
DEFAULT_HESITATION_CUES = ("um", "uh", "erm", "wait", "and also", "let me think", "hmm", "so", "and")


@dataclass(frozen=True)
class TurnSettings:
    """The turn-taking settings a user sees in the dock (persisted as a dict under "turn.*")."""

    mode: str = "vad"
    detection: str = "server_vad"  # "server_vad" | "semantic_vad" (mode "vad" only)
    profile: str = "balanced"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: str = "auto"
    dynamic_rules: bool = True
    rules: tuple[SilenceRule, ...] = DEFAULT_RULES
    completion_cues: tuple[str, ...] = DEFAULT_COMPLETION_CUES
    hesitation_cues: tuple[str, ...] = DEFAULT_HESITATION_CUES
    semantic_fallback_ms: int = 1500
    semantic_pause_ms: int = 400
    semantic_transcript_wait_ms: int = 4000  # how long a pending transcript may delay the fallback
    wake_phrase: str = "hey parley"
    preroll_ms: int = 300

    # -- derived
    def server_vad(self, silence_ms: int | None = None) -> ServerVad:
        return ServerVad(
            threshold=self.threshold,
            prefix_padding_ms=self.prefix_padding_ms,
            silence_duration_ms=self.silence_duration_ms if silence_ms is None else silence_ms,
            idle_timeout_ms=self.idle_timeout_ms,
            create_response=self.create_response,
            interrupt_response=self.interrupt_response,
        )

    def turn_detection(self, silence_ms: int | None = None) -> TurnDetection:
        """What the server should do in this mode (the client's own modes use manual turns)."""
        if self.mode != "vad":
            return ManualTurns()
        if self.detection == "semantic_vad":
            return SemanticVad(self.eagerness, self.create_response, self.interrupt_response)  # type: ignore[arg-type]
        return self.server_vad(silence_ms)

    def with_profile(self, name: str) -> "TurnSettings":
        if name in VAD_PROFILES:
            p = VAD_PROFILES[name]
            return replace(self, profile=name, detection="server_vad", threshold=p.threshold,
                           prefix_padding_ms=p.prefix_padding_ms, silence_duration_ms=p.silence_duration_ms)
        return replace(self, profile="custom")

    def matching_profile(self) -> str:
        for name, p in VAD_PROFILES.items():
            if (abs(p.threshold - self.threshold) < 1e-6 and p.prefix_padding_ms == self.prefix_padding_ms
                    and p.silence_duration_ms == self.silence_duration_ms):
                return name
        return "custom"

    # -- persistence
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"] = [asdict(r) | {"phrases": list(r.phrases)} for r in self.rules]
        d["completion_cues"] = list(self.completion_cues)
        d["hesitation_cues"] = list(self.hesitation_cues)
        return d

    @classmethod
    def from_dict(cls, data: Any) -> "TurnSettings":
        """Tolerant: unknown keys are ignored, wrong types and out-of-range values fall back to defaults."""
        base = cls()
        if not isinstance(data, dict):
            return base
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            v, d = data[f.name], getattr(base, f.name)
            if f.name == "rules":
                rules = _rules_from(v)
                if rules is not None:
                    values["rules"] = rules
            elif f.name in ("completion_cues", "hesitation_cues"):
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    values[f.name] = tuple(x.strip().lower() for x in v if x.strip())
            elif f.name == "idle_timeout_ms":
                if v is None or (isinstance(v, int) and not isinstance(v, bool) and 5000 <= v <= 30000):
                    values[f.name] = v
            elif isinstance(d, bool):
                if isinstance(v, bool):
                    values[f.name] = v
            elif isinstance(d, float):
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
                    values[f.name] = float(v)
            elif isinstance(d, int):
                if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10_000:
                    values[f.name] = v
            elif isinstance(d, str) and isinstance(v, str):
                values[f.name] = v
        out = replace(base, **values)
        if out.mode not in ALL_MODES:
            out = replace(out, mode="vad")
        if out.detection not in ("server_vad", "semantic_vad"):
            out = replace(out, detection="server_vad")
        if out.eagerness not in EAGERNESS_VALUES:
            out = replace(out, eagerness="auto")
        if out.profile not in PROFILES:
            out = replace(out, profile="custom")
        if not out.wake_phrase.strip():
            out = replace(out, wake_phrase="hey parley")
        return out


def _rules_from(value: Any) -> tuple[SilenceRule, ...] | None:
    if not isinstance(value, list):
        return None
    rules = []
    for r in value:
        if not isinstance(r, dict):
            return None
        try:
            phrases = tuple(str(p).strip().lower() for p in r.get("phrases", []) if str(p).strip())
            ms = int(r["silence_ms"])
            if r.get("trigger") not in ("user_said", "assistant_yes_no") or not 0 <= ms <= 10_000:
                return None
            rules.append(SilenceRule(str(r.get("name", "rule")), r["trigger"], phrases, ms, bool(r.get("enabled", True))))
        except (KeyError, TypeError, ValueError):
            return None
    return tuple(rules)


def parse_cue_list(text: str) -> tuple[str, ...]:
    """Cues typed by the user: one per line or comma-separated, lower-cased, blanks dropped."""
    parts = re.split(r"[,\n;]", text)
    return tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))


# ---------------------------------------------------------------------------------------------- text
def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word phrase match ("so" does not match "also")."""
    p = _words(phrase)
    w = _words(text)
    if not p:
        return False
    return any(w[i:i + len(p)] == p for i in range(len(w) - len(p) + 1))


def ends_with_phrase(text: str, phrase: str, within_words: int = 0) -> bool:
    """The phrase ends the text (allowing `within_words` trailing words)."""
    p = _words(phrase)
    w = _words(text)
    if not p or len(w) < len(p):
        return False
    for end in range(len(w), max(len(p), len(w) - within_words) - 1, -1):
        if w[end - len(p):end] == p:
            return True
    return False


def is_yes_no_question(text: str, openers: Iterable[str] = YES_NO_OPENERS) -> bool:
    """The text's last sentence is a question that starts with an auxiliary verb ("Shall I go on?")."""
    text = text.strip()
    if not text.endswith("?"):
        return False
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    last = _words(sentences[-1]) if sentences else []
    return bool(last) and last[0] in set(openers)


# ---------------------------------------------------------------------------------------------- push-to-talk
class PreRoll:
    """The last `ms` of input audio, so a press can send what was said just before it."""

    def __init__(self, ms: int = 300) -> None:
        self.ms = ms
        self._chunks: deque[np.ndarray] = deque()
        self._samples = 0

    def push(self, pcm16: np.ndarray) -> None:
        self._chunks.append(pcm16)
        self._samples += len(pcm16)
        limit = self.ms * PROTOCOL_RATE // 1000
        while self._chunks and self._samples - len(self._chunks[0]) >= limit:
            self._samples -= len(self._chunks.popleft())

    def take(self) -> np.ndarray:
        """The buffered audio (at most `ms`, cut at the sample), emptying the buffer."""
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        audio = np.concatenate(list(self._chunks))
        self._chunks.clear()
        self._samples = 0
        return audio[-(self.ms * PROTOCOL_RATE // 1000):] if self.ms > 0 else audio[:0]

    @property
    def buffered_ms(self) -> float:
        return self._samples * 1000.0 / PROTOCOL_RATE


class PushToTalk:
    """Manual turns while held: audio outside a press never goes out (except the pre-roll on press)."""

    def __init__(self, preroll_ms: int = 300) -> None:
        self.preroll = PreRoll(preroll_ms)
        self.held = False
        self.held_ms = 0.0  # audio recorded while held (without the pre-roll)
        self.sent_ms = 0.0  # audio sent for this press (with the pre-roll)

    def audio(self, pcm16: np.ndarray) -> list[TurnOp]:
        if not self.held:
            self.preroll.push(pcm16)
            return []
        self.held_ms += pcm_ms(pcm16)
        self.sent_ms += pcm_ms(pcm16)
        return [SendAudio(pcm16)]

    def press(self, assistant_active: bool) -> list[TurnOp]:
        """Start a turn: stop the assistant if it is talking, drop stale server audio, send the pre-roll."""
        if self.held:
            return []
        self.held = True
        self.held_ms = 0.0
        ops: list[TurnOp] = []
        if assistant_active:
            ops.append(Interrupt())
        ops.append(ClearInput("push-to-talk pressed"))
        pre = self.preroll.take()
        self.sent_ms = pcm_ms(pre)
        if len(pre):
            ops.append(SendAudio(pre))
        return ops

    def release(self) -> list[TurnOp]:
        if not self.held:
            return []
        self.held = False
        if self.held_ms < MIN_COMMIT_MS:
            return [
                ClearInput("push-to-talk too short"),
                Hint(f"Hold to talk while you speak: that press recorded only {self.held_ms:.0f} ms "
                     f"(at least {MIN_COMMIT_MS} ms are needed). Nothing was sent to the assistant."),
            ]
        return [Commit(respond=True)]

    def cancel(self) -> list[TurnOp]:
        """Esc: throw away what was said in this press."""
        was = self.held
        self.held = False
        self.held_ms = 0.0
        return [ClearInput("cancelled by the user"), Hint("Cancelled: what you said was discarded." if was else "Input cleared.")]


# ---------------------------------------------------------------------------------------------- dynamic silence
class DynamicSilence:
    """Per-turn silence-duration overrides from rules; every change is returned with its reason (for the log).

    Call `user_transcript(text)` as the user's words arrive (partial or final), `assistant_said(text)` when
    an answer's transcript is final, and `user_turn_committed(text)` when a user turn ends.
    """

    def __init__(self, rules: Iterable[SilenceRule] = DEFAULT_RULES, enabled: bool = True) -> None:
        self.rules = tuple(rules)
        self.enabled = enabled
        self.active: SilenceRule | None = None
        self.log: list[str] = []

    def _set(self, rule: SilenceRule | None, why: str) -> list[TurnOp]:
        if rule is self.active:
            return []
        self.active = rule
        self.log.append(why)
        return [SetSilence(rule.silence_ms if rule else None, why)]

    def user_transcript(self, text: str) -> list[TurnOp]:
        """The user's words so far; the end of the text matters (the hesitation before the pause)."""
        if not self.enabled:
            return []
        for rule in self.rules:
            if rule.enabled and rule.trigger == "user_said":
                for phrase in rule.phrases:
                    if ends_with_phrase(text, phrase, within_words=2):
                        return self._set(rule, f'rule "{rule.name}": you said "{phrase}" → silence {rule.silence_ms} ms for this turn')
        return []

    def assistant_said(self, text: str) -> list[TurnOp]:
        if not self.enabled:
            return []
        for rule in self.rules:
            if rule.enabled and rule.trigger == "assistant_yes_no" and is_yes_no_question(text, rule.phrases or YES_NO_OPENERS):
                return self._set(rule, f'rule "{rule.name}": the assistant asked a yes/no question → silence {rule.silence_ms} ms for your reply')
        if self.active is not None and self.active.trigger == "assistant_yes_no":
            return self._set(None, f'rule "{self.active.name}" done: the assistant\'s last words were not a yes/no question → back to the profile')
        return []

    def user_turn_committed(self, text: str = "") -> list[TurnOp]:
        """A user turn ended: a rule holding this turn open stays only if the turn ended on its phrase."""
        if self.active is None:
            return []
        if self.active.trigger == "user_said" and text and any(ends_with_phrase(text, p, 2) for p in self.active.phrases):
            return []  # the user paused right after "let me think": keep waiting for the rest
        return self._set(None, f'rule "{self.active.name}" done → back to the profile')

    def reset(self) -> list[TurnOp]:
        if self.active is None:
            return []
        return self._set(None, "rules reset → back to the profile")


# ---------------------------------------------------------------------------------------------- client semantic
class ClientSemanticTurns:
    """Manual turns decided by the client from the transcript.

    The local VAD (speech probabilities per frame) finds pauses of `pause_ms`; each one commits the audio
    so far without a response, and the server transcribes it. The transcript of the whole turn so far then
    decides: a completion cue at its end answers at once; a hesitation cue at its end holds the turn
    (the fallback timer is not armed); anything else arms the fallback: after `fallback_ms` of silence
    since the pause, the turn is answered. Speech resuming disarms the timer. A transcript still on its way
    when the timer runs out is waited for (up to `transcript_wait_ms`), since it may carry a cue.
    """

    def __init__(self, completion_cues: Iterable[str] = DEFAULT_COMPLETION_CUES,
                 hesitation_cues: Iterable[str] = DEFAULT_HESITATION_CUES, *, threshold: float = 0.5,
                 pause_ms: int = 400, fallback_ms: int = 1500, hold_max_ms: int = 8000, frame_ms: float = 32.0,
                 transcript_wait_ms: int = 4000) -> None:
        self.completion_cues = tuple(completion_cues)
        self.hesitation_cues = tuple(hesitation_cues)
        self.fallback_ms = fallback_ms
        self.hold_max_ms = hold_max_ms
        self.transcript_wait_ms = transcript_wait_ms
        self.segmenter = SpeechSegmenter(threshold, 0, pause_ms, frame_ms=frame_ms, min_speech_ms=64)
        self.turn_text: list[str] = []
        self.segments_pending = 0  # committed, transcript not yet seen
        self.has_turn = False
        self.deadline_ms: int | None = None
        self.now_ms = 0
        self.decisions: list[str] = []

    def frame(self, probability: float, end_ms: int) -> list[TurnOp]:
        self.now_ms = end_ms
        boundary = self.segmenter.push(probability)
        ops: list[TurnOp] = []
        if isinstance(boundary, SegmentStart):
            self.has_turn = True
            if self.deadline_ms is not None:
                self.decisions.append("speech resumed: waiting")
            self.deadline_ms = None
        elif isinstance(boundary, SegmentEnd):
            self.segments_pending += 1
            ops.append(Commit(respond=False))
            # Until its transcript arrives, the fallback guards against a lost transcript.
            self.deadline_ms = end_ms + self.fallback_ms
        if self.deadline_ms is not None and end_ms >= self.deadline_ms and not self.segmenter.in_speech:
            # A transcript still on its way decides (it may carry a cue); wait for it a while, not forever.
            if self.segments_pending == 0:
                ops += self._answer("silence fallback")
            elif end_ms >= self.deadline_ms + self.transcript_wait_ms:
                ops += self._answer("silence fallback (no transcript came)")
        return ops

    def transcript(self, text: str) -> list[TurnOp]:
        """The final transcript of one committed segment."""
        if not self.has_turn:
            return []
        self.segments_pending = max(0, self.segments_pending - 1)
        if text.strip():
            self.turn_text.append(text.strip())
        self.decisions.append(f'transcript: "{text.strip()}" ({self.segments_pending} more pending)')
        if self.segmenter.in_speech:
            self.decisions.append("speaking again: waiting for the next pause")
            return []  # the user is already speaking again: wait for the next pause
        whole = " ".join(self.turn_text)
        for cue in self.completion_cues:
            if ends_with_phrase(whole, cue, within_words=2):  # "that's all for now"
                return self._answer(f'completion cue "{cue}"')
        for cue in self.hesitation_cues:
            if ends_with_phrase(whole, cue, within_words=0):
                self.decisions.append(f'hesitation cue "{cue}": holding the turn')
                self.deadline_ms = self.now_ms + self.hold_max_ms
                return [Hint(f'Holding your turn (you said "{cue}")…')]
        if self.segments_pending == 0 and self.deadline_ms is not None and self.now_ms >= self.deadline_ms:
            return self._answer("silence fallback")  # the pause already lasted long enough
        return []

    def _answer(self, why: str) -> list[TurnOp]:
        self.decisions.append(f"answer: {why}")
        log.info("client semantic turn: answer (%s)", why)
        self.turn_text = []
        self.has_turn = False
        self.deadline_ms = None
        return [CreateResponse()]


# ---------------------------------------------------------------------------------------------- wake word
class WakeWordGate:
    """Audio is held back (a short ring buffer) until the wake phrase; then the command is streamed.

    The detector runs outside the core and reports `detected(phrase_end_ms)` on the same input clock as
    `audio()` (ms of input seen). After the phrase the server's buffer is cleared and the audio from the
    phrase's end on is sent; the local VAD frames end the command after `silence_ms` of silence, and an
    awake gate that hears no command within `command_timeout_ms` goes back to sleep.
    """

    def __init__(self, *, threshold: float = 0.5, silence_ms: int = 700, command_timeout_ms: int = 5000,
                 frame_ms: float = 32.0, keep_ms: int = 2000) -> None:
        self.awake = False
        self.clock_ms = 0.0
        self._ring: deque[tuple[float, np.ndarray]] = deque()  # (start_ms, chunk)
        self.keep_ms = keep_ms
        self.command_timeout_ms = command_timeout_ms
        self._threshold, self._silence_ms, self._frame_ms = threshold, silence_ms, frame_ms
        self.segmenter = SpeechSegmenter(threshold, 0, silence_ms, frame_ms=frame_ms, min_speech_ms=64)
        self._woke_at = 0.0
        self._heard_command = False
        self.sent_ms = 0.0
        self.wakes = 0

    def audio(self, pcm16: np.ndarray) -> list[TurnOp]:
        start = self.clock_ms
        self.clock_ms += pcm_ms(pcm16)
        if self.awake:
            self.sent_ms += pcm_ms(pcm16)
            return [SendAudio(pcm16)]
        self._ring.append((start, pcm16))
        while self._ring and self._ring[0][0] + pcm_ms(self._ring[0][1]) < self.clock_ms - self.keep_ms:
            self._ring.popleft()
        return []

    def detected(self, phrase_end_ms: float) -> list[TurnOp]:
        if self.awake:
            return []
        self.awake = True
        self.wakes += 1
        self._woke_at = self.clock_ms
        self._heard_command = False
        self.segmenter.reset()
        ops: list[TurnOp] = [ClearInput("wake phrase heard: discard what came before"), Hint("Wake phrase heard — listening for your command.")]
        after: list[np.ndarray] = []
        for start, chunk in self._ring:
            end = start + pcm_ms(chunk)
            if end <= phrase_end_ms:
                continue
            skip = max(0, int((phrase_end_ms - start) * PROTOCOL_RATE / 1000))
            after.append(chunk[skip:])
        self._ring.clear()
        if after:
            audio = np.concatenate(after)
            self.sent_ms = pcm_ms(audio)
            ops.append(SendAudio(audio))
        else:
            self.sent_ms = 0.0
        return ops

    def frame(self, probability: float, end_ms: int) -> list[TurnOp]:
        boundary = self.segmenter.push(probability)
        if not self.awake:
            return []
        if isinstance(boundary, SegmentStart):
            self._heard_command = True
        elif isinstance(boundary, SegmentEnd) and self._heard_command:
            self.awake = False
            return [Commit(respond=True), Hint("Command sent; say the wake phrase again to talk.")]
        if not self._heard_command and not self.segmenter.in_speech and self.clock_ms - self._woke_at > self.command_timeout_ms:
            self.awake = False
            return [ClearInput("no command after the wake phrase"), Hint("No command heard; waiting for the wake phrase again.")]
        return []

    def sleep(self) -> None:
        self.awake = False
        self._ring.clear()
