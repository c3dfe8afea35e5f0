"""The engine's second dialect: Google's Gemini Live (BidiGenerateContent) over the same WebSocket server.

A connection on GEMINI_LIVE_PATH (or its v1alpha twin) speaks the Gemini Live wire protocol: JSON text
messages with the field names of the `google-genai` SDK (`types.LiveClientMessage` in,
`types.LiveServerMessage` out). `GeminiLiveSession` is a translator around one `RealtimeConnection`: each
Gemini client message becomes OpenAI Realtime client events fed to `handle_message`, and each OpenAI server
event the connection sends becomes Gemini server messages. The connection does the real work (VAD, ASR,
brain, TTS); this module only maps one dialect onto the other. docs/engine-gemini.md has the mapping table.

Field names are read as protobuf JSON parsers read them: lowerCamelCase or the original snake_case (the
SDK itself sends a mix, e.g. `realtime_input` and `mime_type`), and base64 in either alphabet. Errors are
reported the Gemini way: the socket is closed with code 1007 (the client's message was wrong) or 1011
(the engine failed) and the reason as the close reason.

Timing follows Gemini's model of realtime playback: the engine synthesizes faster than realtime, so the
translator keeps a playback clock (the audio sent, as if played from the moment it was sent).
`generationComplete` is sent when the answer is produced, `turnComplete` when its audio would have finished
playing; speech (or a new text turn) before then is an interruption (`interrupted: true`), and the engine's
copy of the answer is truncated to what was heard, as an OpenAI client would do with `conversation.item.truncate`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import numpy as np
import soxr

from ..core.pcm import PROTOCOL_RATE
from ..providers import GEMINI_LIVE_PATH
from .brain import Brain
from .realtime_connection import MAX_OUTPUT_TOKENS_LIMIT, MIN_COMMIT_MS, RealtimeConnection
from .speech_models import SpeechModels

log = logging.getLogger(__name__)

#: The paths of this dialect: the SDK's v1beta (GEMINI_LIVE_PATH) and v1alpha (`api_version="v1alpha"`).
GEMINI_LIVE_PATHS = (GEMINI_LIVE_PATH, GEMINI_LIVE_PATH.replace(".v1beta.", ".v1alpha."))
#: What Gemini Live assumes for input audio without `rate=`, and what it sends.
DEFAULT_INPUT_RATE = 16000
OUTPUT_MIME = f"audio/pcm;rate={PROTOCOL_RATE}"
#: Close codes: the client sent something invalid / the engine failed / a normal end (goAway).
CLOSE_INVALID = 1007
CLOSE_SERVER_ERROR = 1011
CLOSE_NORMAL = 1000
#: A close reason is at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123
#: startOfSpeechSensitivity -> the server VAD threshold (speech probability that starts a turn): HIGH
#: starts on fainter speech, LOW needs clearer speech. Unspecified: the engine's default 0.5.
START_SENSITIVITY_THRESHOLD = {"START_SENSITIVITY_HIGH": 0.35, "START_SENSITIVITY_LOW": 0.65}
#: endOfSpeechSensitivity -> silence that ends a turn, when silenceDurationMs is not given: HIGH ends
#: turns sooner, LOW waits longer. Unspecified: the engine's default 500 ms.
END_SENSITIVITY_SILENCE_MS = {"END_SENSITIVITY_HIGH": 300, "END_SENSITIVITY_LOW": 1000}
DEFAULT_SILENCE_MS = 500
DEFAULT_PREFIX_PADDING_MS = 300
#: goAway warns this long before the engine closes a session whose time is up.
GO_AWAY_NOTICE_S = 5
#: Resumption handles live this long after they were issued, for at most this many sessions.
RESUMPTION_TTL_S = 600
RESUMPTION_MAX_SESSIONS = 64

_MESSAGE_KINDS = ("setup", "clientContent", "realtimeInput", "toolResponse", "contextUpdate")
_REALTIME_KEYS = ("mediaChunks", "audio", "audioStreamEnd", "video", "text", "activityStart", "activityEnd")
_MODALITIES = {"AUDIO": "audio", "TEXT": "text"}
#: Tools other than function declarations (grounding with Google Search, code execution...) are accepted
#: and ignored: the engine is offline.
_IGNORED_TOOLS = ("googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "computerUse", "fileSearch",
                  "googleMaps", "retrieval", "enterpriseWebSearch", "mcpServers")


class GeminiClientError(Exception):
    """A client message Gemini would refuse: the socket is closed with `code` and the message as reason."""

    def __init__(self, message: str, code: int = CLOSE_INVALID) -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- wire helpers


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _fields(obj: Any, where: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A message object with its keys in lowerCamelCase (snake_case accepted, like protobuf JSON); with
    `allowed`, an unknown key is refused as Gemini refuses it."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise GeminiClientError(f"Invalid value at '{where}': expected an object.")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _camel(key)
        if allowed is not None and name not in allowed:
            raise GeminiClientError(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.")
        out[name] = value
    return out


def _b64decode(data: Any, where: str) -> bytes:
    """Base64 in the standard or the URL-safe alphabet (the SDK sends the latter), padding optional."""
    if not isinstance(data, str):
        raise GeminiClientError(f"Invalid value at '{where}': expected base64 text.")
    text = data.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise GeminiClientError(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed.") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


_RATE = re.compile(r"(?:^|;)\s*rate\s*=\s*(\d+)\s*(?:;|$)")


def pcm_rate(mime_type: str) -> int | None:
    """The sample rate of a `audio/pcm[;rate=N]` mime type (16 kHz when no rate is given); None when the
    mime type is not raw PCM."""
    kind = mime_type.split(";", 1)[0].strip().lower()
    if kind != "audio/pcm":
        return None
    match = _RATE.search(mime_type.lower())
    return int(match.group(1)) if match else DEFAULT_INPUT_RATE


def _image_url(mime_type: str, raw: bytes) -> str:
    return f"data:{mime_type.split(';', 1)[0].strip().lower()};base64,{_b64(raw)}"


def _text_of(content: Any, where: str) -> str:
    """The text of a Content (systemInstruction): its text parts joined; a plain string is accepted too."""
    if isinstance(content, str):
        return content
    body = _fields(content, where)
    parts = body.get("parts") or []
    if not isinstance(parts, list):
        raise GeminiClientError(f"Invalid value at '{where}.parts': expected a list.")
    texts = [p.get("text") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return "\n".join(texts)


def json_schema(schema: Any) -> Any:
    """A Gemini `Schema` (OpenAPI subset: upper-case types, `nullable`) as the JSON schema the engine's
    function tools use. Property names are kept as they are."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    nullable = False
    for key, value in schema.items():
        name = _camel(key)
        if name == "type":
            if isinstance(value, str) and value.upper() != "TYPE_UNSPECIFIED":
                out["type"] = value.lower()
        elif name == "properties" and isinstance(value, dict):
            out["properties"] = {prop: json_schema(sub) for prop, sub in value.items()}
        elif name in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[name] = json_schema(value)
        elif name in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[name] = [json_schema(sub) for sub in value]
        elif name == "nullable":
            nullable = bool(value)
        elif name == "propertyOrdering":
            continue
        elif name == "example":
            out["examples"] = [value]
        else:
            out[name] = value
    if nullable and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def function_tools(tools: Any, where: str) -> list[dict[str, Any]]:
    """`setup.tools` (Tool objects) as the engine's function tools."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise GeminiClientError(f"Invalid value at '{where}': expected a list of tools.")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        body = _fields(tool, f"{where}[{i}]")
        for key in body:
            if key != "functionDeclarations":
                if key not in _IGNORED_TOOLS:
                    raise GeminiClientError(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}[{i}]'.")
                log.info("Gemini tool %s is not available offline: ignored", key)
        declarations = body.get("functionDeclarations") or []
        if not isinstance(declarations, list):
            raise GeminiClientError(f"Invalid value at '{where}[{i}].function_declarations': expected a list.")
        for j, declaration in enumerate(declarations):
            d = _fields(declaration, f"{where}[{i}].function_declarations[{j}]")
            name = d.get("name")
            if not isinstance(name, str) or not name:
                raise GeminiClientError(f"{where}[{i}].function_declarations[{j}].name: a function needs a name.")
            entry: dict[str, Any] = {"type": "function", "name": name}
            if isinstance(d.get("description"), str):
                entry["description"] = d["description"]
            if d.get("parametersJsonSchema") is not None:
                entry["parameters"] = d["parametersJsonSchema"]
            elif d.get("parameters") is not None:
                entry["parameters"] = json_schema(d["parameters"])
            out.append(entry)
    return out


def usage_metadata(usage: dict[str, Any]) -> dict[str, Any]:
    """The engine's (approximate) usage, in the real API's shape, as Gemini's UsageMetadata."""
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}

    def details(counts: list[tuple[str, int]]) -> list[dict[str, Any]]:
        listed = [{"modality": m, "tokenCount": int(n)} for m, n in counts if n]
        return listed or [{"modality": "TEXT", "tokenCount": 0}]

    return {
        "promptTokenCount": int(usage.get("input_tokens", 0)),
        "responseTokenCount": int(usage.get("output_tokens", 0)),
        "totalTokenCount": int(usage.get("total_tokens", 0)),
        "promptTokensDetails": details([("TEXT", inp.get("text_tokens", 0)), ("AUDIO", inp.get("audio_tokens", 0))]),
        "responseTokensDetails": details([("TEXT", out.get("text_tokens", 0)), ("AUDIO", out.get("audio_tokens", 0))]),
    }


