"""Google's Gemini Live API (BidiGenerateContent) as a dialect of the core's vocabulary.

What maps, and how (the field names are the wire's camelCase; `google-genai`'s `LiveClientMessage` and
`LiveServerMessage` are the oracle, and the tests validate every message against them):

Client (core event → Gemini message)
- first `session.update` → `setup` (model, system instruction, voice, response modality, input and output
  transcription, tools, automatic activity detection with its knobs, activity handling, session resumption,
  context window compression). Later updates cannot change a live session: the dialect keeps them and asks for
  a new connection at the next turn boundary (`reopen_reason`), which resumes the conversation by its handle.
- `input_audio_buffer.append` → `realtimeInput.audio`, resampled from the core's 24 kHz to 16 kHz. With manual
  turns the audio is held until the commit and then sent between `activityStart` and `activityEnd`, so that
  Esc (clear) discards it: Gemini cannot take back audio once sent.
- a user message → `realtimeInput.video` for each image and `realtimeInput.text` for its text.
- `function_call_output` → `toolResponse`.
- `response.create` → nothing when Gemini answers on its own (after speech, text, a tool result); else
  `clientContent` with `turnComplete` (answer what has been given).
- `response.cancel`, `conversation.item.truncate`, `conversation.item.delete`: Gemini has none. Parley stops
  playing the answer and drops its late audio as always; the capability record says what the model keeps.

Server (Gemini message → core events)
- `setupComplete` → `session.created` + `session.updated` with the settings in effect, in the core's terms.
- `serverContent.modelTurn` audio → a response with one assistant message item and its audio deltas;
  `outputTranscription` → its transcript; `inputTranscription` → the user turn's transcript (the user item is
  placed when the user's turn is first known: activity, transcription, or the answer starting).
- `voiceActivity` start/end → speech started/stopped (when the server sends them).
- `interrupted` → speech started (the barge-in) and the response cancelled; `turnComplete` → the response done,
  with `usageMetadata` as its token usage.
- `toolCall` → function call items (the response ends there: Gemini waits for the result);
  `toolCallCancellation` → a notice, and results for those calls are not sent.
- `goAway` → a notice and a new connection at the next turn boundary; `sessionResumptionUpdate` → the handle.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import re
from dataclasses import replace
from typing import Any

import numpy as np
import soxr

from .. import events as ev
from ..pcm import PROTOCOL_RATE
from ..provider_capabilities import DEFAULT_GEMINI_MODEL, GEMINI, GEMINI_VOICES, ProviderCapabilities
from ..session_config import ManualTurns, SemanticVad, ServerVad, SessionConfig
from . import Translation

log = logging.getLogger(__name__)

GEMINI_INPUT_RATE = 16_000
INPUT_MIME = f"audio/pcm;rate={GEMINI_INPUT_RATE}"
#: Manual turns: the held audio goes out in pieces of this many samples (0.5 s at 16 kHz).
MANUAL_PIECE = 8_000
#: Parley's threshold at and above which Gemini's start-of-speech sensitivity is LOW (it needs more to start).
LOW_START_FROM = 0.6
#: The threshold Parley shows for each of Gemini's two start sensitivities.
THRESHOLD_OF = {"START_SENSITIVITY_HIGH": 0.5, "START_SENSITIVITY_LOW": 0.7}
#: Silence at and below which the end-of-speech sensitivity is HIGH (a turn ends on shorter pauses).
HIGH_END_UP_TO_MS = 400
#: Semantic VAD's eagerness read as Gemini's end-of-speech sensitivity (Gemini has no semantic turn detection).
END_OF_EAGERNESS = {"high": "END_SENSITIVITY_HIGH", "medium": "END_SENSITIVITY_HIGH",
                    "low": "END_SENSITIVITY_LOW", "auto": "END_SENSITIVITY_LOW"}


def _duration_ms(text: Any) -> int | None:
    """A protobuf Duration in JSON ("1.5s", "12s") in milliseconds."""
    if not isinstance(text, str):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", text)
    return int(float(match.group(1)) * 1000) if match else None


def _data_url_parts(url: str) -> tuple[str, str] | None:
    """`data:image/png;base64,AAAA` → ("image/png", "AAAA")."""
    match = re.fullmatch(r"data:([\w.+-]+/[\w.+-]+);base64,(.*)", url, flags=re.S)
    return (match.group(1), match.group(2)) if match else None


def usage_from_gemini(meta: dict[str, Any]) -> dict[str, Any]:
    """Gemini's `usageMetadata` in the core's usage shape (`response.done`'s `usage`)."""
    def by_modality(details: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in details if isinstance(details, list) else []:
            if isinstance(d, dict) and isinstance(d.get("tokenCount"), int):
                kind = str(d.get("modality", "")).lower()
                out[kind] = out.get(kind, 0) + d["tokenCount"]
        return out

    prompt = by_modality(meta.get("promptTokensDetails"))
    answer = by_modality(meta.get("responseTokensDetails"))
    cached = meta.get("cachedContentTokenCount") if isinstance(meta.get("cachedContentTokenCount"), int) else 0
    inp = meta.get("promptTokenCount") if isinstance(meta.get("promptTokenCount"), int) else sum(prompt.values())
    out = meta.get("responseTokenCount") if isinstance(meta.get("responseTokenCount"), int) else sum(answer.values())
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": {"text_tokens": prompt.get("text", 0), "audio_tokens": prompt.get("audio", 0),
                                "image_tokens": prompt.get("image", 0) + prompt.get("video", 0),
                                "cached_tokens": cached},
        "output_token_details": {"text_tokens": answer.get("text", 0), "audio_tokens": answer.get("audio", 0)},
    }


