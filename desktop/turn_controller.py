"""Turn-taking modes on a live session: the adapter between `desktop.core.turn_taking` and `LiveSession`.

No Qt. `LiveSession` routes each microphone chunk through `on_input_audio` and each local VAD frame
through `on_vad_frame`; the window and the settings dock call `apply`, `press`, `release` and `cancel`.
Every change of turn detection goes out as `session.update` through the client (so the server's
`session.updated` is compared with what was asked, as for any other update).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

import numpy as np

from .core import turn_taking as tt
from .core.actions import Action, ItemChanged, Notice, Send, SpeechBoundary, TurnState
from .core.session_config import SemanticVad, ServerVad, describe_turn_detection



class TurnHost(Protocol):
    """What the turn controller needs of the session it serves (LiveSession is one); it does not import it."""

    client: Any  # core.realtime_client.RealtimeClient

    def _apply(self, actions: list[Action]) -> None: ...
    def _notify(self, note: Any) -> None: ...
    def subscribe(self, listener: Callable[[Any], None]) -> None: ...
    def stop_speaking_file(self) -> None: ...
    def update_config(self, config: Any) -> None: ...

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnSettingsChanged:
    """The turn settings in force changed (e.g. pressing push-to-talk switched the mode)."""

    settings: tt.TurnSettings


@dataclass(frozen=True)
class SilenceOverride:
    """A dynamic rule changed the silence duration (None: back to the profile)."""

    silence_ms: int | None
    reason: str


@dataclass(frozen=True)
class PushToTalkState:
    held: bool


def settings_from_config(td) -> tt.TurnSettings:
    """Turn settings that keep a session's configured turn detection, with no dynamic rules."""
    base = tt.TurnSettings(dynamic_rules=False)
    if isinstance(td, ServerVad):
        s = replace(base, threshold=td.threshold, prefix_padding_ms=td.prefix_padding_ms,
                    silence_duration_ms=td.silence_duration_ms, idle_timeout_ms=td.idle_timeout_ms,
                    create_response=td.create_response, interrupt_response=td.interrupt_response)
        return replace(s, profile=s.matching_profile())
    if isinstance(td, SemanticVad):
        return replace(base, detection="semantic_vad", eagerness=td.eagerness, create_response=td.create_response,
                       interrupt_response=td.interrupt_response)
    return replace(base, mode="manual")