def _add_usage(total: dict[str, Any], usage: dict[str, Any] | None) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, dict):
            _add_usage(total.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


def _reason(text: str) -> str:
    """A close reason cut to the 123 bytes a close frame can carry, at a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_REASON_BYTES:
        return text
    return raw[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


# ----------------------------------------------------------------------------- session resumption


@dataclass
class _Resumable:
    lineage: str
    items: list[dict[str, Any]]
    expires: float


class ResumptionStore:
    """Conversations kept for `sessionResumption` handles, in the engine server (shared by connections).

    A session (a "lineage", continued across reconnections) holds one live handle, its newest: each
    update replaces the previous one. Handles expire `ttl_s` after they were issued; at most `max_sessions`
    sessions are kept (the oldest handle goes first)."""

    def __init__(self, ttl_s: float = RESUMPTION_TTL_S, max_sessions: int = RESUMPTION_MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.max_sessions, self._clock = ttl_s, max_sessions, clock
        self._handles: OrderedDict[str, _Resumable] = OrderedDict()
        self._by_lineage: dict[str, str] = {}

    def __len__(self) -> int:
        self._expire()
        return len(self._handles)

    def _expire(self) -> None:
        now = self._clock()
        for handle in [h for h, r in self._handles.items() if r.expires <= now]:
            self._drop(handle)

    def _drop(self, handle: str) -> None:
        entry = self._handles.pop(handle, None)
        if entry is not None and self._by_lineage.get(entry.lineage) == handle:
            del self._by_lineage[entry.lineage]

    def put(self, lineage: str, items: list[dict[str, Any]]) -> str:
        """A new handle for `lineage`'s conversation `items` (its previous handle is let go)."""
        self._expire()
        previous = self._by_lineage.get(lineage)
        if previous is not None:
            self._drop(previous)
        handle = secrets.token_urlsafe(24)
        self._handles[handle] = _Resumable(lineage, items, self._clock() + self.ttl_s)
        self._by_lineage[lineage] = handle
        while len(self._handles) > self.max_sessions:
            self._drop(next(iter(self._handles)))
        return handle

    def get(self, handle: str) -> _Resumable | None:
        self._expire()
        return self._handles.get(handle)


# ----------------------------------------------------------------------------- the translator


@dataclass
class _ModelTurn:
    """The model's turn as the Gemini client sees it: one engine response, or several when it calls tools
    (the turn goes on after the tool responses) until `turnComplete`."""

    response_id: str | None = None
    generating: bool = True
    awaiting_tools: bool = False
    interrupted: bool = False
    #: The last audio message item and how much of it was sent (ms), for truncation at an interruption.
    audio_item: str | None = None
    audio_item_ms: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)
    finish_timer: asyncio.TimerHandle | None = None


