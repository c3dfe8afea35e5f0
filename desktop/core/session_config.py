"""Session configuration in the GA dialect: turn detection, audio formats, voice, instructions.

`SessionConfig.to_wire()` builds the `session` object of a `session.update`; `SessionConfig.from_wire()`
reads the effective session a server echoes in `session.created` / `session.updated`, tolerating
missing or odd fields (a server that omits a value leaves our default in place).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Union

from .pcm import PROTOCOL_RATE

Eagerness = Literal["low", "medium", "high", "auto"]
EAGERNESS_VALUES: tuple[str, ...] = ("low", "medium", "high", "auto")


@dataclass(frozen=True)
class ServerVad:
    """Voice activity detection on the server: a turn ends after `silence_duration_ms` of silence."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True

    type: Literal["server_vad"] = field(default="server_vad", init=False)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }
        if self.idle_timeout_ms is not None:
            wire["idle_timeout_ms"] = self.idle_timeout_ms
        return wire


@dataclass(frozen=True)
class SemanticVad:
    """A model on the server judges whether the user has finished; `eagerness` sets how soon."""

    eagerness: Eagerness = "auto"
    create_response: bool = True
    interrupt_response: bool = True

    type: Literal["semantic_vad"] = field(default="semantic_vad", init=False)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "semantic_vad",
            "eagerness": self.eagerness,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


@dataclass(frozen=True)
class ManualTurns:
    """No turn detection (`turn_detection: null`): the client commits the buffer and asks for responses."""

    type: Literal["manual"] = field(default="manual", init=False)

    def to_wire(self) -> None:
        return None


TurnDetection = Union[ServerVad, SemanticVad, ManualTurns]

#: The turn-detection profiles users pick from: threshold / prefix padding ms / silence ms.
VAD_PROFILES: dict[str, ServerVad] = {
    "fast": ServerVad(threshold=0.6, prefix_padding_ms=200, silence_duration_ms=300),
    "balanced": ServerVad(threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500),
    "patient": ServerVad(threshold=0.4, prefix_padding_ms=400, silence_duration_ms=800),
    "noisy": ServerVad(threshold=0.7, prefix_padding_ms=300, silence_duration_ms=600),
}


