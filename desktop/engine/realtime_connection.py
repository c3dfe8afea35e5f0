"""One client connection to the embedded engine: the GA Realtime protocol over a WebSocket.

Implements the subset a desktop client uses with the real API's semantics: session lifecycle, the input
audio buffer with server VAD (Silero) and its idle timeout, transcription (Whisper), conversation items
(text, audio and images; function calls and their outputs), responses with per-response overrides
(instructions, modalities, out-of-band `conversation: "none"`, `input` items, metadata, `max_output_tokens`,
`tools`, `tool_choice`) and streamed speech (Piper, at the session's `audio.output.speed` as it was when the
response started), function calling (the brain's tool calls as function_call items with streamed
arguments; the client's outputs go back to the brain on the next `response.create`), barge-in (cancel with
`turn_detected`), truncation, `rate_limits.updated`, and `error` events naming the offending client event.
A bad client event gets an `error`, never a crash or a dropped connection.

Speed: while the user pauses (before `silence_duration_ms` has passed and the turn ends), the audio heard
so far is already being transcribed ("speculative transcription"); if the pause really ends the turn the
result is used, so at `speech_stopped` only the answer's first sentence remains to be synthesized.
All model work runs on the shared executor; the event loop only moves events.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import numpy as np

from ..core.pcm import PROTOCOL_RATE, ms_to_samples, samples_to_ms
from ..core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter
from .brain import Brain, BrainError, BrainRequest, ContextMessage, RuleBrain, SentenceAssembler, ToolCall
from .responder import Responder
from .session_state import SessionUpdateError, default_session, merge_session_update, vad_parameters
from .speech_models import SpeechModels
from .tool_calls import ToolSpecError, argument_deltas, check_tool_choice, check_tools

log = logging.getLogger(__name__)

#: Audio deltas are sent in pieces of this length, as fast as they are synthesized.
DELTA_MS = 100
MIN_COMMIT_MS = 100
#: Manual-mode input is capped (15 minutes) so a forgotten push-to-talk cannot eat memory.
MAX_BUFFER_MS = 15 * 60 * 1000
#: Approximate token accounting, in the real API's units: ~4 characters of text, 50 ms of audio per token.
CHARS_PER_TOKEN = 4
#: Audio the conversation keeps (input and output, newest first). Older items keep their transcripts but
#: drop their audio, so a long session's memory stays bounded (a 60-minute soak grew the engine by 365 MB
#: before this). Only the playing answer is ever truncated, and it is always among the newest.
MAX_RETAINED_AUDIO_MS = 20 * 60 * 1000
AUDIO_MS_PER_TOKEN = 50
#: The API's documented cap for max_output_tokens.
MAX_OUTPUT_TOKENS_LIMIT = 4096
#: What rate_limits.updated reports: the engine has no quota; these are per-connection, per-minute figures.
RATE_LIMIT_REQUESTS = 10_000
RATE_LIMIT_TOKENS = 1_000_000


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def speculate_after_ms(silence_duration_ms: int) -> int:
    """How long a pause must last before its audio is transcribed ahead of the turn's end."""
    return int(min(200, max(64, silence_duration_ms // 4)))


class ClientEventError(Exception):
    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.code, self.param, self.type = code, param, type_


@dataclass
class StoredItem:
    wire: dict[str, Any]
    audio: np.ndarray | None = None
    transcript: asyncio.Future | None = None
    text: str = ""
    #: Data URLs of the item's images.
    images: list[str] = field(default_factory=list)
    #: Index of the input_audio content part (for transcription events).
    audio_index: int = 0
    #: The audio was let go to bound memory (see MAX_RETAINED_AUDIO_MS).
    audio_dropped: bool = False


@dataclass
class ResponseSpec:
    """A response's effective options: the session's, overridden by `response.create`."""

    modalities: list[str]
    instructions: str
    out_of_band: bool = False
    #: `response.input`: the context to answer instead of the conversation (None: the conversation).
    input_items: list[StoredItem] | None = None
    metadata: dict[str, str] | None = None
    max_output_tokens: int | None = None
    #: Triggered by the server VAD idle timeout.
    idle: bool = False
    #: `audio.output.speed` when the response started: the API changes speed only between turns, and
    #: `response.create` cannot override it.
    speed: float = 1.0
    #: The function tools the brain may call, and how ("auto" | "none" | "required" | a named function).
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"

    @property
    def audio_out(self) -> bool:
        return "audio" in self.modalities


@dataclass
class ResponseRun:
    response_id: str
    spec: ResponseSpec | None = None
    task: asyncio.Task | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None
    item_id: str | None = None


@dataclass
class _Speculation:
    """A transcription started during a pause, before the turn is known to have ended."""

    task: asyncio.Task
    samples: int
    #: Speech resumed after the pause: the guess is void.
    dropped: bool = False


class _Budget(Exception):
    """max_output_tokens reached."""


class RealtimeConnection:
    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        models: SpeechModels,
        responder: Responder | None = None,
        brain: Brain | None = None,
        speculate: bool = True,
    ) -> None:
        self._send_text = send_text
        #: Transcribe during pauses, before the turn is known to have ended (see the module doc).
        self.speculate = speculate
        self.models = models
        self.responder = responder or Responder()
        self.brain: Brain = brain or RuleBrain(self.responder)
        self.session = default_session(_new_id("sess"))
        self.conversation_id = _new_id("conv")
        self._event_counter = itertools.count(1)
        #: Events already serialized: an item dict emitted now and changed later (in_progress -> completed)
        #: must go out as it was when emitted, however far behind the writer is.
        self._out: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        # Conversation
        self.items: dict[str, StoredItem] = {}
        self.order: list[str] = []
        # Input audio buffer (uncommitted audio) and the session's input clock.
        self.samples_in = 0
        self._buffer: list[np.ndarray] = []
        self._buffer_start_sample = 0
        self._vad = None
        self._segmenter: SpeechSegmenter | None = None
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0
        self._voiced_ms = 0
        self._speculation: _Speculation | None = None
        #: Speech of first sentences prepared during a pause, by (sentence text, speed) (see _prepare_answer):
        #: with the speed in the key a speed changed after the pause is never served the old audio.
        self._prepared_speech: dict[tuple[str, float], asyncio.Task] = {}
        #: Input-clock ms from which the idle timeout counts (None: not armed).
        self._idle_from_ms: int | None = None
        #: The response in the default conversation, and out-of-band ones by id.
        self.response: ResponseRun | None = None
        self._out_of_band: dict[str, ResponseRun] = {}
        self._usage_log: list[tuple[float, int]] = []
        self._tasks: set[asyncio.Task] = set()
        #: Images (data URLs) for the next user turn committed from the audio buffer, then emptied: a dialect
        #: whose video frames come apart from the speech (Gemini Live, see gemini_live_server) sets them.
        self.turn_images: list[str] = []
        self._configure_vad()

    @property
    def in_speech(self) -> bool:
        """The server VAD is inside a user's speech (started, not yet stopped)."""
        return self._speech_item_id is not None

    # ------------------------------------------------------------------ plumbing
    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        self.emit("session.created", session=self.session)

    async def close(self) -> None:
        for run in [self.response, *self._out_of_band.values()]:
            if run is not None and run.task is not None:
                run.stop.set()
                run.task.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._out.put_nowait(None)
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._writer, 2)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                pass

    async def _write_loop(self) -> None:
        while True:
            text = await self._out.get()
            if text is None:
                return
            try:
                await self._send_text(text)
            except Exception:  # the socket closed: nothing more to send
                log.debug("send failed; connection closing")
                return

    def emit(self, type_: str, **body: Any) -> None:
        event = {"type": type_, "event_id": f"event_{next(self._event_counter):06d}", **body}
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %s %s %s", event["event_id"], type_, _brief(body))
        self._out.put_nowait(json.dumps(event))

    def error(self, message: str, code: str, param: str | None = None, event_id: str | None = None, type_: str = "invalid_request_error") -> None:
        self.emit("error", error={"type": type_, "code": code, "message": message, "param": param, "event_id": event_id})

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ client events
    async def handle_message(self, message: str | bytes) -> None:
        event_id: str | None = None
        try:
            try:
                event = json.loads(message)
            except (ValueError, UnicodeDecodeError):
                raise ClientEventError("The message could not be parsed as JSON.", "invalid_json") from None
            if not isinstance(event, dict):
                raise ClientEventError("Expected a JSON object.", "invalid_json")
            event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            kind = event.get("type")
            if not isinstance(kind, str):
                raise ClientEventError("Missing required parameter: 'type'.", "missing_required_parameter", "type")
            if log.isEnabledFor(logging.DEBUG):
                log.debug("<- %s %s %s", event_id or "-", kind, _brief(event))
            handler = self._handlers.get(kind)
            if handler is None:
                raise ClientEventError(f"Invalid value: '{kind}'. Unsupported event type.", "invalid_value", "type")
            handler(self, event)
        except ClientEventError as exc:
            self.error(str(exc), exc.code, exc.param, event_id, exc.type)
        except Exception as exc:  # an engine bug: report it as a server error, keep the connection
            log.exception("error handling client event")
            self.error(f"The engine failed to handle this event: {type(exc).__name__}", "server_error", None, event_id, "server_error")

    # session.update
    def _on_session_update(self, event: dict[str, Any]) -> None:
        if "session" not in event:
            raise ClientEventError("Missing required parameter: 'session'.", "missing_required_parameter", "session")
        try:
            self.session = merge_session_update(self.session, event["session"])
        except SessionUpdateError as exc:
            raise ClientEventError(str(exc), "invalid_value", exc.param) from None
        self._configure_vad()
        self.emit("session.updated", session=self.session)

    def _configure_vad(self) -> None:
        params = vad_parameters(self.session)
        if params is None:
            if self._speech_item_id is not None:
                self._speech_item_id = None
            self._speculation = None
            self._segmenter = None
            self._idle_from_ms = None
            return
        if self._vad is None:
            self._vad = self.models.new_vad()
        if self._segmenter is None:
            self._segmenter = SpeechSegmenter(*params, frame_ms=self._vad.frame_ms)
            # The segmenter's clock starts now: align it with the session input clock.
            self._segmenter.frames = int(samples_to_ms(self.samples_in) / self._vad.frame_ms)
        else:
            self._segmenter.configure(*params)

    def _idle_timeout_ms(self) -> int | None:
        td = self.session["audio"]["input"]["turn_detection"]
        if not td or td.get("type") != "server_vad":
            return None
        return td.get("idle_timeout_ms")

    # input_audio_buffer.*
    def _on_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientEventError("Missing required parameter: 'audio'.", "missing_required_parameter", "audio")
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientEventError("Invalid 'audio': not valid base64.", "invalid_value", "audio") from None
        if len(raw) % 2:
            raise ClientEventError("Invalid 'audio': PCM16 needs an even number of bytes.", "invalid_value", "audio")
        pcm = np.frombuffer(raw, dtype="<i2")
        if len(pcm) == 0:
            return
        self._buffer.append(pcm)
        self.samples_in += len(pcm)
        if self._segmenter is not None and self._vad is not None:
            for probability in self._vad.process(pcm):
                boundary = self._segmenter.push(probability)
                if isinstance(boundary, SegmentStart):
                    self._speech_started(boundary.audio_start_ms)
                elif isinstance(boundary, SegmentEnd):
                    self._speech_stopped(boundary.audio_end_ms)
                elif self._speech_item_id is not None:
                    self._track_pause(probability)
            if self._speech_item_id is None:
                self._trim_buffer()
                self._check_idle()
        elif samples_to_ms(self.samples_in - self._buffer_start_sample) > MAX_BUFFER_MS:
            self._trim_buffer(keep_ms=MAX_BUFFER_MS)

    def _buffered(self) -> np.ndarray:
        if len(self._buffer) > 1:
            self._buffer = [np.concatenate(self._buffer)]
        return self._buffer[0] if self._buffer else np.zeros(0, dtype="<i2")

    def _trim_buffer(self, keep_ms: int | None = None) -> None:
        """Outside speech, keep only the audio that prefix padding may still need."""
        if keep_ms is None:
            td = self.session["audio"]["input"]["turn_detection"]
            keep_ms = (td.get("prefix_padding_ms", 300) if td else 300) + 500
        keep = ms_to_samples(keep_ms)
        held = self.samples_in - self._buffer_start_sample
        if held > 2 * keep:
            audio = self._buffered()[-keep:]
            self._buffer = [audio]
            self._buffer_start_sample = self.samples_in - len(audio)

    def _speech_audio(self) -> np.ndarray:
        start = max(ms_to_samples(self._speech_start_ms), self._buffer_start_sample)
        return self._buffered()[start - self._buffer_start_sample :]

    def _track_pause(self, probability: float) -> None:
        """During speech: start transcribing as soon as a pause looks like the end of the turn."""
        seg = self._segmenter
        assert seg is not None
        if probability >= seg.threshold - seg.hysteresis:
            self._voiced_ms = seg.now_ms
            if self._speculation is not None:
                log.debug("speech resumed: speculative transcription dropped")
                self._speculation.task.cancel()  # frees the executor if it has not started yet
                self._speculation.dropped = True
                self._speculation = None
            return
        if self.speculate and self._speculation is None and seg.now_ms - self._voiced_ms >= speculate_after_ms(seg.silence_duration_ms):
            audio = self._speech_audio().copy()
            self._speculation = _Speculation(self._spawn(self.models.transcribe(audio)), len(audio))
            self._spawn(self._prepare_answer(self._speculation))

    async def _prepare_answer(self, speculation: _Speculation) -> None:
        """While the pause lasts: synthesize the first sentence a brain that can tell ahead would say."""
        first_sentence = getattr(self.brain, "first_sentence", None)
        if first_sentence is None or not self.session["output_modalities"] or "audio" not in self.session["output_modalities"]:
            return
        try:
            text = await speculation.task
        except Exception:  # noqa: BLE001 - the turn's own transcription reports it
            return
        if speculation.dropped:
            return  # the user went on speaking
        sentence = first_sentence(text, tools=self.session["tools"], tool_choice=self.session["tool_choice"])
        speed = self.session["audio"]["output"]["speed"]
        if not sentence or (sentence, speed) in self._prepared_speech:
            return
        while len(self._prepared_speech) >= 4:  # keep only the latest few
            self._prepared_speech.pop(next(iter(self._prepared_speech))).cancel()
        # Stored before any await: the response, woken later by the same transcript, finds it.
        self._prepared_speech[(sentence, speed)] = self._spawn(self.models.synthesize_sentence(sentence, speed=speed))

    def _speech_started(self, audio_start_ms: int) -> None:
        item_id = _new_id("item")
        self._speech_item_id = item_id
        self._speech_start_ms = audio_start_ms
        self._voiced_ms = self._segmenter.now_ms if self._segmenter is not None else 0
        self._speculation = None
        self._idle_from_ms = None
        self.emit("input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id)
        td = self.session["audio"]["input"]["turn_detection"] or {}
        if self.response is not None and td.get("interrupt_response", True):
            self._cancel_response("turn_detected")

    def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item_id or _new_id("item")
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)
        audio = self._speech_audio()
        self._speech_item_id = None
        speculation, self._speculation = self._speculation, None
        self._commit(item_id, audio, speculation.task if speculation is not None else None)
        td = self.session["audio"]["input"]["turn_detection"] or {}
        if td.get("create_response", True) and self.response is None:
            self._start_response(self._default_spec())

    def _check_idle(self) -> None:
        """server_vad idle_timeout_ms: no speech for that long after the last answer finished playing."""
        timeout = self._idle_timeout_ms()
        if not timeout or self._idle_from_ms is None or self.response is not None:
            return
        now_ms = samples_to_ms(self.samples_in)
        if now_ms - self._idle_from_ms < timeout:
            return
        start_ms, self._idle_from_ms = self._idle_from_ms, None
        item_id = _new_id("item")
        self.emit("input_audio_buffer.timeout_triggered", audio_start_ms=max(0, start_ms), audio_end_ms=now_ms, item_id=item_id)
        # The (silent) audio since then is committed as the user's turn, then the model prompts the user.
        start = max(ms_to_samples(max(0, start_ms)), self._buffer_start_sample)
        audio = self._buffered()[start - self._buffer_start_sample :]
        if self._segmenter is not None:
            self._segmenter.reset()
        self._commit(item_id, audio)
        spec = self._default_spec()
        spec.idle = True
        self._start_response(spec)

    def _on_commit(self, event: dict[str, Any]) -> None:
        audio = self._buffered()
        if samples_to_ms(len(audio)) < MIN_COMMIT_MS:
            raise ClientEventError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, "
                f"but buffer only has {samples_to_ms(len(audio))}ms of audio.",
                "input_audio_buffer_commit_empty",
            )
        item_id = self._speech_item_id or _new_id("item")
        self._speech_item_id = None
        self._speculation = None
        self._idle_from_ms = None
        if self._segmenter is not None:
            self._segmenter.reset()
        self._commit(item_id, audio)

    def _commit(self, item_id: str, audio: np.ndarray, speculative: asyncio.Task | None = None) -> None:
        previous = self.order[-1] if self.order else None
        self._buffer = []
        self._buffer_start_sample = self.samples_in
        self.emit("input_audio_buffer.committed", item_id=item_id, previous_item_id=previous)
        transcription = self.session["audio"]["input"]["transcription"]
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        loop = asyncio.get_running_loop()
        stored = StoredItem(wire=item, audio=audio.copy(), transcript=loop.create_future())
        if self.turn_images:
            stored.images, self.turn_images = self.turn_images, []
            item["content"] += [{"type": "input_image", "image_url": "(elided)"} for _ in stored.images]
        self._add_item(item_id, stored, previous)
        self.emit("conversation.item.done", item=item, previous_item_id=previous)
        self._spawn(self._transcribe(item_id, stored, emit=transcription is not None, speculative=speculative))

    async def _transcribe(self, item_id: str, stored: StoredItem, emit: bool, speculative: asyncio.Task | None = None) -> None:
        assert stored.transcript is not None and stored.audio is not None
        t0 = time.perf_counter()
        index = stored.audio_index
        text: str | None = None
        how = "speculatively"
        if speculative is not None:
            try:
                text = await speculative
            except Exception as exc:  # noqa: BLE001 - fall back to a fresh run below
                log.warning("speculative transcription failed (%s); transcribing again", exc)
        try:
            if text is None:
                how = "after the turn"
                text = await self.models.transcribe(stored.audio)
        except Exception as exc:
            if not stored.transcript.done():
                stored.transcript.set_result(stored.text)
            if emit:
                self.emit(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item_id,
                    content_index=index,
                    error={"type": "transcription_error", "code": "transcription_failed", "message": str(exc), "param": None},
                )
            return
        stored.text = " ".join(t for t in (stored.text, text) if t)
        content = stored.wire.get("content") or []
        if index < len(content):
            content[index]["transcript"] = text
        if not stored.transcript.done():
            stored.transcript.set_result(stored.text)
        log.info("transcribed %d ms %s, %.2f s after the commit: %r", samples_to_ms(len(stored.audio)), how, time.perf_counter() - t0, text)
        if emit:
            if text:
                self.emit("conversation.item.input_audio_transcription.delta", item_id=item_id, content_index=index, delta=text)
            self.emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=index,
                transcript=text,
                usage={"type": "duration", "seconds": round(len(stored.audio) / PROTOCOL_RATE, 3)},
            )

    def _on_clear(self, event: dict[str, Any]) -> None:
        self._buffer = []
        self._buffer_start_sample = self.samples_in
        self._speech_item_id = None
        self._speculation = None
        if self._segmenter is not None:
            self._segmenter.reset()
            if self._vad is not None:
                # What was cleared must not start a turn afterwards: the VAD's unfinished frame and recurrent
                # state still hold the speech just thrown away. The segmenter's clock is re-aligned with the input.
                self._vad.reset()
                self._segmenter.frames = int(samples_to_ms(self.samples_in) / self._vad.frame_ms)
        self.emit("input_audio_buffer.cleared")

    # conversation.item.*
    def _add_item(self, item_id: str, stored: StoredItem, previous: str | None) -> None:
        self.items[item_id] = stored
        if previous is None:
            self.order.insert(0, item_id)
        else:
            self.order.insert(self.order.index(previous) + 1, item_id)
        self.emit("conversation.item.added", item=stored.wire, previous_item_id=previous)

    def _previous_of(self, item_id: str) -> str | None:
        index = self.order.index(item_id) if item_id in self.order else 0
        return self.order[index - 1] if index > 0 else None

    def _on_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ClientEventError("Missing required parameter: 'item'.", "missing_required_parameter", "item")
        # Absent or null: append at the end; "root": insert at the beginning.
        previous = event.get("previous_item_id")
        if previous is None:
            previous = self.order[-1] if self.order else None
        elif previous == "root":
            previous = None
        elif previous not in self.items:
            raise ClientEventError(f"Previous item with id '{previous}' not found.", "item_not_found", "previous_item_id")
        item_id, stored = self._build_item(item)
        if item_id in self.items:
            raise ClientEventError(f"Item with id '{item_id}' already exists.", "item_already_exists", "item.id")
        self._add_item(item_id, stored, previous)
        self.emit("conversation.item.done", item=stored.wire, previous_item_id=previous)
        if stored.transcript is not None and not stored.transcript.done():
            transcription = self.session["audio"]["input"]["transcription"]
            self._spawn(self._transcribe(item_id, stored, emit=transcription is not None))

    def _build_item(self, item: dict[str, Any]) -> tuple[str, StoredItem]:
        """Validate a client item; its stored form (a message's audio parts decoded, to be transcribed)."""
        kind = item.get("type", "message")
        if kind in ("function_call", "function_call_output"):
            return self._build_function_item(item, kind)
        if kind != "message":
            raise ClientEventError("Invalid value for 'item.type': expected message, function_call or function_call_output.",
                                   "invalid_value", "item.type")
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            raise ClientEventError("Invalid value for 'item.role': expected user, assistant or system.", "invalid_value", "item.role")
        content = item.get("content")
        if not isinstance(content, list) or not content:
            raise ClientEventError("Missing required parameter: 'item.content'.", "missing_required_parameter", "item.content")
        allowed = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"}, "assistant": {"output_text", "output_audio", "text"}}[role]
        texts: list[str] = []
        images: list[str] = []
        audio_parts: list[np.ndarray] = []
        audio_index: int | None = None
        spoken: list[np.ndarray] = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in allowed:
                raise ClientEventError(f"Invalid value for 'item.content[{i}].type'.", "invalid_value", f"item.content[{i}].type")
            if part["type"] in ("input_text", "output_text", "text"):
                if not isinstance(part.get("text"), str):
                    raise ClientEventError(f"Missing required parameter: 'item.content[{i}].text'.", "missing_required_parameter", f"item.content[{i}].text")
                texts.append(part["text"])
            elif part["type"] == "input_image":
                url = part.get("image_url")
                if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
                    raise ClientEventError(
                        f"Invalid 'item.content[{i}].image_url': expected a base64 data URL of an image.",
                        "invalid_value",
                        f"item.content[{i}].image_url",
                    )
                images.append(url)
            elif part["type"] in ("input_audio", "output_audio"):
                transcript = part.get("transcript")
                if transcript is not None and not isinstance(transcript, str):
                    raise ClientEventError(f"Invalid type for 'item.content[{i}].transcript'.", "invalid_type", f"item.content[{i}].transcript")
                pcm = _decode_pcm(part.get("audio"), f"item.content[{i}].audio", required=transcript is None)
                if transcript:
                    texts.append(transcript)
                if part["type"] == "output_audio":
                    if pcm is not None:
                        spoken.append(pcm)  # an assistant turn's audio: kept so that it can be truncated
                elif pcm is not None and not transcript:
                    audio_parts.append(pcm)  # user speech without a transcript: to be transcribed
                    audio_index = i if audio_index is None else audio_index
        item_id = item.get("id") if isinstance(item.get("id"), str) else _new_id("item")
        wire = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": role,
            "status": "completed",
            "content": [
                {k: v for k, v in p.items() if k not in ("image_url", "audio")}
                | ({"image_url": "(elided)"} if p["type"] == "input_image" else {})
                | ({"transcript": p.get("transcript")} if p["type"] in ("input_audio", "output_audio") else {})
                for p in content
            ],
        }
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        stored = StoredItem(wire=wire, transcript=fut, text=" ".join(texts), images=images)
        if audio_parts:
            # Spoken content without a transcript: transcribed like a committed turn.
            stored.audio = np.concatenate(audio_parts)
            stored.audio_index = audio_index or 0
        else:
            fut.set_result(stored.text)
            if spoken:
                stored.audio = np.concatenate(spoken)
        return item_id, stored

    @staticmethod
    def _build_function_item(item: dict[str, Any], kind: str) -> tuple[str, StoredItem]:
        """A function call's output (the client ran the tool), or a function call the client adds itself (the
        API allows it, e.g. to restore a conversation). Any call_id is accepted, as the API does."""
        required = ("name", "arguments") if kind == "function_call" else ("call_id", "output")
        for key in (*required, "call_id"):
            value = item.get(key)
            if value is None and key in required:
                raise ClientEventError(f"Missing required parameter: 'item.{key}'.", "missing_required_parameter", f"item.{key}")
            if value is not None and not isinstance(value, str):
                raise ClientEventError(f"Invalid type for 'item.{key}': expected a string.", "invalid_type", f"item.{key}")
        if kind == "function_call" and not item["name"]:
            raise ClientEventError("Invalid value for 'item.name': expected a function's name.", "invalid_value", "item.name")
        if item.get("call_id") == "":
            raise ClientEventError("Invalid value for 'item.call_id': expected a call's id.", "invalid_value", "item.call_id")
        item_id = item.get("id") if isinstance(item.get("id"), str) else _new_id("item")
        wire: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": kind, "status": "completed"}
        if kind == "function_call":
            wire |= {"name": item["name"], "call_id": item.get("call_id") or _new_id("call"), "arguments": item["arguments"]}
            return item_id, StoredItem(wire=wire, text=item["arguments"])
        wire |= {"call_id": item["call_id"], "output": item["output"]}
        return item_id, StoredItem(wire=wire, text=item["output"])

    def _lookup(self, event: dict[str, Any]) -> tuple[str, StoredItem]:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            raise ClientEventError("Missing required parameter: 'item_id'.", "missing_required_parameter", "item_id")
        stored = self.items.get(item_id)
        if stored is None:
            raise ClientEventError(f"Item with item_id '{item_id}' not found.", "item_not_found", "item_id")
        return item_id, stored

    def _on_item_retrieve(self, event: dict[str, Any]) -> None:
        item_id, stored = self._lookup(event)
        self.emit("conversation.item.retrieved", item=stored.wire)

    def _on_item_delete(self, event: dict[str, Any]) -> None:
        item_id, _ = self._lookup(event)
        del self.items[item_id]
        self.order.remove(item_id)
        self.emit("conversation.item.deleted", item_id=item_id)

    def _on_item_truncate(self, event: dict[str, Any]) -> None:
        item_id, stored = self._lookup(event)
        end_ms = event.get("audio_end_ms")
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
            raise ClientEventError("Invalid value for 'audio_end_ms': expected a non-negative integer.", "invalid_value", "audio_end_ms")
        if event.get("content_index", 0) != 0:
            raise ClientEventError("Invalid value for 'content_index'.", "invalid_value", "content_index")
        if stored.wire.get("role") == "assistant" and stored.audio_dropped:
            raise ClientEventError("This message is too old: the engine no longer keeps its audio.", "invalid_value", "item_id")
        if stored.wire.get("role") != "assistant" or stored.audio is None:
            raise ClientEventError("Only assistant messages with audio can be truncated.", "invalid_value", "item_id")
        have_ms = samples_to_ms(len(stored.audio))
        if end_ms > have_ms:
            raise ClientEventError(
                f"Audio content of {have_ms}ms is already shorter than {end_ms}ms", "invalid_value", "audio_end_ms"
            )
        text = stored.text
        keep_chars = int(len(text) * end_ms / have_ms) if have_ms else 0
        cut = text.rfind(" ", 0, keep_chars + 1)
        stored.text = text[: cut if cut > 0 else keep_chars].rstrip()
        stored.audio = stored.audio[: ms_to_samples(end_ms)]
        for part in stored.wire.get("content", []):
            if part.get("type") == "output_audio":
                part["transcript"] = stored.text
        self.emit("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end_ms)

    # response.*
    def _default_spec(self) -> ResponseSpec:
        limit = self.session.get("max_output_tokens", "inf")
        return ResponseSpec(
            modalities=list(self.session["output_modalities"]),
            instructions=self.session.get("instructions") or "",
            max_output_tokens=limit if isinstance(limit, int) else None,
            speed=self.session["audio"]["output"]["speed"],
            tools=list(self.session["tools"]),
            tool_choice=self.session["tool_choice"],
        )

    def _parse_response_options(self, options: dict[str, Any]) -> ResponseSpec:
        spec = self._default_spec()
        if "output_modalities" in options and options["output_modalities"] is not None:
            mods = options["output_modalities"]
            if not isinstance(mods, list) or not mods or any(m not in ("audio", "text") for m in mods):
                raise ClientEventError("Invalid value for 'response.output_modalities': expected [\"audio\"] or [\"text\"].",
                                       "invalid_value", "response.output_modalities")
            spec.modalities = list(mods)
        if options.get("instructions") is not None:
            if not isinstance(options["instructions"], str):
                raise ClientEventError("Invalid type for 'response.instructions': expected a string.", "invalid_type", "response.instructions")
            spec.instructions = options["instructions"]
        conversation = options.get("conversation")
        if conversation not in (None, "auto", "none"):
            raise ClientEventError("Invalid value for 'response.conversation': expected 'auto' or 'none'.", "invalid_value", "response.conversation")
        spec.out_of_band = conversation == "none"
        metadata = options.get("metadata")
        if metadata is not None:
            if (not isinstance(metadata, dict) or len(metadata) > 16
                    or any(not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items())):
                raise ClientEventError("Invalid value for 'response.metadata': up to 16 string keys (64 chars) and string values (512 chars).",
                                       "invalid_value", "response.metadata")
            spec.metadata = dict(metadata)
        if "max_output_tokens" in options and options["max_output_tokens"] is not None:
            limit = options["max_output_tokens"]
            if limit == "inf":
                spec.max_output_tokens = None
            elif isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_OUTPUT_TOKENS_LIMIT:
                spec.max_output_tokens = limit
            else:
                raise ClientEventError(f"Invalid value for 'response.max_output_tokens': expected 1 to {MAX_OUTPUT_TOKENS_LIMIT} or 'inf'.",
                                       "invalid_value", "response.max_output_tokens")
        if options.get("tools") is not None or options.get("tool_choice") is not None:
            try:
                if options.get("tools") is not None:
                    spec.tools = check_tools(options["tools"], "response.tools")
                choice = options["tool_choice"] if options.get("tool_choice") is not None else spec.tool_choice
                spec.tool_choice = check_tool_choice(choice, spec.tools, "response.tool_choice")
            except ToolSpecError as exc:
                raise ClientEventError(str(exc), "invalid_value", exc.param) from None
        if options.get("input") is not None:
            items = options["input"]
            if not isinstance(items, list):
                raise ClientEventError("Invalid type for 'response.input': expected an array of items.", "invalid_type", "response.input")
            spec.input_items = []
            for i, entry in enumerate(items):
                if not isinstance(entry, dict):
                    raise ClientEventError(f"Invalid type for 'response.input[{i}]'.", "invalid_type", f"response.input[{i}]")
                if entry.get("type") == "item_reference":
                    ref = entry.get("id")
                    if ref not in self.items:
                        raise ClientEventError(f"Item with id '{ref}' not found.", "item_not_found", f"response.input[{i}].id")
                    spec.input_items.append(self.items[ref])
                    continue
                try:
                    _, stored = self._build_item(entry)
                except ClientEventError as exc:
                    raise ClientEventError(str(exc).replace("'item.", f"'response.input[{i}]."), exc.code,
                                           (exc.param or "").replace("item.", f"response.input[{i}].", 1), exc.type) from None
                if stored.transcript is not None and not stored.transcript.done():
                    self._spawn(self._transcribe(stored.wire["id"], stored, emit=False))
                spec.input_items.append(stored)
        return spec

    def _on_response_create(self, event: dict[str, Any]) -> None:
        options = event.get("response") or {}
        if not isinstance(options, dict):
            raise ClientEventError("Invalid type for 'response': expected an object.", "invalid_type", "response")
        spec = self._parse_response_options(options)
        if self.response is not None and not spec.out_of_band:
            raise ClientEventError(
                f"Conversation already has an active response in progress: {self.response.response_id}. "
                "Wait until the response is finished before creating a new one.",
                "conversation_already_has_active_response",
            )
        self._start_response(spec)

    def _on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        run: ResponseRun | None = None
        if isinstance(wanted, str) and wanted:
            run = self.response if self.response is not None and self.response.response_id == wanted else self._out_of_band.get(wanted)
        else:
            run = self.response or (next(iter(self._out_of_band.values())) if len(self._out_of_band) == 1 else None)
        if run is None:
            raise ClientEventError("Cancellation failed: no active response found", "response_cancel_not_active")
        self._cancel_run(run, "client_cancelled")

    def _cancel_response(self, reason: str) -> None:
        if self.response is not None:
            self._cancel_run(self.response, reason)

    @staticmethod
    def _cancel_run(run: ResponseRun, reason: str) -> None:
        if run.task is None or run.cancel_reason is not None:
            return
        run.cancel_reason = reason
        run.stop.set()
        run.task.cancel()

    def _start_response(self, spec: ResponseSpec) -> None:
        run = ResponseRun(response_id=_new_id("resp"), spec=spec)
        if spec.out_of_band:
            self._out_of_band[run.response_id] = run
        else:
            self.response = run
            self._idle_from_ms = None
        run.task = self._spawn(self._respond(run))

    def _release(self, run: ResponseRun) -> None:
        if self.response is run:
            self.response = None
        self._out_of_band.pop(run.response_id, None)

    def _response_body(self, run: ResponseRun, status: str, output: list[dict[str, Any]], reason: str | None = None) -> dict[str, Any]:
        spec = run.spec or self._default_spec()
        body: dict[str, Any] = {
            "id": run.response_id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": output,
            "output_modalities": list(spec.modalities),
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.session["audio"]["output"]["voice"]}},
            "conversation_id": None if spec.out_of_band else self.conversation_id,
            "max_output_tokens": spec.max_output_tokens if spec.max_output_tokens is not None else "inf",
            "metadata": spec.metadata,
            "usage": None,
        }
        if status in ("cancelled", "incomplete"):
            body["status_details"] = {"type": status, "reason": reason or "client_cancelled"}
        return body

    async def _brain_request(self, spec: ResponseSpec) -> BrainRequest:
        """The context the brain answers: the conversation (or `response.input`), transcripts awaited, with
        function calls and outputs as such, and the tools it may call."""
        stored_items = spec.input_items if spec.input_items is not None else [self.items[i] for i in list(self.order) if i in self.items]
        # Each output is told which call it answers, even when the call is outside `response.input`.
        calls = {c.call_id: c for c in (_call_of(s) for s in [*self.items.values(), *stored_items]) if c is not None}
        messages: list[ContextMessage] = []
        for stored in stored_items:
            kind = stored.wire.get("type", "message")
            if kind == "function_call":
                messages.append(ContextMessage(role="assistant", text="", call=_call_of(stored)))
                continue
            if kind == "function_call_output":
                call_id = stored.wire["call_id"]
                messages.append(ContextMessage(role="tool", text=stored.wire["output"],
                                               call=calls.get(call_id, ToolCall(name="", arguments="", call_id=call_id))))
                continue
            role = stored.wire.get("role", "user")
            text = stored.text
            if stored.transcript is not None:
                text = await stored.transcript
            messages.append(ContextMessage(role=role, text=text, images=list(stored.images)))
        request = BrainRequest(instructions=spec.instructions, messages=messages, idle=spec.idle, max_output_tokens=spec.max_output_tokens,
                               tools=spec.tools, tool_choice=spec.tool_choice)
        last = request.last_user()
        if last is not None and last.images and getattr(self.brain, "wants_image_notes", True):
            if spec.input_items is None:
                _, last.image_notes = await self._latest_user_input()
            else:
                loop = asyncio.get_running_loop()
                last.image_notes = [await loop.run_in_executor(self.models.executor, self._describe_image, url) for url in last.images]
        return request

    async def _respond(self, run: ResponseRun) -> None:
        """One response: each run of the brain's text becomes a message item (spoken or written) and each of
        its tool calls a function_call item, in the order the brain produces them."""
        spec = run.spec or self._default_spec()
        self.emit("response.created", response=self._response_body(run, "in_progress", []))
        output: list[dict[str, Any]] = []  # the response's items, in output order
        produced: list[StoredItem] = []  # their stored forms, for the usage
        messages: list[_Output] = []
        out: _Output | None = None  # the message item being produced
        status, reason, failure = "completed", None, None
        request: BrainRequest | None = None

        def open_message() -> _Output:
            used = sum(m.tokens for m in messages) + sum(math.ceil(len(s.text) / CHARS_PER_TOKEN) for s in produced
                                                          if s.wire["type"] == "function_call")
            budget = None if spec.max_output_tokens is None else max(0, spec.max_output_tokens - used)
            message = self._open_message(run, spec, len(output), budget)
            output.append(message.stored.wire)
            produced.append(message.stored)
            messages.append(message)
            return message

        try:
            request = await self._brain_request(spec)
            pieces = _Pieces(self.brain.stream(request))
            try:
                while (piece := await pieces.peek()) is not None:
                    if isinstance(piece, ToolCall):
                        stored = self._emit_function_call(run, spec, pieces.take(), len(output))
                        output.append(stored.wire)
                        produced.append(stored)
                    elif not piece.strip():
                        pieces.take()  # blank text before an item (e.g. between tool calls) starts no message
                    else:
                        out = open_message()
                        await self._generate(run, out, pieces.text())
                        self._finish_item(run, out, "completed", parts_done=True)
                        out = None
                if not output:  # the brain said nothing: an empty answer
                    out = open_message()
                    self._finish_item(run, out, "completed", parts_done=True)
                    out = None
            except _Budget:
                status, reason = "incomplete", "max_output_tokens"
            except BrainError as exc:
                status, failure = "failed", {"type": "server_error", "code": exc.code, "message": str(exc)}
                if out is None:  # failed before saying anything: the apology is the answer
                    out = open_message()
                out.budget = None
                await self._generate(run, out, _once(self.brain.apology(exc)))
            finally:
                await pieces.aclose()
            if out is not None:
                self._finish_item(run, out, "incomplete", parts_done=True)
                out = None
            self._release(run)
            body = self._response_body(run, status, output, reason) | {"usage": self._usage(request, produced)}
            if failure is not None:
                body["status_details"] = {"type": "failed", "error": failure}
            self.emit("response.done", response=body)
            self._after_response(run, body["usage"], sum(m.audio_ms for m in messages))
        except asyncio.CancelledError:
            reason = run.cancel_reason or "client_cancelled"
            if out is not None:
                self._finish_item(run, out, "incomplete", parts_done=False)
            self._release(run)
            body = self._response_body(run, "cancelled", output, reason)
            if request is not None:
                body["usage"] = self._usage(request, produced)
            self.emit("response.done", response=body)
            self._after_response(run, body["usage"], sum(m.audio_ms for m in messages))
        except Exception as exc:
            log.exception("response failed")
            if out is not None:
                self._finish_item(run, out, "incomplete", parts_done=False)
            self._release(run)
            body = self._response_body(run, "failed", output)
            body["status_details"] = {"type": "failed", "error": {"type": "server_error", "code": "engine_error", "message": str(exc)}}
            self.emit("response.done", response=body)

    def _announce_item(self, run: ResponseRun, spec: ResponseSpec, stored: StoredItem, output_index: int) -> None:
        """A new output item of the response; in the conversation too, unless the response is out of band."""
        item = stored.wire
        previous = None
        if not spec.out_of_band:
            previous = self.order[-1] if self.order else None
            self.items[item["id"]] = stored
            self.order.append(item["id"])
        self.emit("response.output_item.added", response_id=run.response_id, output_index=output_index, item=item)
        if not spec.out_of_band:
            self.emit("conversation.item.added", item=item, previous_item_id=previous)

    def _open_message(self, run: ResponseRun, spec: ResponseSpec, output_index: int, budget: int | None) -> "_Output":
        """An assistant message item of the response, announced with its (audio or text) content part."""
        item_id = _new_id("item")
        run.item_id = item_id
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        stored = StoredItem(wire=item, audio=np.zeros(0, dtype="<i2") if spec.audio_out else None)
        out = _Output(stored=stored, ids=dict(response_id=run.response_id, item_id=item_id, output_index=output_index, content_index=0),
                      audio_out=spec.audio_out, budget=budget)
        self._announce_item(run, spec, stored, output_index)
        self.emit("response.content_part.added", part={"type": "audio", "transcript": ""} if out.audio_out else {"type": "text", "text": ""},
                  **out.ids)
        return out

    def _emit_function_call(self, run: ResponseRun, spec: ResponseSpec, call: ToolCall, output_index: int) -> StoredItem:
        """A function_call item: announced, its arguments streamed in a few deltas, done; no audio. Emitted
        in one go (no await), so a cancel never leaves half a call in the conversation."""
        item_id = _new_id("item")
        call_id = _new_id("call")
        arguments = call.arguments or "{}"
        item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                "name": call.name, "call_id": call_id, "arguments": ""}
        stored = StoredItem(wire=item, text=arguments)
        self._announce_item(run, spec, stored, output_index)
        ids = dict(response_id=run.response_id, item_id=item_id, output_index=output_index, call_id=call_id)
        for delta in argument_deltas(arguments):
            self.emit("response.function_call_arguments.delta", delta=delta, **ids)
        self.emit("response.function_call_arguments.done", name=call.name, arguments=arguments, **ids)
        item["status"], item["arguments"] = "completed", arguments
        self.emit("response.output_item.done", response_id=run.response_id, output_index=output_index, item=item)
        if not spec.out_of_band:
            self.emit("conversation.item.done", item=item, previous_item_id=self._previous_of(item_id))
        log.info("the brain called %s(%s)", call.name, arguments if len(arguments) <= 200 else arguments[:200] + "...")
        return stored

    async def _generate(self, run: ResponseRun, out: "_Output", text_stream: AsyncIterator[str]) -> None:
        """Turn the brain's text into deltas: text as it comes, or speech sentence by sentence."""
        if not out.audio_out:
            async for piece in text_stream:
                self._emit_text(out, piece)
            return
        speed = (run.spec or self._default_spec()).speed
        sentences: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        async def pump() -> None:
            assembler = SentenceAssembler()
            try:
                async for piece in text_stream:
                    for sentence in assembler.feed(piece):
                        sentences.put_nowait(sentence)
                for sentence in assembler.flush():
                    sentences.put_nowait(sentence)
            except BrainError as exc:
                sentences.put_nowait(exc)
            except Exception as exc:  # noqa: BLE001 - a brain bug: report it like a brain failure
                log.exception("the brain failed")
                sentences.put_nowait(BrainError(f"The answer could not be produced: {type(exc).__name__}: {exc}", "brain_error"))
            finally:
                sentences.put_nowait(None)

        pump_task = asyncio.create_task(pump())
        try:
            while (sentence := await sentences.get()) is not None:
                if isinstance(sentence, BaseException):
                    raise sentence
                pcm = await self._prepared(sentence, speed)
                if pcm is None:
                    pcm = await self.models.synthesize_sentence(sentence, run.stop, speed)
                self._emit_sentence(out, sentence, pcm)
                await asyncio.sleep(0)  # let input events (a barge-in) in between sentences
        finally:
            if not pump_task.done():
                pump_task.cancel()
                try:
                    await pump_task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - its error was already reported or is moot
                    pass

    async def _prepared(self, sentence: str, speed: float) -> np.ndarray | None:
        """The speech of `sentence` at `speed` if it was prepared during the pause, else None."""
        task = self._prepared_speech.pop((sentence, speed), None)
        if task is None or task.cancelled():
            return None
        log.debug("speaking a first sentence prepared during the pause: %r", sentence)
        try:
            return await task
        except Exception:  # noqa: BLE001 - synthesize it again in the response
            return None

    def _bound_retained_audio(self, limit_ms: int | None = None) -> int:
        """Drop the audio of the oldest items beyond MAX_RETAINED_AUDIO_MS (the newest two items are never
        touched: the answer that may be truncated and the question being transcribed). Returns items dropped."""
        budget = ms_to_samples(MAX_RETAINED_AUDIO_MS if limit_ms is None else limit_ms)
        kept = 0
        dropped = 0
        for position, item_id in enumerate(reversed(self.order)):
            stored = self.items.get(item_id)
            if stored is None or stored.audio is None:
                continue
            kept += len(stored.audio)
            if kept > budget and position >= 2 and (stored.transcript is None or stored.transcript.done()):
                stored.audio = None
                stored.audio_dropped = True
                dropped += 1
        if dropped:
            log.debug("let go of the audio of %d old items", dropped)
        return dropped

    def _emit_text(self, out: "_Output", piece: str) -> None:
        if out.budget is not None:
            room = (out.budget - out.tokens) * CHARS_PER_TOKEN
            if room <= 0:
                raise _Budget()
            if len(piece) > room:
                piece = piece[:room]
        out.stored.text += piece
        out.tokens += math.ceil(len(piece) / CHARS_PER_TOKEN)
        self.emit("response.output_text.delta", delta=piece, **out.ids)
        if out.budget is not None and out.tokens >= out.budget:
            raise _Budget()

    def _emit_sentence(self, out: "_Output", sentence: str, pcm: np.ndarray) -> None:
        if out.budget is not None and out.tokens >= out.budget:
            raise _Budget()
        text = sentence if not out.stored.text else " " + sentence
        out.stored.text += text
        out.tokens += math.ceil(len(sentence) / CHARS_PER_TOKEN)
        self.emit("response.output_audio_transcript.delta", delta=text, **out.ids)
        step = ms_to_samples(DELTA_MS)
        for i in range(0, len(pcm), step):
            piece = pcm[i : i + step]
            out.audio_parts.append(piece)
            self.emit("response.output_audio.delta", delta=base64.b64encode(piece.astype("<i2").tobytes()).decode("ascii"), **out.ids)
            out.tokens += max(1, round(samples_to_ms(len(piece)) / AUDIO_MS_PER_TOKEN))
            if out.budget is not None and out.tokens >= out.budget and i + step < len(pcm):
                raise _Budget()
        out.stored.audio = np.concatenate(out.audio_parts)

    def _finish_item(self, run: ResponseRun, out: "_Output", status: str, parts_done: bool) -> None:
        stored = out.stored
        item = stored.wire
        if out.audio_out:
            stored.audio = np.concatenate(out.audio_parts) if out.audio_parts else np.zeros(0, dtype="<i2")
            self._bound_retained_audio()
        if parts_done:
            if out.audio_out:
                self.emit("response.output_audio.done", **out.ids)
                self.emit("response.output_audio_transcript.done", transcript=stored.text, **out.ids)
                part = {"type": "audio", "transcript": stored.text}
            else:
                self.emit("response.output_text.done", text=stored.text, **out.ids)
                part = {"type": "text", "text": stored.text}
            self.emit("response.content_part.done", part=part, **out.ids)
        item["status"] = status
        item["content"] = [{"type": "output_audio", "transcript": stored.text} if out.audio_out else {"type": "output_text", "text": stored.text}]
        self.emit("response.output_item.done", response_id=run.response_id, output_index=out.ids["output_index"], item=item)
        if run.spec is None or not run.spec.out_of_band:
            self.emit("conversation.item.done", item=item, previous_item_id=self._previous_of(item["id"]))

    def _after_response(self, run: ResponseRun, usage: dict[str, Any] | None, audio_ms: int) -> None:
        """rate_limits.updated, and the idle timeout starts counting once the answer has been played."""
        now = time.monotonic()
        self._usage_log = [(t, n) for t, n in self._usage_log if now - t < 60] + [(now, (usage or {}).get("total_tokens", 0))]
        reset = max(0.0, 60 - (now - self._usage_log[0][0]))
        self.emit("rate_limits.updated", rate_limits=[
            {"name": "requests", "limit": RATE_LIMIT_REQUESTS, "remaining": max(0, RATE_LIMIT_REQUESTS - len(self._usage_log)),
             "reset_seconds": round(reset, 3)},
            {"name": "tokens", "limit": RATE_LIMIT_TOKENS, "remaining": max(0, RATE_LIMIT_TOKENS - sum(n for _, n in self._usage_log)),
             "reset_seconds": round(reset, 3)},
        ])
        if run.spec is not None and not run.spec.out_of_band and run.cancel_reason is None and self._idle_timeout_ms():
            self._idle_from_ms = samples_to_ms(self.samples_in) + audio_ms

    async def _latest_user_input(self) -> tuple[str, list[str]]:
        """The text of the last user item (waiting for its transcription) and its images."""
        for item_id in reversed(self.order):
            stored = self.items[item_id]
            if stored.wire.get("role") == "user":
                text = await stored.transcript if stored.transcript is not None else stored.text
                # OCR is CPU work: on the engine's executor, never on the event loop.
                loop = asyncio.get_running_loop()
                return text, [await loop.run_in_executor(self.models.executor, self._describe_image, url) for url in stored.images]
        return "", []

    @staticmethod
    def _describe_image(data_url: str) -> str:
        from .vision import describe_data_url

        return describe_data_url(data_url)

    @staticmethod
    def _usage(request: BrainRequest | None, produced: list[StoredItem]) -> dict[str, Any]:
        """Approximate token counts, in the real API's shape, so cost meters have something to show (a
        function call's arguments count as output text)."""
        last = request.last_user() if request is not None else None
        in_text = max(1, len(last.text if last else "") // CHARS_PER_TOKEN)
        out_text = max(1, sum(len(s.text) for s in produced) // CHARS_PER_TOKEN)
        out_audio = sum(int(samples_to_ms(len(s.audio)) / AUDIO_MS_PER_TOKEN) for s in produced if s.audio is not None)
        return {
            "total_tokens": in_text + out_text + out_audio,
            "input_tokens": in_text,
            "output_tokens": out_text + out_audio,
            "input_token_details": {"text_tokens": in_text, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    _handlers: dict[str, Callable[["RealtimeConnection", dict[str, Any]], None]] = {
        "session.update": _on_session_update,
        "input_audio_buffer.append": _on_append,
        "input_audio_buffer.commit": _on_commit,
        "input_audio_buffer.clear": _on_clear,
        "conversation.item.create": _on_item_create,
        "conversation.item.retrieve": _on_item_retrieve,
        "conversation.item.delete": _on_item_delete,
        "conversation.item.truncate": _on_item_truncate,
        "response.create": _on_response_create,
        "response.cancel": _on_response_cancel,
    }


@dataclass
class _Output:
    """What a response has produced so far."""

    stored: StoredItem
    ids: dict[str, Any]
    audio_out: bool
    budget: int | None
    tokens: int = 0
    audio_parts: list[np.ndarray] = field(default_factory=list)

    @property
    def audio_ms(self) -> int:
        return samples_to_ms(sum(len(p) for p in self.audio_parts))


async def _once(text: str) -> AsyncIterator[str]:
    yield text


class _Pieces:
    """The brain's stream with one piece of lookahead: before announcing an output item, a response must
    know whether the brain goes on with words or calls a tool."""

    def __init__(self, stream: AsyncIterator[str | ToolCall]) -> None:
        self._stream = stream
        self._next: str | ToolCall | None = None
        self._ended = False

    async def peek(self) -> str | ToolCall | None:
        """The next piece, not taken; None at the end of the stream. A brain bug is a BrainError (heard as
        the brain's apology), like a brain's own failure."""
        if self._next is None and not self._ended:
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._ended = True
                return None
            except BrainError:
                raise
            except Exception as exc:
                log.exception("the brain failed")
                raise BrainError(f"The answer could not be produced: {type(exc).__name__}: {exc}", "brain_error") from exc
            if not isinstance(piece, (str, ToolCall)):
                raise BrainError(f"The brain produced a {type(piece).__name__}, neither text nor a tool call.", "brain_error")
            self._next = piece
        return self._next

    def take(self) -> Any:
        """The peeked piece, taken."""
        piece, self._next = self._next, None
        return piece

    async def text(self) -> AsyncIterator[str]:
        """The run of text pieces up to the next tool call or the end of the stream."""
        while isinstance(await self.peek(), str):
            yield self.take()

    async def aclose(self) -> None:
        """Let the brain stop now (an LLM request closes its stream) rather than when collected."""
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


def _call_of(stored: StoredItem) -> ToolCall | None:
    """A function_call item as the brain sees it."""
    wire = stored.wire
    if wire.get("type") != "function_call":
        return None
    return ToolCall(name=wire["name"], arguments=wire["arguments"], call_id=wire["call_id"])


def _decode_pcm(audio: Any, param: str, required: bool) -> np.ndarray | None:
    if audio is None:
        if required:
            raise ClientEventError(f"Missing required parameter: '{param}' (or a transcript).", "missing_required_parameter", param)
        return None
    if not isinstance(audio, str):
        raise ClientEventError(f"Invalid type for '{param}': expected base64 PCM16.", "invalid_type", param)
    try:
        raw = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ClientEventError(f"Invalid '{param}': not valid base64.", "invalid_value", param) from None
    if len(raw) % 2:
        raise ClientEventError(f"Invalid '{param}': PCM16 needs an even number of bytes.", "invalid_value", param)
    return np.frombuffer(raw, dtype="<i2").copy()


_BRIEF_KEYS = ("item_id", "response_id", "previous_item_id", "audio_start_ms", "audio_end_ms", "content_index")


def _brief(body: dict[str, Any]) -> str:
    """A short, secret-free summary of an event for the one-line debug log (no audio, no text)."""
    parts = [f"{k}={body[k]}" for k in _BRIEF_KEYS if body.get(k) is not None]
    for key in ("response", "item"):
        value = body.get(key)
        if isinstance(value, dict):
            parts.append(f"{key}={value.get('id')}" + (f" status={value['status']}" if value.get("status") else ""))
    error = body.get("error")
    if isinstance(error, dict):
        parts.append(f"code={error.get('code')}")
    for key in ("audio", "delta"):
        if isinstance(body.get(key), str):
            parts.append(f"{key}={len(body[key])}ch")
    return " ".join(parts)