@dataclass
class _Config:
    audio_out: bool = True
    input_transcription: bool = False
    output_transcription: bool = False
    manual: bool = False
    interrupts: bool = True
    all_input: bool = False
    resumption: bool = False
    transparent: bool = False


class GeminiLiveSession:
    """One Gemini Live client connection: a translator around a RealtimeConnection.

    `send(text)` sends a text message to the client; `close(code, reason)` closes its socket."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        models: SpeechModels,
        brain: Brain | None = None,
        speculate: bool = True,
        store: ResumptionStore | None = None,
        session_seconds: float | None = None,
    ) -> None:
        self._send, self._close_socket = send, close
        self.conn = RealtimeConnection(self._from_engine, models, brain=brain, speculate=speculate)
        self.store = store if store is not None else ResumptionStore()
        self.session_seconds = session_seconds
        self.config = _Config()
        self._out: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._timers: list[asyncio.Task] = []
        self._closing = False
        self._setup_seen = False
        self._setup_pending = False
        self._ids = itertools.count(1)
        #: Client messages handled so far (for lastConsumedClientMessageIndex).
        self._consumed = 0
        self._lineage = secrets.token_hex(8)
        # Input
        self._resampler: tuple[int, soxr.ResampleStream] | None = None
        self._in_activity = False
        self._activity_samples = 0
        self._frame: str | None = None
        # Output
        self._turn: _ModelTurn | None = None
        self._play_end = 0.0
        self._pending_calls: dict[str, str] = {}
        self._cancelled_calls: set[str] = set()
        self._want_response = False

    # ------------------------------------------------------------------ plumbing
    async def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        await self.conn.start()

    async def close(self) -> None:
        self._closing = True
        for task in self._timers:
            task.cancel()
        if self._turn is not None and self._turn.finish_timer is not None:
            self._turn.finish_timer.cancel()
        await self.conn.close()
        self._out.put_nowait(None)
        if self._writer is not None:
            try:
                await asyncio.wait_for(self._writer, 2)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass

    async def _write_loop(self) -> None:
        while (entry := await self._out.get()) is not None:
            kind, payload = entry
            try:
                if kind == "send":
                    await self._send(payload)
                else:
                    code, reason = payload
                    log.info("closing the Gemini connection: %d %s", code, reason)
                    await self._close_socket(code, _reason(reason))
                    return
            except Exception:  # noqa: BLE001 - the socket closed: nothing more to send
                log.debug("send failed; connection closing")
                return

    def _put(self, message: dict[str, Any]) -> None:
        if not self._closing:
            self._out.put_nowait(("send", json.dumps(message)))

    def _fail(self, code: int, reason: str) -> None:
        if not self._closing:
            self._closing = True
            self._out.put_nowait(("close", (code, reason)))

    async def _engine(self, type_: str, **body: Any) -> None:
        await self.conn.handle_message(json.dumps({"type": type_, "event_id": f"gemini_{next(self._ids)}", **body}))

    # ------------------------------------------------------------------ client messages
    async def handle_message(self, message: str | bytes) -> None:
        if self._closing:
            return
        try:
            try:
                data = json.loads(message)
            except (ValueError, UnicodeDecodeError):
                raise GeminiClientError("Invalid JSON payload received: the message is not JSON.") from None
            body = _fields(data, "message", _MESSAGE_KINDS)
            if len(body) != 1:
                raise GeminiClientError("Invalid message: exactly one of setup, clientContent, realtimeInput, toolResponse "
                                        "or contextUpdate must be set.")
            (kind, value), = body.items()
            if not self._setup_seen and kind != "setup":
                raise GeminiClientError(f"The first message must be setup, not {kind}.")
            if kind == "setup":
                await self._on_setup(value)
            elif kind == "realtimeInput":
                await self._on_realtime_input(_fields(value, "realtime_input", _REALTIME_KEYS))
            elif kind == "clientContent":
                await self._on_client_content(_fields(value, "client_content", ("turns", "turnComplete")))
            elif kind == "toolResponse":
                await self._on_tool_response(_fields(value, "tool_response", ("functionResponses",)))
            else:
                await self._on_context_update(_fields(value, "context_update", ("systemInstruction", "tools")))
            self._consumed += 1
        except GeminiClientError as exc:
            self._fail(exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - an engine bug: Gemini reports it as an internal error
            log.exception("error translating a Gemini client message")
            self._fail(CLOSE_SERVER_ERROR, f"Internal error: {type(exc).__name__}")

    # setup
    async def _on_setup(self, value: Any) -> None:
        if self._setup_seen:
            raise GeminiClientError("setup must be sent once, as the first message.")
        self._setup_seen = True
        setup = _fields(value, "setup")
        config = _fields(setup.get("generationConfig"), "setup.generation_config")
        session: dict[str, Any] = {"type": "realtime"}
        modalities = config.get("responseModalities") or ["AUDIO"]
        if not isinstance(modalities, list) or any(m not in _MODALITIES for m in modalities):
            raise GeminiClientError(f"Invalid value at 'setup.generation_config.response_modalities': {modalities!r} "
                                    "(the engine answers with AUDIO or TEXT).")
        self.config.audio_out = "AUDIO" in modalities
        session["output_modalities"] = ["audio" if self.config.audio_out else "text"]
        limit = config.get("maxOutputTokens")
        if limit is not None:
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise GeminiClientError("Invalid value at 'setup.generation_config.max_output_tokens': expected a positive integer.")
            session["max_output_tokens"] = min(limit, MAX_OUTPUT_TOKENS_LIMIT)
        if setup.get("systemInstruction") is not None:
            session["instructions"] = _text_of(setup["systemInstruction"], "setup.system_instruction")
        session["tools"] = function_tools(setup.get("tools"), "setup.tools")
        self.config.input_transcription = setup.get("inputAudioTranscription") is not None
        self.config.output_transcription = setup.get("outputAudioTranscription") is not None
        audio_in: dict[str, Any] = {
            "transcription": {"model": "whisper-1"} if self.config.input_transcription else None,
            "turn_detection": self._turn_detection(_fields(setup.get("realtimeInputConfig"), "setup.realtime_input_config")),
        }
        session["audio"] = {"input": audio_in}
        voice = _fields(_fields(_fields(config.get("speechConfig"), "speech_config").get("voiceConfig"), "voice_config")
                        .get("prebuiltVoiceConfig"), "prebuilt_voice_config").get("voiceName")
        if isinstance(voice, str):
            session["audio"]["output"] = {"voice": voice}  # the engine has one voice; it reports its own
        resumption = setup.get("sessionResumption")
        if resumption is not None:
            body = _fields(resumption, "setup.session_resumption", ("handle", "transparent"))
            self.config.resumption = True
            self.config.transparent = bool(body.get("transparent"))
            handle = body.get("handle")
            if handle:
                await self._restore(handle)
        # contextWindowCompression, temperature, topP/topK, thinking, proactivity, affective dialog: accepted,
        # no effect offline (the engine bounds the audio it keeps by itself).
        self._setup_pending = True
        await self._engine("session.update", session=session)

    def _turn_detection(self, rc: dict[str, Any]) -> dict[str, Any] | None:
        handling = rc.get("activityHandling") or "ACTIVITY_HANDLING_UNSPECIFIED"
        if handling not in ("ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"):
            raise GeminiClientError(f"Invalid value at 'setup.realtime_input_config.activity_handling': {handling!r}.")
        self.config.interrupts = handling != "NO_INTERRUPTION"
        coverage = rc.get("turnCoverage") or "TURN_COVERAGE_UNSPECIFIED"
        self.config.all_input = coverage == "TURN_INCLUDES_ALL_INPUT"
        aad = _fields(rc.get("automaticActivityDetection"), "setup.realtime_input_config.automatic_activity_detection")
        if aad.get("disabled"):
            self.config.manual = True
            return None
        start = aad.get("startOfSpeechSensitivity") or "START_SENSITIVITY_UNSPECIFIED"
        end = aad.get("endOfSpeechSensitivity") or "END_SENSITIVITY_UNSPECIFIED"
        if start not in ("START_SENSITIVITY_UNSPECIFIED", *START_SENSITIVITY_THRESHOLD):
            raise GeminiClientError(f"Invalid value at 'start_of_speech_sensitivity': {start!r}.")
        if end not in ("END_SENSITIVITY_UNSPECIFIED", *END_SENSITIVITY_SILENCE_MS):
            raise GeminiClientError(f"Invalid value at 'end_of_speech_sensitivity': {end!r}.")

        def ms(name: str, default: int) -> int:
            value = aad.get(name)
            if value is None:
                return default
            if isinstance(value, str) and value.isdigit():
                value = int(value)  # protobuf JSON may quote integers
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise GeminiClientError(f"Invalid value at 'automatic_activity_detection.{name}': expected a non-negative integer.")
            return min(value, 10_000)

        return {
            "type": "server_vad",
            "threshold": START_SENSITIVITY_THRESHOLD.get(start, 0.5),
            "prefix_padding_ms": ms("prefixPaddingMs", DEFAULT_PREFIX_PADDING_MS),
            "silence_duration_ms": ms("silenceDurationMs", END_SENSITIVITY_SILENCE_MS.get(end, DEFAULT_SILENCE_MS)),
            "create_response": True,
            "interrupt_response": self.config.interrupts,
        }

    async def _restore(self, handle: Any) -> None:
        entry = self.store.get(handle) if isinstance(handle, str) else None
        if entry is None:
            raise GeminiClientError("Session resumption failed: the handle is unknown or has expired.")
        self._lineage = entry.lineage
        for item in entry.items:
            await self._engine("conversation.item.create", item=item)
        log.info("resumed a Gemini session: %d conversation items", len(entry.items))

    def _setup_complete(self) -> None:
        self._put({"setupComplete": {}})
        if self.config.resumption:
            self._resumption_update()
        if self.session_seconds is not None:
            self._timers.append(asyncio.create_task(self._go_away(self.session_seconds)))

    async def _go_away(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self._put({"goAway": {"timeLeft": f"{GO_AWAY_NOTICE_S}s"}})
        await asyncio.sleep(GO_AWAY_NOTICE_S)
        self._fail(CLOSE_NORMAL, "The session's time is up (goAway); resume it on a new connection.")

    # realtimeInput
    async def _on_realtime_input(self, body: dict[str, Any]) -> None:
        if "activityStart" in body:
            await self._activity_start()
        for i, blob in enumerate(body.get("mediaChunks") or []):
            mime = _fields(blob, f"realtime_input.media_chunks[{i}]").get("mimeType") or ""
            if isinstance(mime, str) and mime.lower().startswith("image/"):
                self._video(blob, f"realtime_input.media_chunks[{i}]")
            else:
                await self._audio(blob, f"realtime_input.media_chunks[{i}]")
        if body.get("audio") is not None:
            await self._audio(body["audio"], "realtime_input.audio")
        if body.get("video") is not None:
            self._video(body["video"], "realtime_input.video")
        if body.get("text") is not None:
            if not isinstance(body["text"], str):
                raise GeminiClientError("Invalid value at 'realtime_input.text': expected a string.")
            await self._user_turn([{"type": "input_text", "text": body["text"]}])
        if body.get("audioStreamEnd"):
            await self._audio_stream_end()
        if "activityEnd" in body:
            await self._activity_end()

    async def _audio(self, blob: Any, where: str) -> None:
        b = _fields(blob, where, ("data", "mimeType", "displayName"))
        mime = b.get("mimeType") or "audio/pcm"
        rate = pcm_rate(mime) if isinstance(mime, str) else None
        if rate is None or not 8000 <= rate <= 192000:
            raise GeminiClientError(f"Unsupported audio mime type {mime!r} at '{where}': the engine takes audio/pcm;rate=N "
                                    "(16-bit little-endian mono).")
        raw = _b64decode(b.get("data"), f"{where}.data")
        if len(raw) % 2:
            raise GeminiClientError(f"Invalid audio at '{where}': 16-bit PCM needs an even number of bytes.")
        if self.config.manual and not self._in_activity and not self.config.all_input:
            return  # TURN_INCLUDES_ONLY_ACTIVITY: audio outside activityStart..activityEnd is no part of a turn
        pcm = self._resample(np.frombuffer(raw, dtype="<i2"), rate)
        await self._append(pcm)

    def _resample(self, pcm: np.ndarray, rate: int, last: bool = False) -> np.ndarray:
        """Input audio at `rate` as the engine's 24 kHz, through one streaming resampler (no clicks at chunk
        boundaries); a change of rate flushes the previous stream first."""
        out: list[np.ndarray] = []
        if self._resampler is not None and self._resampler[0] != rate:
            out.append(self._flush_resampler())
        if rate == PROTOCOL_RATE:
            out.append(pcm)
        else:
            if self._resampler is None:
                self._resampler = (rate, soxr.ResampleStream(rate, PROTOCOL_RATE, 1, dtype="int16"))
            out.append(self._resampler[1].resample_chunk(pcm.astype(np.int16), last=last))
            if last:
                self._resampler = None
        return np.concatenate(out) if len(out) > 1 else out[0]

    def _flush_resampler(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.int16)
        tail = self._resampler[1].resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._resampler = None
        return tail

    async def _append(self, pcm: np.ndarray) -> None:
        if len(pcm) == 0:
            return
        self._activity_samples += len(pcm)
        await self._engine("input_audio_buffer.append", audio=_b64(pcm.astype("<i2").tobytes()))

    def _video(self, blob: Any, where: str) -> None:
        b = _fields(blob, where, ("data", "mimeType", "displayName"))
        mime = b.get("mimeType")
        if not isinstance(mime, str) or mime.split(";")[0].strip().lower() not in ("image/jpeg", "image/png", "image/webp"):
            raise GeminiClientError(f"Unsupported video frame mime type {mime!r} at '{where}': expected image/jpeg or image/png.")
        self._frame = _image_url(mime, _b64decode(b.get("data"), f"{where}.data"))
        # The next spoken turn the engine commits carries it; a typed turn takes it itself (see _user_turn).
        self.conn.turn_images = [self._frame]

    def _take_frame(self) -> list[dict[str, Any]]:
        frame, self._frame = self._frame, None
        self.conn.turn_images = []
        return [{"type": "input_image", "image_url": frame}] if frame else []

    async def _activity_start(self) -> None:
        if not self.config.manual:
            raise GeminiClientError("activityStart can only be sent when automatic activity detection is disabled.")
        if self.config.interrupts:
            await self._interrupt(cancel_engine=True)
        self._in_activity = True
        if not self.config.all_input:
            self._flush_resampler()
            self._activity_samples = 0
            await self._engine("input_audio_buffer.clear")

    async def _activity_end(self) -> None:
        if not self.config.manual:
            raise GeminiClientError("activityEnd can only be sent when automatic activity detection is disabled.")
        self._in_activity = False
        await self._append(self._flush_resampler())
        if self._activity_samples * 1000 // PROTOCOL_RATE >= MIN_COMMIT_MS:
            self._activity_samples = 0
            await self._engine("input_audio_buffer.commit")
            await self._request_response()

    async def _audio_stream_end(self) -> None:
        """The microphone paused: what the VAD holds as speech is the end of the turn."""
        await self._append(self._flush_resampler())
        if not self.config.manual and self.conn.in_speech:
            await self._engine("input_audio_buffer.commit")
            await self._request_response()

    # clientContent, toolResponse, contextUpdate
    async def _user_turn(self, content: list[dict[str, Any]]) -> None:
        """A typed user turn: interrupts the model, and is answered."""
        await self._interrupt(cancel_engine=True)
        await self._engine("conversation.item.create", item={"type": "message", "role": "user", "content": content + self._take_frame()})
        await self._request_response()

    async def _on_client_content(self, body: dict[str, Any]) -> None:
        turns = body.get("turns") or []
        if not isinstance(turns, list):
            raise GeminiClientError("Invalid value at 'client_content.turns': expected a list of Content.")
        complete = bool(body.get("turnComplete"))
        await self._interrupt(cancel_engine=True)  # client content interrupts the model's generation
        items: list[dict[str, Any]] = []
        for i, turn in enumerate(turns):
            items.extend(self._content_items(turn, f"client_content.turns[{i}]"))
        if complete:
            frame = self._take_frame()
            if frame:
                last_user = next((it for it in reversed(items) if it.get("role") == "user"), None)
                if last_user is not None:
                    last_user["content"] += frame
                else:
                    items.append({"type": "message", "role": "user", "content": frame})
        for item in items:
            await self._engine("conversation.item.create", item=item)
        if complete:
            await self._request_response()

    def _content_items(self, turn: Any, where: str) -> list[dict[str, Any]]:
        """One Content of client_content.turns as conversation items."""
        body = _fields(turn, where, ("role", "parts"))
        role = body.get("role") or "user"
        if role not in ("user", "model"):
            raise GeminiClientError(f"Invalid value at '{where}.role': {role!r} (expected user or model).")
        parts = body.get("parts") or []
        if not isinstance(parts, list):
            raise GeminiClientError(f"Invalid value at '{where}.parts': expected a list.")
        items: list[dict[str, Any]] = []
        content: list[dict[str, Any]] = []

        def flush() -> None:
            if content:
                items.append({"type": "message", "role": "user" if role == "user" else "assistant", "content": list(content)})
                content.clear()

        for j, part in enumerate(parts):
            p = _fields(part, f"{where}.parts[{j}]")
            if isinstance(p.get("text"), str):
                if p.get("thought"):
                    continue  # the model's thoughts are no part of what it said
                content.append({"type": "input_text" if role == "user" else "output_text", "text": p["text"]})
            elif p.get("inlineData") is not None:
                blob = _fields(p["inlineData"], f"{where}.parts[{j}].inline_data", ("data", "mimeType", "displayName"))
                mime = blob.get("mimeType") or ""
                raw = _b64decode(blob.get("data"), f"{where}.parts[{j}].inline_data.data")
                rate = pcm_rate(mime) if isinstance(mime, str) else None
                if role == "user" and isinstance(mime, str) and mime.lower().startswith("image/"):
                    content.append({"type": "input_image", "image_url": _image_url(mime, raw)})
                elif role == "user" and rate is not None and len(raw) % 2 == 0:
                    pcm = np.frombuffer(raw, dtype="<i2")
                    if rate != PROTOCOL_RATE:
                        pcm = soxr.resample(pcm, rate, PROTOCOL_RATE).astype("<i2")
                    content.append({"type": "input_audio", "audio": _b64(pcm.astype("<i2").tobytes())})
                else:
                    raise GeminiClientError(f"Unsupported inline data {mime!r} at '{where}.parts[{j}]' for role {role}.")
            elif p.get("functionCall") is not None and role == "model":
                flush()
                call = _fields(p["functionCall"], f"{where}.parts[{j}].function_call")
                items.append({"type": "function_call", "name": call.get("name") or "", "call_id": call.get("id") or f"call_{secrets.token_hex(8)}",
                              "arguments": json.dumps(call.get("args") or {})})
            elif p.get("functionResponse") is not None and role == "user":
                flush()
                response = _fields(p["functionResponse"], f"{where}.parts[{j}].function_response")
                if not isinstance(response.get("id"), str) or not response["id"]:
                    raise GeminiClientError(f"{where}.parts[{j}].function_response.id: a function response needs the call's id.")
                items.append({"type": "function_call_output", "call_id": response["id"], "output": json.dumps(response.get("response") or {})})
            else:
                raise GeminiClientError(f"Unsupported part at '{where}.parts[{j}]' (the engine takes text, inline images and "
                                        "audio, function calls and responses).")
        flush()
        return items

    async def _on_tool_response(self, body: dict[str, Any]) -> None:
        responses = body.get("functionResponses") or []
        if not isinstance(responses, list):
            raise GeminiClientError("Invalid value at 'tool_response.function_responses': expected a list.")
        answered = False
        for i, entry in enumerate(responses):
            r = _fields(entry, f"tool_response.function_responses[{i}]")
            call_id = r.get("id")
            if not isinstance(call_id, str) or not call_id:
                raise GeminiClientError(f"tool_response.function_responses[{i}].id: the id of the function call is required.")
            if call_id in self._cancelled_calls:
                log.info("a response for the cancelled tool call %s: ignored", call_id)
                continue
            response = r.get("response")
            if response is not None and not isinstance(response, dict):
                raise GeminiClientError(f"Invalid value at 'tool_response.function_responses[{i}].response': expected an object.")
            self._pending_calls.pop(call_id, None)
            await self._engine("conversation.item.create", item={"type": "function_call_output", "call_id": call_id,
                                                                  "output": json.dumps(response or {})})
            answered = True
        if answered and not self._pending_calls:  # the model goes on once every call it made is answered
            await self._request_response()

    async def _on_context_update(self, body: dict[str, Any]) -> None:
        session: dict[str, Any] = {"type": "realtime"}
        if body.get("systemInstruction") is not None:
            session["instructions"] = _text_of(body["systemInstruction"], "context_update.system_instruction")
        if body.get("tools") is not None:
            session["tools"] = function_tools(_fields(body["tools"], "context_update.tools", ("tools",)).get("tools"),
                                              "context_update.tools.tools")
        await self._engine("session.update", session=session)

    async def _request_response(self) -> None:
        """Answer now, or when the engine's current response has ended (it is being cancelled or finishing)."""
        if self.conn.response is None:
            await self._engine("response.create")
        else:
            self._want_response = True

    # ------------------------------------------------------------------ turns and interruptions
    def _playing(self) -> bool:
        return time.monotonic() < self._play_end

    async def _interrupt(self, cancel_engine: bool) -> None:
        """The user started a turn: pending tool calls are cancelled, and a model turn still generating or
        (by the playback clock) still playing is interrupted."""
        turn = self._turn
        if turn is None:
            return
        if not self.config.interrupts and not cancel_engine:
            return
        if self._pending_calls:
            ids = list(self._pending_calls)
            self._cancelled_calls.update(ids)
            self._pending_calls.clear()
            self._put({"toolCallCancellation": {"ids": ids}})
        if turn.generating:
            if not turn.interrupted:
                turn.interrupted = True
                self._put({"serverContent": {"interrupted": True}})
            run = self.conn.response
            if cancel_engine and run is not None and run.response_id == turn.response_id:
                await self._engine("response.cancel", response_id=turn.response_id)
            return  # the turn ends at the engine's response.done
        if self._playing() and not turn.interrupted:
            turn.interrupted = True
            self._put({"serverContent": {"interrupted": True}})
            await self._truncate_played(turn)
        self._finish_turn(turn)

    async def _truncate_played(self, turn: _ModelTurn) -> None:
        """The engine's copy of the interrupted answer keeps only what was heard (by the playback clock)."""
        unplayed_ms = max(0.0, (self._play_end - time.monotonic()) * 1000)
        self._play_end = time.monotonic()  # the client flushes its playback at `interrupted`
        if not self.config.audio_out or turn.audio_item is None or unplayed_ms <= 0:
            return
        keep = int(max(0.0, turn.audio_item_ms - unplayed_ms))
        if keep < int(turn.audio_item_ms) and turn.audio_item in self.conn.items:
            await self._engine("conversation.item.truncate", item_id=turn.audio_item, content_index=0, audio_end_ms=keep)

    def _finish_turn(self, turn: _ModelTurn) -> None:
        if self._turn is not turn:
            return
        if turn.finish_timer is not None:
            turn.finish_timer.cancel()
        self._turn = None
        message: dict[str, Any] = {"serverContent": {"turnComplete": True}}
        if turn.usage:
            message["usageMetadata"] = usage_metadata(turn.usage)
        self._put(message)
        if self.config.resumption:
            self._resumption_update()

    def _resumption_update(self) -> None:
        handle = self.store.put(self._lineage, self._snapshot())
        update: dict[str, Any] = {"newHandle": handle, "resumable": True}
        if self.config.transparent:
            update["lastConsumedClientMessageIndex"] = max(0, self._consumed - 1)
        self._put({"sessionResumptionUpdate": update})

    def _snapshot(self) -> list[dict[str, Any]]:
        """The conversation as client items that rebuild it (text and transcripts, images, tool calls and
        outputs; not the audio)."""
        items: list[dict[str, Any]] = []
        for item_id in list(self.conn.order):
            stored = self.conn.items.get(item_id)
            if stored is None:
                continue
            wire = stored.wire
            kind = wire.get("type", "message")
            if kind == "function_call":
                items.append({"type": "function_call", "call_id": wire["call_id"], "name": wire["name"],
                              "arguments": wire.get("arguments") or stored.text or "{}"})
            elif kind == "function_call_output":
                items.append({"type": "function_call_output", "call_id": wire["call_id"], "output": wire.get("output", stored.text)})
            elif wire.get("role") == "assistant":
                if stored.text:
                    items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": stored.text}]})
            else:
                role = wire.get("role", "user")
                content = [{"type": "input_text", "text": stored.text}] if stored.text else []
                if role == "user":
                    content += [{"type": "input_image", "image_url": url} for url in stored.images]
                if content:
                    items.append({"type": "message", "role": role, "content": content})
        return items

    # ------------------------------------------------------------------ engine events
    async def _from_engine(self, text: str) -> None:
        """The connection's send: one OpenAI server event, translated. Never raises (the connection's writer
        would take that for a closed socket)."""
        try:
            event = json.loads(text)
            await self._translate(event)
        except Exception as exc:  # noqa: BLE001 - a translator bug: report it like Gemini reports internal errors
            log.exception("error translating an engine event")
            self._fail(CLOSE_SERVER_ERROR, f"Internal error: {type(exc).__name__}")

    async def _translate(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.updated":
            if self._setup_pending:
                self._setup_pending = False
                self._setup_complete()
        elif kind == "error":
            error = event.get("error") or {}
            code = CLOSE_SERVER_ERROR if error.get("type") == "server_error" else CLOSE_INVALID
            self._fail(code, str(error.get("message") or "The request was refused."))
        elif kind == "response.created":
            self._response_created(event["response"])
        elif kind == "response.output_audio.delta":
            self._audio_delta(event)
        elif kind == "response.output_text.delta":
            if self._turn is not None and not self._turn.interrupted:
                self._put({"serverContent": {"modelTurn": {"role": "model", "parts": [{"text": event["delta"]}]}}})
        elif kind == "response.output_audio_transcript.delta":
            if self.config.output_transcription and self._turn is not None and not self._turn.interrupted:
                self._put({"serverContent": {"outputTranscription": {"text": event["delta"]}}})
        elif kind == "conversation.item.input_audio_transcription.completed":
            if self.config.input_transcription:
                self._put({"serverContent": {"inputTranscription": {"text": event.get("transcript") or "", "finished": True}}})
        elif kind == "input_audio_buffer.speech_started":
            # Where the engine's VAD heard speech start and stop, as Gemini's voiceActivity signal (audio time
            # since the start of the stream; the client's speech boundaries and voice latency come from it).
            self._voice_activity("ACTIVITY_START", event.get("audio_start_ms"))
            await self._interrupt(cancel_engine=False)  # the engine cancels its response itself (interrupt_response)
        elif kind == "input_audio_buffer.speech_stopped":
            self._voice_activity("ACTIVITY_END", event.get("audio_end_ms"))
        elif kind == "response.done":
            await self._response_done(event["response"])

    def _voice_activity(self, kind: str, at_ms: Any) -> None:
        """Gemini's voiceActivity signal. On Google's wire the kind is `type` (the SDK's converter reads that
        into `voice_activity_type`)."""
        offset = f"{int(at_ms or 0) / 1000:.3f}s"
        self._put({"voiceActivity": {"type": kind, "audioOffset": offset}})

    def _response_created(self, response: dict[str, Any]) -> None:
        turn = self._turn
        if turn is not None and not turn.awaiting_tools:
            self._finish_turn(turn)  # the previous answer was still playing out (no interruption configured)
        if self._turn is None:
            self._turn = _ModelTurn()
        self._turn.response_id = response["id"]
        self._turn.generating, self._turn.awaiting_tools = True, False

    def _audio_delta(self, event: dict[str, Any]) -> None:
        turn = self._turn
        if turn is None or turn.interrupted:
            return  # what the engine still had in flight after an interruption is not sent
        delta = event["delta"]
        ms = len(base64.b64decode(delta)) / 2 * 1000 / PROTOCOL_RATE
        now = time.monotonic()
        self._play_end = max(self._play_end, now) + ms / 1000
        if turn.audio_item != event.get("item_id"):
            turn.audio_item, turn.audio_item_ms = event.get("item_id"), 0.0
        turn.audio_item_ms += ms
        self._put({"serverContent": {"modelTurn": {"role": "model", "parts": [{"inlineData": {"mimeType": OUTPUT_MIME, "data": delta}}]}}})

    async def _response_done(self, response: dict[str, Any]) -> None:
        turn = self._turn
        if turn is not None and response.get("id") == turn.response_id:
            turn.generating = False
            _add_usage(turn.usage, response.get("usage"))
            status = response.get("status")
            calls = [item for item in response.get("output") or [] if item.get("type") == "function_call"]
            if turn.interrupted or status == "cancelled":
                if not turn.interrupted:
                    turn.interrupted = True
                    self._put({"serverContent": {"interrupted": True}})
                await self._truncate_played(turn)
                self._finish_turn(turn)
            elif calls and status == "completed":
                function_calls = []
                for item in calls:
                    try:
                        args = json.loads(item.get("arguments") or "{}")
                    except ValueError:
                        args = {}
                    function_calls.append({"id": item["call_id"], "name": item["name"], "args": args if isinstance(args, dict) else {}})
                    self._pending_calls[item["call_id"]] = item["name"]
                turn.awaiting_tools = True
                self._put({"toolCall": {"functionCalls": function_calls}})
            else:
                if status == "failed":
                    log.warning("the engine's answer failed: %s", (response.get("status_details") or {}).get("error"))
                self._put({"serverContent": {"generationComplete": True}})
                delay = self._play_end - time.monotonic()
                if delay > 0:
                    turn.finish_timer = asyncio.get_running_loop().call_later(delay, self._finish_turn, turn)
                else:
                    self._finish_turn(turn)
        if self._want_response and self.conn.response is None:
            self._want_response = False
            await self._engine("response.create")