class GeminiLiveDialect:
    def __init__(self, model: str | None = None, capabilities: ProviderCapabilities | None = None) -> None:
        self.capabilities = capabilities or GEMINI
        self.model = model or DEFAULT_GEMINI_MODEL
        #: The latest session settings the core asked for, and those the live connection was set up with.
        self.wanted: SessionConfig | None = None
        self.applied: SessionConfig | None = None
        #: Session resumption: the latest handle the server gave, and whether this connection resumed with one.
        self.handle: str | None = None
        self.resumed = False
        self._reopen: str | None = None
        self._ids = itertools.count(1)
        self.go_away_ms: int | None = None
        self.connected()

    # ------------------------------------------------------------------ connection
    def connected(self) -> None:
        self._setup_sent = False
        self._setup_done = False
        self._held: list[dict[str, Any]] = []  # messages waiting for setupComplete
        self._resampler = soxr.ResampleStream(PROTOCOL_RATE, GEMINI_INPUT_RATE, 1, dtype="int16", quality="HQ")
        self._manual_audio: list[np.ndarray] = []
        self._user_item: str | None = None
        self._user_text = ""
        self._user_placed = False
        self._user_transcribed = False
        self._user_speaking = False
        self._last_item: str | None = None
        self._response: str | None = None
        self._answer: str | None = None
        self._answer_text = ""
        self._answer_audio = False
        self._usage: dict[str, Any] | None = None
        self._calls: dict[str, str] = {}  # call id -> function name
        self._cancelled_calls: set[str] = set()
        self._answers_itself = False  # the last thing sent makes Gemini answer without being asked
        self._cancelled = False  # the core cancelled the live response (Gemini goes on; its audio is dropped)
        self._reopen = None
        self.go_away_ms = None
        self.resumed = False

    @property
    def reopen_reason(self) -> str | None:
        return self._reopen

    def _id(self, kind: str) -> str:
        return f"gem_{kind}_{next(self._ids)}"

    # ------------------------------------------------------------------ outbound
    def outbound(self, event: dict[str, Any]) -> Translation:
        kind = event.get("type")
        handler = {
            "session.update": self._out_session_update,
            "input_audio_buffer.append": self._out_append,
            "input_audio_buffer.commit": self._out_commit,
            "input_audio_buffer.clear": self._out_clear,
            "conversation.item.create": self._out_item_create,
            "response.create": self._out_response_create,
            "response.cancel": self._out_cancel,
            "conversation.item.truncate": self._out_truncate,
            "conversation.item.delete": self._out_delete,
        }.get(kind or "")
        if handler is None:
            log.debug("Gemini Live has no equivalent of %s: not sent", kind)
            return Translation()
        return handler(event)

    def _send(self, message: dict[str, Any]) -> Translation:
        if not self._setup_done:
            self._held.append(message)
            return Translation()
        return Translation(wire=[message])

    def _out_session_update(self, event: dict[str, Any]) -> Translation:
        config = SessionConfig.from_wire(event.get("session"))
        if self.applied is not None and self.wanted is not None:
            # The voice is dropped from updates once a session has spoken: keep the one asked for before.
            if config.voice is None and "voice" not in (event.get("session", {}).get("audio", {}).get("output", {})):
                config = replace(config, voice=self.wanted.voice)
        self.wanted = config
        if not self._setup_sent:
            self._setup_sent = True
            self.applied = config
            return Translation(wire=[{"setup": self._setup(config)}])
        out = Translation()
        if self._setup_key(config) != self._setup_key(self.applied):
            if self._reopen is None:
                self._reopen = "settings"
                out.notices.append(("info", "Gemini Live takes session settings only when a session starts: "
                                            "Parley opens a new one at the next pause, and the conversation "
                                            "carries over."))
        # Gemini sends nothing back for this: answer with the settings still in effect.
        out.events.append(ev.SessionUpdated(session=self._effective_wire()))
        return out

    @staticmethod
    def _setup_key(config: SessionConfig | None) -> Any:
        if config is None:
            return None
        return (config.instructions, config.voice, config.output_modalities, config.turn_detection,
                bool(config.transcription_model), config.tools)

    def _voice(self, config: SessionConfig) -> str | None:
        voice = config.voice
        if voice and voice.capitalize() in GEMINI_VOICES:
            return voice.capitalize()
        return None

    def _activity_detection(self, td: Any) -> tuple[dict[str, Any], str]:
        if isinstance(td, ManualTurns):
            return {"disabled": True}, "START_OF_ACTIVITY_INTERRUPTS"
        if isinstance(td, SemanticVad):
            detection = {"disabled": False, "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
                         "endOfSpeechSensitivity": END_OF_EAGERNESS.get(td.eagerness, "END_SENSITIVITY_LOW")}
            return detection, "START_OF_ACTIVITY_INTERRUPTS" if td.interrupt_response else "NO_INTERRUPTION"
        assert isinstance(td, ServerVad)
        detection = {
            "disabled": False,
            "startOfSpeechSensitivity": "START_SENSITIVITY_LOW" if td.threshold >= LOW_START_FROM
            else "START_SENSITIVITY_HIGH",
            "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH" if td.silence_duration_ms <= HIGH_END_UP_TO_MS
            else "END_SENSITIVITY_LOW",
            "prefixPaddingMs": int(td.prefix_padding_ms),
            "silenceDurationMs": int(td.silence_duration_ms),
        }
        return detection, "START_OF_ACTIVITY_INTERRUPTS" if td.interrupt_response else "NO_INTERRUPTION"

    def _setup(self, config: SessionConfig) -> dict[str, Any]:
        generation: dict[str, Any] = {
            "responseModalities": ["AUDIO"] if "audio" in config.output_modalities else ["TEXT"],
        }
        voice = self._voice(config)
        if voice:
            generation["speechConfig"] = {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}}
        detection, handling = self._activity_detection(config.turn_detection)
        setup: dict[str, Any] = {
            "model": self.model if self.model.startswith("models/") else f"models/{self.model}",
            "generationConfig": generation,
            "realtimeInputConfig": {"automaticActivityDetection": detection, "activityHandling": handling},
            "outputAudioTranscription": {},
            "sessionResumption": {"handle": self.handle} if self.handle else {},
            "contextWindowCompression": {"slidingWindow": {}},
        }
        if config.instructions:
            setup["systemInstruction"] = {"parts": [{"text": config.instructions}]}
        if config.transcription_model:
            setup["inputAudioTranscription"] = {}
        declarations = [
            {k: v for k, v in (("name", t.get("name")), ("description", t.get("description")),
                               ("parametersJsonSchema", t.get("parameters"))) if v is not None}
            for t in config.tools or () if t.get("type", "function") == "function" and t.get("name")
        ]
        if declarations:
            setup["tools"] = [{"functionDeclarations": declarations}]
        self.resumed = bool(self.handle)
        return setup

    def _effective(self) -> SessionConfig:
        """The settings in effect on this connection, in the core's terms (what Gemini can hold of them)."""
        config = self.applied or SessionConfig()
        td = config.turn_detection
        if not isinstance(td, ManualTurns):
            detection, handling = self._activity_detection(td)
            interrupts = handling == "START_OF_ACTIVITY_INTERRUPTS"
            if isinstance(td, ServerVad):
                td = ServerVad(threshold=THRESHOLD_OF[detection["startOfSpeechSensitivity"]],
                               prefix_padding_ms=td.prefix_padding_ms, silence_duration_ms=td.silence_duration_ms,
                               idle_timeout_ms=None, interrupt_response=interrupts)
            else:  # semantic VAD asked for: Gemini detects activity by sound, with the eagerness as end sensitivity
                td = ServerVad(threshold=THRESHOLD_OF["START_SENSITIVITY_HIGH"],
                               silence_duration_ms=HIGH_END_UP_TO_MS if detection["endOfSpeechSensitivity"]
                               == "END_SENSITIVITY_HIGH" else 800, interrupt_response=interrupts)
        # Gemini's default voice is Puck; a server without Gemini's voices (the engine) names none
        default_voice = "Puck" if self.capabilities.voices else None
        return replace(config, turn_detection=td, voice=self._voice(config) or default_voice, model=self.model,
                       noise_reduction=None, speed=None)

    def _effective_wire(self) -> dict[str, Any]:
        return self._effective().to_wire()

    def _out_append(self, event: dict[str, Any]) -> Translation:
        try:
            raw = base64.b64decode(event.get("audio", ""), validate=True)
        except (binascii.Error, ValueError):
            return Translation()
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
        out16 = self._resampler.resample_chunk(pcm)
        if self._holding():
            self._manual_audio.append(np.asarray(out16, dtype="<i2"))
            return Translation()
        if len(out16) == 0:
            return Translation()
        return self._send({"realtimeInput": {"audio": {"data": base64.b64encode(np.asarray(out16, "<i2").tobytes())
                                                       .decode("ascii"), "mimeType": INPUT_MIME}}})

    def _applied_turns(self) -> Any:
        return (self.applied or SessionConfig()).turn_detection

    def _holding(self) -> bool:
        """Manual turns asked for (push-to-talk): audio is held until the commit, so Esc can discard it."""
        return isinstance(self._applied_turns(), ManualTurns) or isinstance(
            (self.wanted or SessionConfig()).turn_detection, ManualTurns)

    def _out_commit(self, event: dict[str, Any]) -> Translation:
        """Manual turns: the held audio, between activityStart and activityEnd; the user item is placed."""
        audio = np.concatenate(self._manual_audio) if self._manual_audio else np.zeros(0, "<i2")
        self._manual_audio = []
        # A session set up with automatic activity detection cannot take activity markers (Gemini fixes that at
        # setup; the next session will have manual turns): the held audio, then audioStreamEnd, which makes
        # Gemini's own detection end the turn at once.
        markers = isinstance(self._applied_turns(), ManualTurns)
        out = Translation()
        if markers:
            out.extend(self._send({"realtimeInput": {"activityStart": {}}}))
        for start in range(0, len(audio), MANUAL_PIECE):
            piece = audio[start:start + MANUAL_PIECE]
            out.extend(self._send({"realtimeInput": {"audio": {
                "data": base64.b64encode(piece.tobytes()).decode("ascii"), "mimeType": INPUT_MIME}}}))
        out.extend(self._send({"realtimeInput": {"activityEnd": {}} if markers else {"audioStreamEnd": True}}))
        self._answers_itself = True
        out.events += self._place_user_turn()
        return out

    def _out_clear(self, event: dict[str, Any]) -> Translation:
        held = bool(self._manual_audio)
        self._manual_audio = []
        # With automatic activity detection the audio already went out: nothing can be taken back (Parley only
        # clears with manual turns, where it holds the audio until the commit).
        return Translation(events=[ev.InputCleared()] if held or self._holding() else [])

    def _out_item_create(self, event: dict[str, Any]) -> Translation:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        kind = item.get("type", "message")
        if kind == "function_call_output":
            return self._out_tool_output(item)
        if kind != "message":
            return Translation(notices=[("warning", f"Gemini Live cannot take a {kind} item: it was not sent.")])
        content = item.get("content") if isinstance(item.get("content"), list) else []
        if "id" in item:  # context carried over into a new session (context_reseed)
            if self.resumed:
                return Translation()  # the resumed session has the conversation already
            return self._out_history(item, content)
        out = Translation()
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
                parsed = _data_url_parts(part["image_url"])
                if parsed is None:
                    out.notices.append(("warning", "An image that is not a data URL cannot be sent to Gemini Live."))
                    continue
                mime, data = parsed
                out.extend(self._send({"realtimeInput": {"video": {"data": data, "mimeType": mime}}}))
            elif part.get("type") == "input_text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
        text = "\n".join(t for t in texts if t.strip())
        if text:
            out.extend(self._send({"realtimeInput": {"text": text}}))
            self._answers_itself = True
        else:
            self._answers_itself = False
        item_id = self._id("msg")
        wire_item = {"id": item_id, "type": "message", "role": "user", "status": "completed",
                     "content": [p for p in content if isinstance(p, dict)]}
        out.events.append(ev.ItemAdded(item=wire_item, previous_item_id=self._last_item))
        self._last_item = item_id
        return out

    def _out_history(self, item: dict[str, Any], content: list[Any]) -> Translation:
        role = "model" if item.get("role") == "assistant" else "user"
        parts = [{"text": p["text"]} for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if not parts:
            return Translation()
        self._last_item = item.get("id") if isinstance(item.get("id"), str) else self._last_item
        return self._send({"clientContent": {"turns": [{"role": role, "parts": parts}], "turnComplete": False}})

    def _out_tool_output(self, item: dict[str, Any]) -> Translation:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            return Translation()
        if call_id in self._cancelled_calls:
            return Translation(notices=[("info", "Gemini had cancelled that tool call: its result was not sent.")])
        output = item.get("output")
        try:
            response = json.loads(output) if isinstance(output, str) else output
        except ValueError:
            response = None
        if not isinstance(response, dict):
            response = {"output": output}
        answer = {"id": call_id, "name": self._calls.get(call_id, ""), "response": response}
        self._answers_itself = True
        item_id = self._id("out")
        out = self._send({"toolResponse": {"functionResponses": [answer]}})
        out.events.append(ev.ItemAdded(item={"id": item_id, "type": "function_call_output", "call_id": call_id,
                                             "output": output if isinstance(output, str) else json.dumps(output)},
                                       previous_item_id=self._last_item))
        self._last_item = item_id
        return out

    def _out_response_create(self, event: dict[str, Any]) -> Translation:
        if self._answers_itself:
            self._answers_itself = False
            return Translation()
        # Answer with what has been given (images alone, or "answer again").
        return self._send({"clientContent": {"turnComplete": True}})

    def _out_cancel(self, event: dict[str, Any]) -> Translation:
        # No cancel in Gemini Live: the core has silenced the answer (its late audio is dropped); the response
        # ends when Gemini's turn does.
        if self._response is not None:
            self._cancelled = True
        return Translation()

    def _out_truncate(self, event: dict[str, Any]) -> Translation:
        return Translation()  # the core marks what was heard in the transcript; the model keeps all of it

    def _out_delete(self, event: dict[str, Any]) -> Translation:
        return Translation(notices=[("info", "Gemini Live cannot remove a turn from the model's context: "
                                             "it stays in the transcript and in what the model remembers.")])

    # ------------------------------------------------------------------ inbound
    def inbound(self, message: str | bytes) -> Translation:
        try:
            data = json.loads(message)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return Translation(events=[ev.MalformedEvent(type="", reason=f"not JSON: {str(exc)[:80]}")])
        if not isinstance(data, dict):
            return Translation(events=[ev.MalformedEvent(type="", reason="not a JSON object")])
        out = Translation()
        known = False
        # usage first: it belongs to the turn that the same message may complete
        if isinstance(data.get("usageMetadata"), dict):
            known = True
            self._usage = usage_from_gemini(data["usageMetadata"])
        if "setupComplete" in data:
            known = True
            out.extend(self._in_setup_complete())
        if isinstance(data.get("voiceActivity"), dict):
            known = True
            out.extend(self._in_voice_activity(data["voiceActivity"]))
        if isinstance(data.get("serverContent"), dict):
            known = True
            out.extend(self._in_server_content(data["serverContent"]))
        if isinstance(data.get("toolCall"), dict):
            known = True
            out.extend(self._in_tool_call(data["toolCall"]))
        if isinstance(data.get("toolCallCancellation"), dict):
            known = True
            ids = [i for i in data["toolCallCancellation"].get("ids", []) if isinstance(i, str)]
            self._cancelled_calls.update(ids)
            names = ", ".join(self._calls.get(i, i) for i in ids)
            out.notices.append(("info", f"Gemini cancelled the tool call {names}: its result will not be sent."))
        if isinstance(data.get("goAway"), dict):
            known = True
            self.go_away_ms = _duration_ms(data["goAway"].get("timeLeft"))
            self._reopen = "go_away"
            left = f" in {self.go_away_ms / 1000:.0f} s" if self.go_away_ms is not None else " soon"
            out.notices.append(("info", f"Gemini will end this connection{left}: Parley opens the next one at "
                                        "the next pause and resumes the conversation."))
        if isinstance(data.get("sessionResumptionUpdate"), dict):
            known = True
            update = data["sessionResumptionUpdate"]
            if update.get("resumable") and isinstance(update.get("newHandle"), str) and update["newHandle"]:
                self.handle = update["newHandle"]
        if not known:
            out.events.append(ev.UnknownEvent(type=",".join(sorted(data))[:60], raw=data))
        return out

    def _in_setup_complete(self) -> Translation:
        self._setup_done = True
        session = self._effective_wire()
        out = Translation(events=[ev.SessionCreated(session=session), ev.SessionUpdated(session=session)])
        held, self._held = self._held, []
        out.wire += held
        return out

    def _in_voice_activity(self, activity: dict[str, Any]) -> Translation:
        # On the wire the kind is `type` (the SDK's converter reads it into voice_activity_type)
        kind = activity.get("type") or activity.get("voiceActivityType")
        at = _duration_ms(activity.get("audioOffset")) or 0
        if kind == "ACTIVITY_START":
            self._begin_user_turn()
            self._user_speaking = True
            return Translation(events=[ev.SpeechStarted(audio_start_ms=at, item_id=self._user_item or "")])
        if kind == "ACTIVITY_END" and self._user_item is not None:
            self._user_speaking = False
            events: list[ev.ServerEvent] = [ev.SpeechStopped(audio_end_ms=at, item_id=self._user_item)]
            return Translation(events=events + self._place_user_turn())
        return Translation()

    def _begin_user_turn(self) -> None:
        if self._user_item is None:
            self._user_item = self._id("user")
            self._user_text = ""
            self._user_placed = False
            self._user_transcribed = False

    def _place_user_turn(self) -> list[ev.ServerEvent]:
        """The user's turn becomes an item in the conversation (once)."""
        self._begin_user_turn()
        if self._user_placed:
            return []
        self._user_placed = True
        item_id = self._user_item
        assert item_id is not None
        events: list[ev.ServerEvent] = [ev.InputCommitted(item_id=item_id, previous_item_id=self._last_item)]
        self._last_item = item_id
        return events

    def _finish_user_turn(self) -> list[ev.ServerEvent]:
        if self._user_item is None:
            return []
        events = self._place_user_turn()
        if not self._user_transcribed and (self._user_text or (self.applied and self.applied.transcription_model)):
            events.append(ev.InputTranscriptionCompleted(item_id=self._user_item, transcript=self._user_text.strip()))
        self._user_item = None
        self._user_text = ""
        return events

    def _begin_response(self) -> list[ev.ServerEvent]:
        if self._response is not None:
            return []
        events: list[ev.ServerEvent] = []
        if self._user_item is not None and not self._user_speaking:
            events += self._place_user_turn()
        self._response = self._id("resp")
        self._answer = None
        self._answer_text = ""
        self._answer_audio = False
        self._cancelled = False
        events.append(ev.ResponseCreated(response={"id": self._response, "status": "in_progress"}))
        return events

    def _answer_item(self) -> list[ev.ServerEvent]:
        if self._answer is not None:
            return []
        self._answer = self._id("item")
        item = {"id": self._answer, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        # placed after the conversation's last item (as an OpenAI server's conversation.item.added places it)
        events: list[ev.ServerEvent] = [ev.ItemAdded(item=item, previous_item_id=self._last_item),
                                        ev.OutputItemAdded(response_id=self._response or "", item=item)]
        self._last_item = self._answer
        return events

    def _in_server_content(self, content: dict[str, Any]) -> Translation:
        out = Translation()
        transcription = content.get("inputTranscription")
        if isinstance(transcription, dict) and isinstance(transcription.get("text"), str) and transcription["text"]:
            if self._user_item is None:
                self._begin_user_turn()
                if self._response is None and not self._user_speaking:
                    out.events += self._place_user_turn()
            elif not self._user_placed and not self._user_speaking:
                out.events += self._place_user_turn()
            self._user_text += transcription["text"]
            assert self._user_item is not None
            out.events.append(ev.InputTranscriptionDelta(item_id=self._user_item, delta=transcription["text"]))
        if isinstance(transcription, dict) and transcription.get("finished") and self._user_item is not None:
            # The server says the transcript of this turn is whole: final now, not at the end of the answer.
            if not self._user_placed and not self._user_speaking:
                out.events += self._place_user_turn()
            out.events.append(ev.InputTranscriptionCompleted(item_id=self._user_item,
                                                             transcript=self._user_text.strip()))
            self._user_transcribed = True
        if content.get("interrupted"):
            out.events += self._interrupted()
        turn = content.get("modelTurn")
        if isinstance(turn, dict):
            for part in turn.get("parts") or []:
                if not isinstance(part, dict) or part.get("thought"):
                    continue
                blob = part.get("inlineData")
                if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("audio/pcm"):
                    out.events += self._audio(blob)
                elif isinstance(part.get("text"), str) and part["text"]:
                    out.events += self._begin_response() + self._answer_item()
                    if not self._answer_audio:  # a text-only answer
                        self._answer_text += part["text"]
                        out.events.append(ev.OutputTextDelta(response_id=self._response or "",
                                                             item_id=self._answer or "", delta=part["text"]))
        said = content.get("outputTranscription")
        if isinstance(said, dict) and isinstance(said.get("text"), str) and said["text"]:
            out.events += self._begin_response() + self._answer_item()
            self._answer_text += said["text"]
            out.events.append(ev.OutputTranscriptDelta(response_id=self._response or "", item_id=self._answer or "",
                                                       delta=said["text"]))
        if content.get("turnComplete"):
            out.events += self._end_response("cancelled" if self._cancelled else "completed")
            out.events += self._finish_user_turn()
        return out

    def _audio(self, blob: dict[str, Any]) -> list[ev.ServerEvent]:
        mime = str(blob.get("mimeType", ""))
        rate = re.search(r"rate=(\d+)", mime)
        if rate and int(rate.group(1)) != PROTOCOL_RATE:
            return [ev.MalformedEvent(type="serverContent", reason=f"audio at {rate.group(1)} Hz, not {PROTOCOL_RATE}")]
        try:
            raw = base64.b64decode(blob.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            return [ev.MalformedEvent(type="serverContent", reason="audio that is not base64")]
        events = self._begin_response() + self._answer_item()
        self._answer_audio = True
        pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").copy()
        events.append(ev.OutputAudioDelta(response_id=self._response or "", item_id=self._answer or "", audio=pcm))
        return events

    def _interrupted(self) -> list[ev.ServerEvent]:
        """Gemini's server heard the user and stopped its answer: the barge-in, then the response's end."""
        events: list[ev.ServerEvent] = []
        if not self._user_speaking:
            if self._user_item is not None and self._user_placed:
                self._user_item = None  # that turn is over; this is a new one
            self._begin_user_turn()
            self._user_speaking = True
            events.append(ev.SpeechStarted(audio_start_ms=0, item_id=self._user_item or ""))
        events += self._end_response("cancelled")
        # Gemini's VAD decides when this turn ends; without voiceActivity, the answer starting places it.
        self._user_speaking = False
        return events

    def _end_response(self, status: str) -> list[ev.ServerEvent]:
        if self._response is None:
            return []
        rid, item_id = self._response, self._answer
        events: list[ev.ServerEvent] = []
        output: list[dict[str, Any]] = []
        if item_id is not None:
            item_status = "completed" if status == "completed" else "incomplete"
            part_type = "output_audio" if self._answer_audio else "output_text"
            text_key = "transcript" if self._answer_audio else "text"
            item = {"id": item_id, "type": "message", "role": "assistant", "status": item_status,
                    "content": [{"type": part_type, text_key: self._answer_text}]}
            if self._answer_audio:
                events.append(ev.OutputAudioDone(response_id=rid, item_id=item_id))
                events.append(ev.OutputTranscriptDone(response_id=rid, item_id=item_id, transcript=self._answer_text))
            else:
                events.append(ev.OutputTextDone(response_id=rid, item_id=item_id, text=self._answer_text))
            events.append(ev.OutputItemDone(response_id=rid, item=item))
            output.append(item)
        response: dict[str, Any] = {"id": rid, "status": status, "output": output}
        if self._usage is not None:
            response["usage"], self._usage = self._usage, None
        events.append(ev.ResponseDone(response=response))
        self._response = None
        self._answer = None
        self._cancelled = False
        return events

    def _in_tool_call(self, call: dict[str, Any]) -> Translation:
        out = Translation()
        out.events += self._begin_response()
        for n, fc in enumerate(call.get("functionCalls") or []):
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                continue
            call_id = fc.get("id") if isinstance(fc.get("id"), str) and fc.get("id") else self._id("call")
            self._calls[call_id] = fc["name"]
            if len(self._calls) > 256:
                self._calls.pop(next(iter(self._calls)))
            item_id = self._id("fc")
            item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": fc["name"],
                    "arguments": json.dumps(fc.get("args") or {}), "status": "completed"}
            out.events.append(ev.ItemAdded(item=item, previous_item_id=self._last_item))
            out.events.append(ev.OutputItemAdded(response_id=self._response or "", output_index=n, item=item))
            out.events.append(ev.OutputItemDone(response_id=self._response or "", output_index=n, item=item))
            self._last_item = item_id
        # Gemini now waits for the results: this response is over (the answer with them is the next one).
        out.events += self._end_response("completed")
        return out
