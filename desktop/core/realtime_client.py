"""The sans-I/O heart of Parley's realtime client.

`RealtimeClient` takes what happens — a message from the server, a chunk from the microphone, the user
pressing a button, playback having been stopped — and returns the actions that follow (events to send,
audio to play or stop, items to re-render, notices to show). It owns the conversation state and the
response lifecycle. No sockets, no Qt, no sound devices, no clocks: tests drive it in microseconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import events as ev
from .actions import (
    Action,
    BargeInHappened,
    DiscardAudio,
    DuckPlayback,
    ItemChanged,
    ItemRemoved,
    Notice,
    PausePlayback,
    PlayAudio,
    ResumePlayback,
    Send,
    SessionChanged,
    SpeechBoundary,
    StateChanged,
    StopPlayback,
    TurnState,
    UnduckPlayback,
    ConversationCleared,
    ToolCalled,
    UsageUpdated,
)
from . import local_barge_in as lb
from .barge_in import BargeInPolicy, heard_text
from .conversation import Conversation, ImageInfo
from .pcm import PROTOCOL_RATE, samples_to_ms
from .provider_capabilities import OPENAI, ProviderCapabilities
from .session_config import ManualTurns, SemanticVad, ServerVad, SessionConfig
from .turn_audio import SentAudioTape
from .usage import TokenUsage

log = logging.getLogger(__name__)

#: The server rejects a manual commit of less than this much audio.
MIN_COMMIT_MS = 100
#: Messages typed while disconnected that are kept for the reconnect (more are refused, with a message).
OUTBOX_LIMIT = 10


@dataclass
class ResponseInfo:
    response_id: str
    status: str = "in_progress"
    item_ids: list[str] | None = None


class RealtimeClient:
    def __init__(
        self,
        config: SessionConfig | None = None,
        events: ev.ClientEvents | None = None,
        local_barge_in: lb.LocalBargeInSettings | None = None,
        capabilities: ProviderCapabilities | None = None,
    ) -> None:
        #: What the provider can do (truncate, delete, cancel…): what it cannot is not sent, and is said.
        self.capabilities = capabilities or OPENAI
        self.requested = config or SessionConfig()
        self.local_barge_in = lb.LocalBargeIn(local_barge_in)
        #: The input clock: ms of microphone audio seen (whether or not it was sent).
        self.input_clock_ms = 0
        self.effective: SessionConfig | None = None
        #: What this connection's server uses before our update (`session.created`): blank agent settings
        #: go back to these (see agent_settings).
        self.server_defaults: SessionConfig | None = None
        #: This server session has produced assistant audio: its voice can no longer change.
        self.session_spoke = False
        #: Items being deleted for "answer again": no truncate for them; deletes that wait for the cancelled
        #: response to end.
        self._deleting: set[str] = set()
        self._deletes_waiting: list[str] = []
        #: Function calls already reported (`response.output_item.done` may be repeated on a replay).
        self._tool_calls_seen: set[str] = set()
        #: Token usage summed over the conversation (all sessions of it), from each response.done.
        self.usage_total = TokenUsage()
        self.events = events or ev.ClientEvents()
        self.conversation = Conversation()
        self.barge_in = BargeInPolicy()
        self.state = TurnState.DISCONNECTED
        self.connected = False
        self.active_response: ResponseInfo | None = None
        self.responses: dict[str, ResponseInfo] = {}
        self._response_create_waiting: dict[str, Any] | None = None
        self._cancel_sent_for: str | None = None
        #: Assistant item currently audible (reported by the playback adapter).
        self.audible_item: str | None = None
        #: Assistant audio was handed to playback and has not finished or been stopped.
        self.audio_queued = False
        #: Milliseconds of audio appended since the last commit/clear (manual turns need ≥ 100 ms).
        self.uncommitted_ms = 0.0
        self.appended_ms_total = 0.0
        #: The audio sent lately, and where each spoken user turn lies in it ("keep my last turn").
        self.sent_audio = SentAudioTape()
        #: The server VAD's span of each user turn not yet committed: item_id -> [audio_start_ms, audio_end_ms].
        self._speech_spans: dict[str, list[int | None]] = {}
        self.skipped_events = 0
        #: session.update events sent and not yet answered (session.updated or an error).
        self._updates_in_flight = 0
        self.last_error: ev.ServerError | None = None
        #: Sent events by id, so an `error` can say which of ours caused it.
        self._sent_types: dict[str, str] = {}
        #: Image metadata of the user message just sent, attached when the server adds the item.
        self._pending_images: list[ImageInfo] = []
        #: Items put back into a new server session after a reconnect: their echo is not a new turn.
        self._reseeded_ids: set[str] = set()
        #: Messages (content parts, images) typed while not connected, sent on reconnect.
        self.outbox: list[tuple[list[dict[str, Any]], list[ImageInfo]]] = []

    # ------------------------------------------------------------------ connection
    def on_connected(self) -> list[Action]:
        """The socket is open: configure the session."""
        self.connected = True
        self.session_spoke = False
        self.server_defaults = None
        self.conversation.begin_server_session()
        self.active_response = None
        self._response_create_waiting = None
        self.uncommitted_ms = 0.0
        self.sent_audio.connected()
        self._updates_in_flight = 1
        return [self._send(self.events.session_update(self.requested.to_wire())), *self._set_state(TurnState.LISTENING)]

    def start_over(self) -> list[Action]:
        """A new conversation: forget every item, answer, waiting message and count of the old one. The caller
        silences playback and opens a new server session (the old one still holds the old context)."""
        self.conversation.clear()
        self.active_response = None
        self.responses.clear()
        self._response_create_waiting = None
        self._cancel_sent_for = None
        self.audible_item = None
        self.audio_queued = False
        self.uncommitted_ms = 0.0
        self._speech_spans.clear()
        self.sent_audio.forget()
        self._pending_images = []
        self._reseeded_ids.clear()
        self._tool_calls_seen.clear()
        self._deleting.clear()
        self._deletes_waiting = []
        self.outbox.clear()
        self.barge_in = BargeInPolicy()
        self.usage_total = TokenUsage()
        actions: list[Action] = [ConversationCleared(), UsageUpdated(self.usage_total)]
        if self.connected:
            actions += self._set_state(TurnState.LISTENING)
        return actions

    def reseed_context(self, max_items: int = 20, max_chars: int = 12_000) -> list[Action]:
        """After a reconnect: put the recent text turns back into the new server session (see context_reseed)."""
        if not self.connected:
            return []
        from .context_reseed import reseed_events

        actions: list[Action] = []
        for event in reseed_events(self.conversation, self.events, max_items, max_chars):
            self._reseeded_ids.add(event["item"]["id"])
            actions.append(self._send(event))
        return actions

    def on_disconnected(self) -> list[Action]:
        """The socket closed. Audio already received keeps playing (it is the user's, nothing more can
        come of it); an answer that was still being generated is marked incomplete in the transcript."""
        self.connected = False
        actions: list[Action] = []
        # Answers the user asked to replace are gone for good: not re-seeded into the next session.
        for item_id in list(self._deleting):
            if self.conversation.delete(item_id):
                actions.append(ItemRemoved(item_id))
        self._deleting.clear()
        self._deletes_waiting = []
        if self.active_response is not None:
            for item_id in self.active_response.item_ids or []:
                item = self.conversation.get(item_id)
                if item is not None and item.status == "in_progress":
                    item.status = "incomplete"
                    actions.append(ItemChanged(item_id))
        self.active_response = None
        self._response_create_waiting = None
        return actions + self._set_state(TurnState.DISCONNECTED)

    # ------------------------------------------------------------------ user intent
    def update_session(self, config: SessionConfig) -> list[Action]:
        self.requested = config
        if not self.connected:
            return []
        self._updates_in_flight = self._updates_in_flight + 1
        wire = config.to_wire()
        if self.session_spoke:
            # The API refuses any voice in an update once the session has spoken (the whole update would be
            # lost with it); the requested voice waits for the next session.
            wire["audio"]["output"].pop("voice", None)
        return [self._send(self.events.session_update(wire))]

    @property
    def voice_waits(self) -> bool:
        """A voice was asked for that this session, having spoken, cannot take: the next session will."""
        if not self.session_spoke or self.effective is None or not self.requested.voice:
            return False
        return self.requested.voice != self.effective.voice

    def append_audio(self, pcm16: np.ndarray) -> list[Action]:
        if not self.connected or len(pcm16) == 0:
            return []
        ms = len(pcm16) * 1000.0 / PROTOCOL_RATE
        self.uncommitted_ms += ms
        self.appended_ms_total += ms
        self.sent_audio.appended(pcm16)
        return [self._send(self.events.input_audio_append(pcm16))]

    def commit_turn(self, create_response: bool = True) -> list[Action]:
        """Manual turns: commit what was said and ask for an answer."""
        if not self.connected:
            return [Notice("warning", "Not connected: nothing was sent.")]
        if self.uncommitted_ms < MIN_COMMIT_MS:
            return [Notice("info", f"Hold to talk a little longer: at least {MIN_COMMIT_MS} ms of audio is needed.")]
        self.uncommitted_ms = 0.0
        self.sent_audio.committed_manually()
        actions: list[Action] = [self._send(self.events.input_audio_commit())]
        if create_response:
            actions += self.request_response()
        return actions

    def clear_input(self) -> list[Action]:
        self.uncommitted_ms = 0.0
        if not self.connected:
            return []
        self.sent_audio.cleared()
        return [self._send(self.events.input_audio_clear())]

    def send_user_content(self, content: list[dict[str, Any]], images: list[ImageInfo] | None = None) -> list[Action]:
        """A typed message and/or images as one user item, followed by a response."""
        if not self.connected:
            # Nothing typed is lost: held until the connection is back (see flush_outbox).
            if len(self.outbox) >= OUTBOX_LIMIT:
                return [Notice("warning", f"Not connected, and {OUTBOX_LIMIT} messages are already waiting: "
                                          "this one was not sent.")]
            self.outbox.append((list(content), list(images or [])))
            n = len(self.outbox)
            waiting = "1 message is" if n == 1 else f"{n} messages are"
            return [Notice("info", f"Not connected: {waiting} waiting and will be sent when Parley reconnects.")]
        event = self.events.user_message(content, previous_item_id=None)
        # Let the server place it at the end of the conversation (no previous_item_id).
        actions: list[Action] = [self._send(event)]
        self._pending_images = images or []
        return actions + self.request_response()

    def flush_outbox(self) -> list[Action]:
        """After (re)connecting: send the messages typed while disconnected, in order, then one response."""
        if not self.connected or not self.outbox:
            return []
        queued, self.outbox = self.outbox, []
        actions: list[Action] = []
        images: list[ImageInfo] = []
        for content, imgs in queued:
            actions.append(self._send(self.events.user_message(content, previous_item_id=None)))
            images += imgs
        self._pending_images = images
        n = len(queued)
        actions.append(Notice("info", "Sent the message typed while disconnected." if n == 1 else
                              f"Sent the {n} messages typed while disconnected."))
        return actions + self.request_response()

    def send_text(self, text: str) -> list[Action]:
        text = text.strip()
        if not text:
            return []
        return self.send_user_content([ev.text_part(text)])

    def request_response(self, response: dict[str, Any] | None = None) -> list[Action]:
        """`response.create`, or after the live response ends if one is in progress."""
        if self.active_response is not None:
            self._response_create_waiting = response or {}
            return []
        return [self._send(self.events.response_create(response))]

    def answer_again(self) -> list[Action]:
        """The last answer again, e.g. after changing the instructions or the voice: stop and cancel it if it is
        still going, delete from the conversation what the model said since the user's last turn (so the new
        answer does not follow the old one), and ask for a new response."""
        if not self.connected:
            return [Notice("warning", "Not connected: nothing can be answered again now.")]
        items = self.conversation.items
        last_user = max((n for n, item in enumerate(items) if item.role == "user"), default=None)
        if last_user is None:
            return [Notice("info", "There is no turn of yours to answer again yet.")]
        old = [item.item_id for item in items[last_user + 1:] if item.role in ("assistant", "tool")]
        actions: list[Action] = []
        if not self.capabilities.can_delete_items:
            # The old answer stays in the model's context (and in the transcript): the new one follows it.
            if old:
                actions.append(Notice("info", f"{self.capabilities.name} cannot remove the old answer from the "
                                              "model's context: the new answer follows it."))
            old = []
        self._deleting.update(old)
        if self.audible_item is not None or self.audio_queued or self.active_response is not None:
            actions += self._interrupt(source="user", server_cancels=False)
        if self.active_response is not None:  # deleted once the cancelled response is done, then the new one
            self._deletes_waiting += [i for i in old if i not in self._deletes_waiting]
            return actions + self.request_response()
        actions += [self._send(self.events.item_delete(item_id)) for item_id in old]
        return actions + self.request_response()

    def delete_item(self, item_id: str) -> list[Action]:
        """Take one item out of the conversation (`conversation.item.delete`): the model no longer has it in its
        context. It leaves the transcript when the server confirms (`conversation.item.deleted`)."""
        if not self.connected:
            return [Notice("warning", "Not connected: nothing can be deleted now.")]
        if self.conversation.get(item_id) is None:
            return []
        if not self.capabilities.can_delete_items:
            return [Notice("info", f"{self.capabilities.name} cannot remove a turn from the model's context, so "
                                   "it was kept.")]
        response = self.active_response
        if response is not None and item_id in (response.item_ids or []):
            return [Notice("info", "That answer is still going: stop it first (Ctrl+.), then delete it.")]
        self._deleting.add(item_id)
        return [self._send(self.events.item_delete(item_id))]

    def cancel_response(self) -> list[Action]:
        """The user pressed stop: silence the answer, cancel it, truncate what was not heard."""
        return self._interrupt(source="user", server_cancels=False)

    # ------------------------------------------------------------------ local voice activity
    def local_vad_frame(self, probability: float, frame_end_ms: int, echo_removed_db: float | None = None) -> list[Action]:
        """One frame of the local VAD on the microphone (after echo cancellation, which took `echo_removed_db`
        out of the signal around this frame)."""
        self.input_clock_ms = max(self.input_clock_ms, frame_end_ms)
        return self._local(self.local_barge_in.on_frame(probability, frame_end_ms, self._assistant_audible(),
                                                        echo_removed_db))

    def local_onset(self, at_ms: int) -> list[Action]:
        """A sudden, non-echo rise in the microphone's level (see speech_onset) at `at_ms` on the input clock."""
        self.input_clock_ms = max(self.input_clock_ms, at_ms)
        return self._local(self.local_barge_in.on_onset(at_ms, self._assistant_audible()))

    def speaker_underrun(self) -> list[Action]:
        """The speaker just played silence nobody handed it (an underrun): see `LocalBargeIn.on_speaker_underrun`."""
        return self._local(self.local_barge_in.on_speaker_underrun(self.input_clock_ms))

    def uplink_gain(self, echo_cancelled: bool) -> float:
        """Gain for the microphone audio about to be sent (echo residue kept from the server's VAD)."""
        return self.local_barge_in.uplink_gain(self._assistant_audible(), echo_cancelled)

    def _assistant_audible(self) -> bool:
        td = self.effective.turn_detection if self.effective else self.requested.turn_detection
        return (self.audible_item is not None or self.audio_queued) and not isinstance(td, ManualTurns)

    def tick(self, now_ms: int | None = None) -> list[Action]:
        """Time passes on the input clock (false-interruption timeout)."""
        return self._local(self.local_barge_in.tick(self.input_clock_ms if now_ms is None else now_ms))

    def reply_latency(self, item_id: str, ms: int) -> list[Action]:
        """The answer `item_id` began `ms` after the user's spoken turn ended (measured by the caller's clock)."""
        item = self.conversation.get(item_id)
        if item is None:
            return []
        item.reply_latency_ms = int(ms)
        return [ItemChanged(item_id)]

    def assistant_heard(self, ms: int) -> None:
        """Total assistant audio heard this session (for the local barge-in's warm-up)."""
        self.local_barge_in.assistant_heard_ms = ms

    def _local(self, local: list[lb.LocalAction]) -> list[Action]:
        actions: list[Action] = []
        for a in local:
            if isinstance(a, lb.Duck):
                actions.append(DuckPlayback(a.gain))
            elif isinstance(a, lb.Unduck):
                actions.append(UnduckPlayback())
            elif isinstance(a, lb.Hold):
                actions.append(PausePlayback(tentative=True, cause=a.cause))
            elif isinstance(a, lb.Release):
                actions.append(ResumePlayback(tentative=True))
            elif isinstance(a, lb.Pause):
                actions.append(PausePlayback())
                actions += self._set_state(TurnState.INTERRUPTED)
            elif isinstance(a, lb.Resume):
                actions.append(ResumePlayback())
                actions.append(Notice("info", "False interruption: the answer goes on."))
                actions += self._set_state(TurnState.ASSISTANT_SPEAKING if self.audio_queued else TurnState.LISTENING)
        return actions

    # ------------------------------------------------------------------ playback reports
    def playback_started(self, item_id: str) -> list[Action]:
        self.audible_item = item_id
        return self._set_state(TurnState.ASSISTANT_SPEAKING)

    def playback_finished(self) -> list[Action]:
        """All queued assistant audio has been played."""
        self.audible_item = None
        self.audio_queued = False
        self.local_barge_in.on_assistant_silent()
        if self.state == TurnState.ASSISTANT_SPEAKING:
            return self._set_state(TurnState.LISTENING)
        return []

    def playback_stopped(self, item_id: str | None, played_ms: int) -> list[Action]:
        """Playback was stopped for a barge-in: truncate the item to what was heard."""
        self.audible_item = None
        self.audio_queued = False
        self.local_barge_in.on_assistant_silent()
        if not item_id:
            return []
        item = self.conversation.get(item_id)
        if item is None or item.role != "assistant" or item_id in self._deleting:
            return []  # an answer being replaced ("answer again") is deleted, not truncated
        heard = self.barge_in.truncate_ms(played_ms, item.audio_received_ms)
        actions: list[Action] = []
        if heard is not None and heard < item.audio_received_ms + 1 and self.connected:
            if self.capabilities.can_truncate:
                actions.append(self._send(self.events.item_truncate(item_id, heard)))
            else:
                item.model_kept_unheard = True
        shown_ms = heard or 0
        item.truncated_at_ms = shown_ms
        item.heard_text = heard_text(item.text, shown_ms, item.audio_received_ms)
        item.status = "cancelled" if item.status == "in_progress" else item.status
        actions += [
            ItemChanged(item_id),
            BargeInHappened(item_id=item_id, heard_ms=shown_ms, received_ms=item.audio_received_ms, source="playback"),
        ]
        if self.state == TurnState.INTERRUPTED and self.active_response is None:
            # Stopped after its response had ended (all generated, still playing): no response.done will come
            # to end the interruption, so listening starts again here.
            actions += self._set_state(TurnState.LISTENING)
        return actions

    # ------------------------------------------------------------------ server events
    def receive(self, message: str | bytes | dict[str, Any]) -> list[Action]:
        """Handle one server message. Never raises: malformed and unknown events are logged and skipped."""
        return self.receive_event(ev.parse_server_event(message))

    def receive_event(self, event: ev.ServerEvent) -> list[Action]:
        """Handle one parsed server event (from a dialect). Never raises."""
        try:
            return self.handle(event)
        except Exception as exc:  # a bug here must not take the conversation down
            log.exception("error while handling %s", type(event).__name__)
            self.skipped_events += 1
            return [Notice("warning", f"Skipped a server event Parley could not handle ({type(exc).__name__}).")]

    def handle(self, event: ev.ServerEvent) -> list[Action]:
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is None:
            return []
        return handler(event)

    def _on_MalformedEvent(self, e: ev.MalformedEvent) -> list[Action]:
        self.skipped_events += 1
        log.warning("skipped malformed server event %s: %s", e.type or "?", e.reason)
        return []

    def _on_UnknownEvent(self, e: ev.UnknownEvent) -> list[Action]:
        log.debug("ignored unknown server event %s", e.type)
        return []

    def _on_SessionCreated(self, e: ev.SessionCreated) -> list[Action]:
        # The server's defaults; our session.update (already sent) will follow with session.updated, so
        # differences from what we asked are not reported yet (they would be a false alarm).
        self.effective = SessionConfig.from_wire(e.session)
        self.server_defaults = self.effective
        return [SessionChanged(())]

    def _on_SessionUpdated(self, e: ev.SessionUpdated) -> list[Action]:
        self.effective = SessionConfig.from_wire(e.session)
        self._updates_in_flight = max(0, self._updates_in_flight - 1)
        # With newer updates still unanswered this one reflects an older request: no false "differs" alarm.
        diffs = self._differences() if self._updates_in_flight == 0 else ()
        actions: list[Action] = [SessionChanged(diffs)]
        if diffs:
            log.info("server kept different values: %s", ", ".join(diffs))
        return actions

    def _differences(self) -> tuple[str, ...]:
        if self.effective is None:
            return ()
        want, got = self.requested.turn_detection, self.effective.turn_detection
        diffs: list[str] = []
        if type(want) is not type(got):
            diffs.append(f"turn detection: asked {want.type}, server uses {got.type}")
        elif isinstance(want, (ServerVad, SemanticVad)):
            for name in want.__dataclass_fields__:
                if name == "type":
                    continue
                a, b = getattr(want, name), getattr(got, name)
                if isinstance(a, float) and isinstance(b, float) and abs(a - b) < 1e-6:
                    continue
                if a != b and not (name == "idle_timeout_ms" and a is None):
                    diffs.append(f"{name}: asked {a}, server uses {b}")
        return tuple(diffs)

    def _on_SpeechStarted(self, e: ev.SpeechStarted) -> list[Action]:
        actions: list[Action] = [SpeechBoundary(True, e.audio_start_ms, e.item_id)]
        if len(self._speech_spans) >= 32:  # turns that were cleared, never committed
            self._speech_spans.pop(next(iter(self._speech_spans)))
        self._speech_spans[e.item_id] = [e.audio_start_ms, None]
        self.local_barge_in.on_server_turn_started(self.input_clock_ms)
        td = self.effective.turn_detection if self.effective else self.requested.turn_detection
        server_cancels = not isinstance(td, ManualTurns) and getattr(td, "interrupt_response", True)
        actions += self._interrupt(source="server_vad", server_cancels=server_cancels)
        return actions + self._set_state(TurnState.USER_SPEAKING)

    def _interrupt(self, *, source: str, server_cancels: bool) -> list[Action]:
        response_live = self.active_response is not None and self.active_response.status == "in_progress"
        decision = self.barge_in.on_user_speech(
            assistant_audible=self.audible_item is not None or self.audio_queued,
            response_live=response_live,
            server_cancels=server_cancels,
            source=source,
        )
        if decision is None:
            return []
        actions: list[Action] = []
        if self.active_response is not None:
            self.barge_in.silence(self.active_response.response_id)
            for item_id in self.active_response.item_ids or []:
                actions.append(DiscardAudio(item_id))
        if decision.stop_playback:
            actions.append(StopPlayback(source))
        if decision.cancel_response and self.active_response is not None and self.connected:
            # (A provider without cancel gets it too: its dialect notes the answer as cancelled, sends nothing.)
            if self._cancel_sent_for != self.active_response.response_id:
                self._cancel_sent_for = self.active_response.response_id
                actions.append(self._send(self.events.response_cancel()))
        return actions + self._set_state(TurnState.INTERRUPTED)

    def _on_SpeechStopped(self, e: ev.SpeechStopped) -> list[Action]:
        span = self._speech_spans.get(e.item_id)
        if span is not None:
            span[1] = e.audio_end_ms
        return [SpeechBoundary(False, e.audio_end_ms, e.item_id), *self._set_state(TurnState.THINKING)]

    def _on_InputCommitted(self, e: ev.InputCommitted) -> list[Action]:
        self.uncommitted_ms = 0.0
        start, end = self._speech_spans.pop(e.item_id, (None, None))
        spoken = {"audio_start_ms": start, "audio_end_ms": end} if start is not None and end is not None else {}
        self.sent_audio.committed(e.item_id, (start, end) if spoken else None)
        if e.item_id in self.sent_audio.sources:
            spoken["spoken_from"] = self.sent_audio.sources[e.item_id]
        self.conversation.place(e.item_id, e.previous_item_id, role="user", has_audio=True, **spoken)
        return [ItemChanged(e.item_id)]

    def _on_InputCleared(self, e: ev.InputCleared) -> list[Action]:
        self.uncommitted_ms = 0.0
        return []

    def _on_InputTimeoutTriggered(self, e: ev.InputTimeoutTriggered) -> list[Action]:
        return [Notice("info", "You were quiet for a while; the assistant will prompt you.")]

    def _is_reseed_echo(self, item: dict[str, Any]) -> bool:
        item_id = item.get("id")
        return isinstance(item_id, str) and item_id in self._reseeded_ids and item_id in self.conversation

    def _on_ItemAdded(self, e: ev.ItemAdded) -> list[Action]:
        if self._is_reseed_echo(e.item):
            return []
        item = self.conversation.update_from_wire(e.item, e.previous_item_id, explicit=True)
        if item is None:
            return []
        if item.role == "user" and not item.has_audio and self._pending_images:
            item.images = self._pending_images
            self._pending_images = []
        return [ItemChanged(item.item_id)]

    def _on_ItemDone(self, e: ev.ItemDone) -> list[Action]:
        if self._is_reseed_echo(e.item):
            return []
        item = self.conversation.update_from_wire(e.item, e.previous_item_id, explicit=e.previous_item_id is not None)
        return [ItemChanged(item.item_id)] if item else []

    def _on_ItemRetrieved(self, e: ev.ItemRetrieved) -> list[Action]:
        item = self.conversation.update_from_wire(e.item, None, explicit=False)
        return [ItemChanged(item.item_id)] if item else []

    def _on_ItemTruncated(self, e: ev.ItemTruncated) -> list[Action]:
        item = self.conversation.get(e.item_id)
        if item is None:
            return []
        item.truncated_at_ms = e.audio_end_ms
        return [ItemChanged(e.item_id)]

    def _on_ItemDeleted(self, e: ev.ItemDeleted) -> list[Action]:
        self._deleting.discard(e.item_id)
        return [ItemRemoved(e.item_id)] if self.conversation.delete(e.item_id) else []

    def _on_InputTranscriptionDelta(self, e: ev.InputTranscriptionDelta) -> list[Action]:
        item = self.conversation.ensure(e.item_id, "user")
        if not item.text_final:
            item.text += e.delta
        return [ItemChanged(e.item_id)]

    def _on_InputTranscriptionCompleted(self, e: ev.InputTranscriptionCompleted) -> list[Action]:
        item = self.conversation.ensure(e.item_id, "user")
        item.text = e.transcript.strip()
        item.text_final = True
        item.status = "completed"
        return [ItemChanged(e.item_id)]

    def _on_InputTranscriptionFailed(self, e: ev.InputTranscriptionFailed) -> list[Action]:
        item = self.conversation.ensure(e.item_id, "user")
        item.transcription_failed = str(e.error.get("message") or "transcription failed")
        return [ItemChanged(e.item_id), Notice("warning", f"Could not transcribe what you said: {item.transcription_failed}")]

    def _on_ResponseCreated(self, e: ev.ResponseCreated) -> list[Action]:
        info = ResponseInfo(e.response_id, "in_progress", [])
        self.active_response = info
        if e.response_id:
            self.responses[e.response_id] = info
        return self._set_state(TurnState.THINKING) if self.state != TurnState.USER_SPEAKING else []

    def _on_OutputItemAdded(self, e: ev.OutputItemAdded) -> list[Action]:
        item = self.conversation.update_from_wire(e.item, None, explicit=False)
        if item is None:
            return []
        rid = e.response_id or (self.active_response.response_id if self.active_response else "")
        item.response_id = rid or None
        info = self.responses.get(rid) or self.active_response
        if info is not None and info.item_ids is not None and item.item_id not in info.item_ids:
            info.item_ids.append(item.item_id)
        return [ItemChanged(item.item_id)]

    def _on_OutputItemDone(self, e: ev.OutputItemDone) -> list[Action]:
        item = self.conversation.update_from_wire(e.item, None, explicit=False)
        if item is None:
            return []
        actions: list[Action] = [ItemChanged(item.item_id)]
        if item.kind == "function_call" and item.call_id and item.call_id not in self._tool_calls_seen:
            self._tool_calls_seen.add(item.call_id)
            log.info("tool call %s %s(%s)", item.call_id, item.tool_name, item.arguments)
            actions.append(ToolCalled(item.item_id, item.call_id, item.tool_name or "", item.arguments or ""))
        return actions

    def send_tool_output(self, call_id: str, output: str) -> list[Action]:
        """Answer a tool call: its `function_call_output` item, then a response (after the calling one is done)
        so the model speaks with the result."""
        if not self.connected:
            return [Notice("warning", "Not connected: the tool's result could not be sent.")]
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return [self._send(self.events.item_create(item)), *self.request_response()]

    def _on_OutputAudioDelta(self, e: ev.OutputAudioDelta) -> list[Action]:
        self.session_spoke = True
        if self.barge_in.is_silenced(e.response_id):
            log.debug("dropped late audio of interrupted response %s", e.response_id)
            return []
        item = self.conversation.ensure(e.item_id, "assistant")
        item.has_audio = True
        item.response_id = e.response_id
        item.audio_received_ms += samples_to_ms(len(e.audio))
        info = self.responses.get(e.response_id)
        if info is not None and info.item_ids is not None and e.item_id not in info.item_ids:
            info.item_ids.append(e.item_id)
        self.audio_queued = True
        return [PlayAudio(e.item_id, e.response_id, e.audio)]

    def _on_OutputAudioDone(self, e: ev.OutputAudioDone) -> list[Action]:
        return []

    def _assistant_text(self, item_id: str, response_id: str, delta: str | None = None, final: str | None = None) -> list[Action]:
        item = self.conversation.ensure(item_id, "assistant")
        item.role = "assistant"
        if item.interrupted and self.barge_in.is_silenced(response_id):
            # The rest of an interrupted answer: keep it (shown as unheard), but it changes nothing heard.
            pass
        if final is not None:
            item.text = final
            item.text_final = True
        elif delta and not item.text_final:
            item.text += delta
        return [ItemChanged(item_id)]

    def _on_OutputTranscriptDelta(self, e: ev.OutputTranscriptDelta) -> list[Action]:
        return self._assistant_text(e.item_id, e.response_id, delta=e.delta)

    def _on_OutputTranscriptDone(self, e: ev.OutputTranscriptDone) -> list[Action]:
        return self._assistant_text(e.item_id, e.response_id, final=e.transcript)

    def _on_OutputTextDelta(self, e: ev.OutputTextDelta) -> list[Action]:
        return self._assistant_text(e.item_id, e.response_id, delta=e.delta)

    def _on_OutputTextDone(self, e: ev.OutputTextDone) -> list[Action]:
        return self._assistant_text(e.item_id, e.response_id, final=e.text)

    def _on_ResponseDone(self, e: ev.ResponseDone) -> list[Action]:
        rid = e.response_id
        info = self.responses.get(rid)
        if info is not None:
            info.status = e.status
        if self.active_response is not None and (not rid or self.active_response.response_id == rid):
            self.active_response = None
        actions: list[Action] = []
        if e.status == "cancelled":
            for item_id in info.item_ids if info and info.item_ids else []:
                item = self.conversation.get(item_id)
                if item is not None and item.status == "in_progress":
                    item.status = "cancelled"
                    actions.append(ItemChanged(item_id))
        elif e.status == "failed":
            actions.append(Notice("error", f"The response failed: {e.error_message or 'no reason given'}"))
        elif e.status == "incomplete":
            actions.append(Notice("info", f"The answer was cut short ({e.reason or 'incomplete'})."))
        actions += self._count_usage(e, info)
        if self._deletes_waiting and self.connected:
            deletes, self._deletes_waiting = self._deletes_waiting, []
            actions += [self._send(self.events.item_delete(item_id)) for item_id in deletes]
        if self._response_create_waiting is not None and self.connected:
            waiting, self._response_create_waiting = self._response_create_waiting, None
            actions.append(self._send(self.events.response_create(waiting or None)))
        if not self.audio_queued and self.state in (TurnState.THINKING, TurnState.INTERRUPTED):
            actions += self._set_state(TurnState.LISTENING)
        return actions

    def _count_usage(self, e: ev.ResponseDone, info: ResponseInfo | None) -> list[Action]:
        usage = TokenUsage.from_wire(e.usage)
        if not usage.total:
            return []
        self.usage_total = self.usage_total + usage
        model = self.effective.model if self.effective is not None else None
        # The answer the response spoke carries its usage (an out-of-band response has none in the conversation).
        answer = next((item for item_id in ((info.item_ids or []) if info else [])
                       if (item := self.conversation.get(item_id)) is not None and item.role == "assistant"), None)
        if answer is None:
            return [UsageUpdated(self.usage_total, usage=usage, model=model)]
        answer.usage, answer.model = usage, model
        return [ItemChanged(answer.item_id), UsageUpdated(self.usage_total, answer.item_id, usage, model)]

    def _on_RateLimitsUpdated(self, e: ev.RateLimitsUpdated) -> list[Action]:
        return []

    def _on_ServerError(self, e: ev.ServerError) -> list[Action]:
        self.last_error = e
        cause = self._sent_types.get(e.caused_by or "", "")
        if cause == "session.update":  # rejected: no session.updated will answer it
            self._updates_in_flight = max(0, self._updates_in_flight - 1)
        if e.code == "response_cancel_not_active" and cause == "response.cancel":
            # The answer finished on the server while our cancel was on its way: nothing went wrong.
            log.info("response.cancel crossed the end of the response; ignored")
            return []
        log.warning("server error %s (%s): %s", e.code, cause or "no cause given", e.message)
        from .error_words import plain_words

        where = f" (after {cause})" if cause else ""
        return [Notice("error", plain_words(e.code, e.message, where), code=e.code)]

    # ------------------------------------------------------------------ helpers
    def _send(self, event: dict[str, Any]) -> Send:
        eid = event.get("event_id")
        if isinstance(eid, str):
            self._sent_types[eid] = event["type"]
            if len(self._sent_types) > 4096:  # keep memory bounded over hours
                for key in list(self._sent_types)[:2048]:
                    del self._sent_types[key]
        return Send(event)

    def _set_state(self, state: TurnState) -> list[Action]:
        if state == self.state:
            return []
        self.state = state
        return [StateChanged(state)]