def _num(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _int(value: Any, default: int | None) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def turn_detection_from_wire(value: Any) -> TurnDetection:
    """Read a `turn_detection` object; None (JSON null) is manual. Unknown shapes fall back to server VAD."""
    if value is None:
        return ManualTurns()
    if not isinstance(value, dict):
        return ServerVad()
    kind = value.get("type")
    if kind == "semantic_vad":
        eagerness = value.get("eagerness")
        return SemanticVad(
            eagerness=eagerness if eagerness in EAGERNESS_VALUES else "auto",
            create_response=_bool(value.get("create_response"), True),
            interrupt_response=_bool(value.get("interrupt_response"), True),
        )
    if kind == "none":  # not a GA value, but some tutorials' servers send it
        return ManualTurns()
    d = ServerVad()
    return ServerVad(
        threshold=_num(value.get("threshold"), d.threshold),
        prefix_padding_ms=_int(value.get("prefix_padding_ms"), d.prefix_padding_ms) or 0,
        silence_duration_ms=_int(value.get("silence_duration_ms"), d.silence_duration_ms) or 0,
        idle_timeout_ms=_int(value.get("idle_timeout_ms"), None),
        create_response=_bool(value.get("create_response"), True),
        interrupt_response=_bool(value.get("interrupt_response"), True),
    )


@dataclass(frozen=True)
class SessionConfig:
    """What Parley asks of a realtime session."""

    instructions: str | None = None
    voice: str | None = None
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetection = ServerVad()
    #: None: not sent; "": sent as null (no transcripts of the user's speech).
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    transcription_language: str | None = None
    #: None: not sent (the server's default); "off": sent as null, which turns the server's filter off.
    noise_reduction: Literal["near_field", "far_field", "off"] | None = None
    model: str | None = None
    #: Speaking speed of the answers (GA `audio.output.speed`, 0.25-1.5); None: not sent.
    speed: float | None = None
    #: Function tools, each the wire object ({type: "function", name, description, parameters}); None: not
    #: sent. An empty tuple is sent as [] (it removes the tools an earlier update gave).
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | None = None

    def with_turn_detection(self, turn_detection: TurnDetection) -> "SessionConfig":
        return replace(self, turn_detection=turn_detection)

    def to_wire(self) -> dict[str, Any]:
        """The `session` object of a GA `session.update`."""
        audio_format = {"type": "audio/pcm", "rate": PROTOCOL_RATE}
        audio_in: dict[str, Any] = {
            "format": audio_format,
            "turn_detection": self.turn_detection.to_wire(),
        }
        if self.transcription_model:
            transcription: dict[str, Any] = {"model": self.transcription_model}
            if self.transcription_language:
                transcription["language"] = self.transcription_language
            audio_in["transcription"] = transcription
        elif self.transcription_model == "":  # "" (not None): turn the server's transcription off
            audio_in["transcription"] = None
        if self.noise_reduction == "off":
            audio_in["noise_reduction"] = None
        elif self.noise_reduction:
            audio_in["noise_reduction"] = {"type": self.noise_reduction}
        audio_out: dict[str, Any] = {"format": dict(audio_format)}
        if self.voice:
            audio_out["voice"] = self.voice
        if self.speed is not None:
            audio_out["speed"] = float(self.speed)
        session: dict[str, Any] = {
            "type": "realtime",
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_in, "output": audio_out},
        }
        if self.instructions is not None:
            session["instructions"] = self.instructions
        if self.model:
            session["model"] = self.model
        if self.tools is not None:
            session["tools"] = [dict(t) for t in self.tools]
        if self.tool_choice is not None:
            session["tool_choice"] = self.tool_choice
        return session

    @classmethod
    def from_wire(cls, session: Any) -> "SessionConfig":
        """The effective configuration a server reports. Tolerant of missing and malformed fields."""
        if not isinstance(session, dict):
            return cls()
        audio = session.get("audio") if isinstance(session.get("audio"), dict) else {}
        audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
        audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
        transcription = audio_in.get("transcription") if isinstance(audio_in.get("transcription"), dict) else None
        noise = audio_in.get("noise_reduction") if isinstance(audio_in.get("noise_reduction"), dict) else None
        noise_off = "noise_reduction" in audio_in and audio_in["noise_reduction"] is None
        speed = audio_out.get("speed")
        modalities = session.get("output_modalities")
        voice = audio_out.get("voice")
        return cls(
            instructions=session.get("instructions") if isinstance(session.get("instructions"), str) else None,
            voice=voice if isinstance(voice, str) else None,
            output_modalities=tuple(m for m in modalities if isinstance(m, str))
            if isinstance(modalities, list)
            else ("audio",),
            turn_detection=turn_detection_from_wire(audio_in.get("turn_detection"))
            if "turn_detection" in audio_in
            else ServerVad(),
            transcription_model=transcription.get("model") if transcription
            else ("" if "transcription" in audio_in and audio_in["transcription"] is None else None),
            transcription_language=transcription.get("language") if transcription else None,
            noise_reduction=noise.get("type") if noise and noise.get("type") in ("near_field", "far_field")
            else ("off" if noise_off else None),
            model=session.get("model") if isinstance(session.get("model"), str) else None,
            speed=float(speed) if isinstance(speed, (int, float)) and not isinstance(speed, bool) else None,
            tools=tuple(t for t in session["tools"] if isinstance(t, dict)) if isinstance(session.get("tools"), list) else None,
            tool_choice=session.get("tool_choice") if isinstance(session.get("tool_choice"), str) else None,
        )


def describe_turn_detection(td: TurnDetection) -> str:
    """One line for the status bar and logs."""
    if isinstance(td, ServerVad):
        return f"server VAD {td.threshold:.2f} / {td.prefix_padding_ms} ms / {td.silence_duration_ms} ms"
    if isinstance(td, SemanticVad):
        return f"semantic VAD ({td.eagerness})"
    return "manual turns"
