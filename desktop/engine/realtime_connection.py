"""One client connection to the embedded engine: the GA Realtime protocol over a WebSocket.

Implements the subset a desktop client uses with the real API's semantics: session lifecycle, the input
audio buffer with server VAD (Silero), transcription (Whisper), conversation items, responses with streamed
speech (Piper), barge-in (cancel with `turn_detected`), truncation, and `error` events naming the
offending client event. A bad client event gets an `error`, never a crash or a dropped connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import numpy as np

from ..core.pcm import PROTOCOL_RATE, ms_to_samples, samples_to_ms
from ..core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter
from .responder import Responder
from .session_state import SessionUpdateError, default_session, merge_session_update, vad_parameters
from .speech_models import SpeechModels

log = logging.getLogger(__name__)

#: Audio deltas are sent in pieces of this length, as fast as they are synthesized.
DELTA_MS = 100
MIN_COMMIT_MS = 100
#: Manual-mode input is capped (15 minutes) so a forgotten push-to-talk cannot eat memory.
MAX_BUFFER_MS = 15 * 60 * 1000


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


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


@dataclass
class ResponseRun:
    response_id: str
    task: asyncio.Task | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str | None = None
    item_id: str | None = None


class RealtimeConnection:
    def __init__(self, send_text: Callable[[str], Awaitable[None]], models: SpeechModels, responder: Responder | None = None) -> None:
        self._send_text = send_text
        self.models = models
        self.responder = responder or Responder()
        self.session = default_session(_new_id("sess"))
        self._event_counter = itertools.count(1)
        self._out: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
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
        self.response: ResponseRun | None = None
        self._tasks: set[asyncio.Task] = set()
        self._configure_vad()

    # ------------------------------------------------------------------ plumbing
    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        self.emit("session.created", session=self.session)

    async def close(self) -> None:
        if self.response is not None and self.response.task is not None:
            self.response.stop.set()
            self.response.task.cancel()
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
            event = await self._out.get()
            if event is None:
                return
            try:
                await self._send_text(json.dumps(event))
            except Exception:  # the socket closed: nothing more to send
                log.debug("send failed; connection closing")
                return

    def emit(self, type_: str, **body: Any) -> None:
        event = {"type": type_, "event_id": f"event_{next(self._event_counter):06d}", **body}
        if log.isEnabledFor(logging.DEBUG):
            log.debug("-> %s", type_)
        self._out.put_nowait(event)

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
            handler = self._handlers.get(kind)
            if handler is None:
                raise ClientEventError(f"Invalid value: '{kind}'. Unsupported event type.", "invalid_value", "type")
            if log.isEnabledFor(logging.DEBUG) and kind != "input_audio_buffer.append":
                log.debug("<- %s", kind)
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
            self._segmenter = None
            return
        if self._vad is None:
            self._vad = self.models.new_vad()
        if self._segmenter is None:
            self._segmenter = SpeechSegmenter(*params, frame_ms=self._vad.frame_ms)
            # The segmenter's clock starts now: align it with the session input clock.
            self._segmenter.frames = int(samples_to_ms(self.samples_in) / self._vad.frame_ms)
        else:
            self._segmenter.configure(*params)

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
            if self._speech_item_id is None:
                self._trim_buffer()
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

    def _speech_started(self, audio_start_ms: int) -> None:
        item_id = _new_id("item")
        self._speech_item_id = item_id
        self._speech_start_ms = audio_start_ms
        self.emit("input_audio_buffer.speech_started", audio_start_ms=audio_start_ms, item_id=item_id)
        td = self.session["audio"]["input"]["turn_detection"] or {}
        if self.response is not None and td.get("interrupt_response", True):
            self._cancel_response("turn_detected")

    def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item_id or _new_id("item")
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=audio_end_ms, item_id=item_id)
        start = max(ms_to_samples(self._speech_start_ms), self._buffer_start_sample)
        audio = self._buffered()[start - self._buffer_start_sample :]
        self._speech_item_id = None
        self._commit(item_id, audio)
        td = self.session["audio"]["input"]["turn_detection"] or {}
        if td.get("create_response", True) and self.response is None:
            self._start_response({})

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
        if self._segmenter is not None:
            self._segmenter.reset()
        self._commit(item_id, audio)

    def _commit(self, item_id: str, audio: np.ndarray) -> None:
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
        self._add_item(item_id, stored, previous)
        self.emit("conversation.item.done", item=item, previous_item_id=previous)
        self._spawn(self._transcribe(item_id, stored, emit=transcription is not None))

    async def _transcribe(self, item_id: str, stored: StoredItem, emit: bool) -> None:
        assert stored.transcript is not None and stored.audio is not None
        t0 = time.perf_counter()
        try:
            text = await self.models.transcribe(stored.audio)
        except Exception as exc:
            if not stored.transcript.done():
                stored.transcript.set_result("")
            if emit:
                self.emit(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item_id,
                    content_index=0,
                    error={"type": "transcription_error", "code": "transcription_failed", "message": str(exc), "param": None},
                )
            return
        stored.text = text
        stored.wire["content"][0]["transcript"] = text
        if not stored.transcript.done():
            stored.transcript.set_result(text)
        log.info("transcribed %d ms in %.2f s: %r", samples_to_ms(len(stored.audio)), time.perf_counter() - t0, text)
        if emit:
            self.emit(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=text,
                usage={"type": "duration", "seconds": round(len(stored.audio) / PROTOCOL_RATE, 3)},
            )

    def _on_clear(self, event: dict[str, Any]) -> None:
        self._buffer = []
        self._buffer_start_sample = self.samples_in
        self._speech_item_id = None
        if self._segmenter is not None:
            self._segmenter.reset()
        self.emit("input_audio_buffer.cleared")

    # conversation.item.*
    def _add_item(self, item_id: str, stored: StoredItem, previous: str | None) -> None:
        self.items[item_id] = stored
        if previous is None:
            self.order.insert(0, item_id)
        else:
            self.order.insert(self.order.index(previous) + 1, item_id)
        self.emit("conversation.item.added", item=stored.wire, previous_item_id=previous)

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
        if item.get("type", "message") != "message":
            raise ClientEventError("This engine accepts only message items.", "invalid_value", "item.type")
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            raise ClientEventError("Invalid value for 'item.role': expected user, assistant or system.", "invalid_value", "item.role")
        content = item.get("content")
        if not isinstance(content, list) or not content:
            raise ClientEventError("Missing required parameter: 'item.content'.", "missing_required_parameter", "item.content")
        allowed = {"user": {"input_text", "input_audio", "input_image"}, "system": {"input_text"}, "assistant": {"output_text", "output_audio", "text"}}[role]
        texts: list[str] = []
        images: list[str] = []
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
        item_id = item.get("id") if isinstance(item.get("id"), str) else _new_id("item")
        if item_id in self.items:
            raise ClientEventError(f"Item with id '{item_id}' already exists.", "item_already_exists", "item.id")
        wire = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": role,
            "status": "completed",
            "content": [
                {k: v for k, v in p.items() if k != "image_url"} | ({"image_url": "(elided)"} if p["type"] == "input_image" else {})
                for p in content
            ],
        }
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        fut.set_result(" ".join(texts))
        stored = StoredItem(wire=wire, transcript=fut, text=" ".join(texts), images=images)
        self._add_item(item_id, stored, previous)
        self.emit("conversation.item.done", item=wire, previous_item_id=previous)

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
    def _on_response_create(self, event: dict[str, Any]) -> None:
        if self.response is not None:
            raise ClientEventError(
                f"Conversation already has an active response in progress: {self.response.response_id}. "
                "Wait until the response is finished before creating a new one.",
                "conversation_already_has_active_response",
            )
        options = event.get("response") or {}
        if not isinstance(options, dict):
            raise ClientEventError("Invalid type for 'response': expected an object.", "invalid_type", "response")
        self._start_response(options)

    def _on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.response is None or (isinstance(wanted, str) and wanted != self.response.response_id):
            raise ClientEventError("Cancellation failed: no active response found", "response_cancel_not_active")
        self._cancel_response("client_cancelled")

    def _cancel_response(self, reason: str) -> None:
        run = self.response
        if run is None or run.task is None or run.cancel_reason is not None:
            return
        run.cancel_reason = reason
        run.stop.set()
        run.task.cancel()

    def _start_response(self, options: dict[str, Any]) -> None:
        run = ResponseRun(response_id=_new_id("resp"))
        self.response = run
        run.task = self._spawn(self._respond(run, options))

    def _response_body(self, run: ResponseRun, status: str, output: list[dict[str, Any]], reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": run.response_id,
            "object": "realtime.response",
            "status": status,
            "status_details": None,
            "output": output,
            "output_modalities": list(self.session["output_modalities"]),
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.session["audio"]["output"]["voice"]}},
            "conversation_id": None,
            "max_output_tokens": "inf",
            "usage": None,
        }
        if status == "cancelled":
            body["status_details"] = {"type": "cancelled", "reason": reason or "client_cancelled"}
        return body

    async def _respond(self, run: ResponseRun, options: dict[str, Any]) -> None:
        modalities = options.get("output_modalities") or self.session["output_modalities"]
        audio_out = "audio" in modalities
        self.emit("response.created", response=self._response_body(run, "in_progress", []))
        item_id = _new_id("item")
        run.item_id = item_id
        item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        stored = StoredItem(wire=item, audio=np.zeros(0, dtype="<i2") if audio_out else None)
        started_item = False
        spoken: list[str] = []
        audio_parts: list[np.ndarray] = []
        try:
            user_text, images = await self._latest_user_input()
            answer = self.responder.reply(user_text, images=images)
            previous = self.order[-1] if self.order else None
            self.items[item_id] = stored
            self.order.append(item_id)
            started_item = True
            self.emit("response.output_item.added", response_id=run.response_id, output_index=0, item=item)
            self.emit("conversation.item.added", item=item, previous_item_id=previous)
            part_type = "audio" if audio_out else "text"
            self.emit("response.content_part.added", response_id=run.response_id, item_id=item_id, output_index=0, content_index=0,
                      part={"type": part_type, "transcript": ""} if audio_out else {"type": "text", "text": ""})
            ids = dict(response_id=run.response_id, item_id=item_id, output_index=0, content_index=0)
            if audio_out:
                queue = self.models.synthesize_stream(answer, run.stop)
                await self.models.wait_ready()
                while (chunk := await queue.get()) is not None:
                    sentence, pcm = chunk
                    text = sentence if not spoken else " " + sentence
                    spoken.append(sentence)
                    stored.text += text
                    self.emit("response.output_audio_transcript.delta", delta=text, **ids)
                    step = ms_to_samples(DELTA_MS)
                    for i in range(0, len(pcm), step):
                        piece = pcm[i : i + step]
                        audio_parts.append(piece)
                        self.emit("response.output_audio.delta", delta=base64.b64encode(piece.astype("<i2").tobytes()).decode("ascii"), **ids)
                    stored.audio = np.concatenate(audio_parts) if audio_parts else stored.audio
                    await asyncio.sleep(0)  # let input events (a barge-in) in between sentences
                self.emit("response.output_audio.done", **ids)
                self.emit("response.output_audio_transcript.done", transcript=stored.text, **ids)
                part = {"type": "audio", "transcript": stored.text}
            else:
                stored.text = answer
                self.emit("response.output_text.delta", delta=answer, **ids)
                self.emit("response.output_text.done", text=answer, **ids)
                part = {"type": "text", "text": answer}
            self.emit("response.content_part.done", part=part, **ids)
            item["status"] = "completed"
            item["content"] = [{"type": "output_audio", "transcript": stored.text} if audio_out else {"type": "output_text", "text": stored.text}]
            self.emit("response.output_item.done", response_id=run.response_id, output_index=0, item=item)
            self.emit("conversation.item.done", item=item, previous_item_id=None)
            self.response = None
            self.emit("response.done", response=self._response_body(run, "completed", [item]) | {"usage": self._usage(user_text, stored)})
        except asyncio.CancelledError:
            reason = run.cancel_reason or "client_cancelled"
            output: list[dict[str, Any]] = []
            if started_item:
                stored.audio = np.concatenate(audio_parts) if audio_parts else stored.audio
                item["status"] = "incomplete"
                item["content"] = [{"type": "output_audio", "transcript": stored.text} if audio_out else {"type": "output_text", "text": stored.text}]
                self.emit("response.output_item.done", response_id=run.response_id, output_index=0, item=item)
                self.emit("conversation.item.done", item=item, previous_item_id=None)
                output = [item]
            if self.response is run:
                self.response = None
            self.emit("response.done", response=self._response_body(run, "cancelled", output, reason))
        except Exception as exc:
            log.exception("response failed")
            if self.response is run:
                self.response = None
            body = self._response_body(run, "failed", [])
            body["status_details"] = {"type": "failed", "error": {"type": "server_error", "code": "engine_error", "message": str(exc)}}
            self.emit("response.done", response=body)

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
    def _usage(user_text: str, stored: StoredItem) -> dict[str, Any]:
        # Approximate token counts, in the real API's shape, so cost meters have something to show.
        in_text = max(1, len(user_text) // 4)
        out_text = max(1, len(stored.text) // 4)
        out_audio = int(samples_to_ms(len(stored.audio)) / 50) if stored.audio is not None else 0
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