class TurnController:
    def __init__(self, session: TurnHost, settings: tt.TurnSettings | None = None) -> None:
        self.session = session
        #: Without settings (a session made by code, not the window) the session's own turn detection stands,
        #: and no rule changes it behind the caller's back.
        self.settings = settings or settings_from_config(session.client.requested.turn_detection)
        self.ptt = tt.PushToTalk(self.settings.preroll_ms)
        self.dynamic = tt.DynamicSilence(self.settings.rules, self.settings.dynamic_rules)
        self.semantic: tt.ClientSemanticTurns | None = None
        self.wake: tt.WakeWordGate | None = None
        self.detector: Any = None
        self.detector_name = ""
        self.silence_override: int | None = None
        self._seen_final: set[str] = set()
        #: Who made each commit still waiting for its item ("semantic" | "push_to_talk" | "wake_word"), in order,
        #: so a late transcript of an earlier mode's turn is never taken as a semantic segment.
        self._commit_owners: deque[str] = deque()
        self._item_owner: dict[str, str] = {}
        self.sent_audio_ms = 0.0
        #: Called with every microphone chunk before the mode decides what to send (the waveform).
        self.input_taps: list[Any] = []
        self._build_mode_helpers()
        session.subscribe(self._on_note)

    # ------------------------------------------------------------------ configuration
    def initial_turn_detection(self):
        return self.settings.turn_detection()

    def apply(self, settings: tt.TurnSettings) -> None:
        """New settings from the dock: rebuild the mode's helpers and send `session.update` at once."""
        old = self.settings
        self.settings = settings
        if old.mode != settings.mode:
            log.info("turn mode: %s → %s", old.mode, settings.mode)
            if old.mode == "push_to_talk" and self.ptt.held:
                self.ptt.held = False
        self.ptt.preroll.ms = settings.preroll_ms
        self.dynamic.rules, self.dynamic.enabled = settings.rules, settings.dynamic_rules
        if not settings.dynamic_rules:
            self.silence_override = None
            self.dynamic.active = None
        self._build_mode_helpers(rebuild=old.mode != settings.mode or old.wake_phrase != settings.wake_phrase)
        self._send_turn_detection()
        if old.mode != settings.mode and settings.mode != "vad":
            # Stale audio in the server's buffer from the previous mode must not join the next manual turn.
            self.session._apply(self.session.client.clear_input())
        self.session._notify(TurnSettingsChanged(settings))

    def _build_mode_helpers(self, rebuild: bool = True) -> None:
        s = self.settings
        if s.mode == "client_semantic":
            if rebuild or self.semantic is None:
                self.semantic = tt.ClientSemanticTurns(s.completion_cues, s.hesitation_cues, threshold=s.threshold,
                                                       pause_ms=s.semantic_pause_ms, fallback_ms=s.semantic_fallback_ms,
                                                       transcript_wait_ms=s.semantic_transcript_wait_ms)
            else:
                self.semantic.completion_cues, self.semantic.hesitation_cues = s.completion_cues, s.hesitation_cues
                self.semantic.fallback_ms = s.semantic_fallback_ms
        else:
            self.semantic = None
        if s.mode == "wake_word":
            if rebuild or self.wake is None:
                self.wake = tt.WakeWordGate(threshold=s.threshold, silence_ms=max(500, s.silence_duration_ms))
                self.detector = None
                try:
                    from .wake_word import PocketSphinxWakeWord

                    self.detector = PocketSphinxWakeWord(s.wake_phrase)
                    self.detector_name = self.detector.name
                except Exception as exc:  # an unknown word, a missing library: say so, stay usable
                    self.detector_name = f"unavailable: {exc}"
                    self.session._notify(Notice("error", f"Wake word mode cannot listen: {exc}"))
        else:
            self.wake = None
            self.detector = None

    def _send_turn_detection(self) -> None:
        td = self.settings.turn_detection(self.silence_override if self.settings.mode == "vad" else None)
        client = self.session.client
        if client.requested.turn_detection == td and client.connected:
            return
        log.info("turn detection → %s", describe_turn_detection(td))
        self.session.update_config(client.requested.with_turn_detection(td))

    # ------------------------------------------------------------------ audio path
    def on_input_audio(self, chunk: np.ndarray) -> list[Action]:
        for tap in self.input_taps:
            try:
                tap(chunk)
            except Exception:
                log.exception("input tap failed")
        mode = self.settings.mode
        if mode == "push_to_talk":
            return self._run(self.ptt.audio(chunk))
        if mode == "wake_word" and self.wake is not None:
            ops = self.wake.audio(chunk)
            if self.detector is not None and not self.wake.awake:
                for end_ms in self.detector.feed(chunk):
                    if self._assistant_active():
                        ops.append(tt.Interrupt())  # "hey parley" over the answer stops it
                    ops += self.wake.detected(end_ms)
            elif self.detector is not None:
                self.detector.feed(chunk)  # keep its clock in step with the gate's
            return self._run(ops)
        self.sent_audio_ms += tt.pcm_ms(chunk)
        return self.session.client.append_audio(chunk)

    def on_vad_frame(self, probability: float, end_ms: int) -> list[Action]:
        if self.semantic is not None:
            was_speaking = self.semantic.segmenter.in_speech
            ops = self.semantic.frame(probability, end_ms)
            if not was_speaking and self.semantic.segmenter.in_speech and self._assistant_active():
                ops.insert(0, tt.Interrupt())  # manual turns: the client is the one to stop the answer
            return self._run(ops)
        if self.wake is not None:
            return self._run(self.wake.frame(probability, end_ms))
        return []

    # ------------------------------------------------------------------ push-to-talk
    def _assistant_active(self) -> bool:
        client = self.session.client
        return client.audible_item is not None or client.audio_queued or client.active_response is not None

    def press(self) -> None:
        if self.settings.mode != "push_to_talk":
            self.apply(replace(self.settings, mode="push_to_talk"))
        self.session._apply(self._run(self.ptt.press(assistant_active=self._assistant_active())))
        self.session._notify(PushToTalkState(True))

    def release(self) -> None:
        if not self.ptt.held:
            return
        self.session._apply(self._run(self.ptt.release()))
        self.session._notify(PushToTalkState(False))

    def cancel(self) -> None:
        """Esc: discard the turn in progress (in any mode), and stop a sound file speaking it."""
        self.session.stop_speaking_file()
        held = self.ptt.held
        self.session._apply(self._run(self.ptt.cancel()))
        if self.wake is not None:
            self.wake.sleep()
        if held:
            self.session._notify(PushToTalkState(False))

    # ------------------------------------------------------------------ notifications
    def _on_note(self, note: Any) -> None:
        if isinstance(note, SpeechBoundary) and not note.started:
            self.session._apply(self._run(self.dynamic.user_turn_committed()))
        elif isinstance(note, ItemChanged):
            item = self.session.client.conversation.get(note.item_id)
            if item is not None and item.role == "user" and item.has_audio and note.item_id not in self._item_owner:
                self._item_owner[note.item_id] = self._commit_owners.popleft() if self._commit_owners else "server"
            if item is None or not item.text_final or note.item_id in self._seen_final:
                return
            self._seen_final.add(note.item_id)
            if item.role == "user" and item.has_audio:
                ops: list[tt.TurnOp] = []
                if self._silence_rules_apply():
                    ops += self.dynamic.user_transcript(item.text)
                    if ops and self._response_live() and self.settings.create_response:
                        ops.insert(0, tt.Interrupt())  # the turn ended on "let me think": let them go on
                elif self.semantic is not None and self._item_owner.get(note.item_id) == "client_semantic":
                    ops += self.semantic.transcript(item.text)
                self.session._apply(self._run(ops))
            elif item.role == "assistant" and self._silence_rules_apply():
                self.session._apply(self._run(self.dynamic.assistant_said(item.text)))

    def _silence_rules_apply(self) -> bool:
        """Dynamic silence rules change server VAD's silence duration (semantic VAD and manual modes have none)."""
        return self.settings.mode == "vad" and self.settings.detection == "server_vad"

    def _response_live(self) -> bool:
        r = self.session.client.active_response
        return r is not None and r.status == "in_progress"

    # ------------------------------------------------------------------ ops → client
    def _run(self, ops: list[tt.TurnOp]) -> list[Action]:
        client = self.session.client
        actions: list[Action] = []
        for op in ops:
            if isinstance(op, tt.SendAudio):
                self.sent_audio_ms += tt.pcm_ms(op.pcm16)
                actions += client.append_audio(op.pcm16)
            elif isinstance(op, tt.Commit):
                done = client.commit_turn(create_response=op.respond)
                if any(isinstance(a, Send) and a.event.get("type") == "input_audio_buffer.commit" for a in done):
                    self._commit_owners.append(self.settings.mode)
                actions += done
            elif isinstance(op, tt.CreateResponse):
                actions += client.request_response()
            elif isinstance(op, tt.ClearInput):
                log.info("clear input: %s", op.reason)
                actions += client.clear_input()
            elif isinstance(op, tt.Interrupt):
                actions += client.cancel_response()
            elif isinstance(op, tt.SetSilence):
                log.info("dynamic silence: %s", op.reason)
                current = client.requested.turn_detection
                if self.settings.mode == "vad" and isinstance(current, ServerVad):
                    self.silence_override = op.silence_ms
                    silence = self.settings.silence_duration_ms if op.silence_ms is None else op.silence_ms
                    td = replace(current, silence_duration_ms=silence)  # only the silence changes
                    actions += client.update_session(client.requested.with_turn_detection(td))
                actions.append(Notice("info", op.reason[0].upper() + op.reason[1:] + "."))
                self.session._notify(SilenceOverride(op.silence_ms, op.reason))
            elif isinstance(op, tt.Hint):
                actions.append(Notice(op.level, op.message))
        return actions

    @property
    def assistant_speaking(self) -> bool:
        return self.session.client.state == TurnState.ASSISTANT_SPEAKING
