"""What the assistant is told and how it sounds: instructions, voice, speaking speed, input noise reduction.

The settings a voice-agent builder changes most while trying a model, kept apart from turn detection. Qt-free:
persisted as the "agent" key of the settings file, applied to the session with `session.update`.

A blank field means "the server's own default". Parley does not know those defaults before the server
says them, so a blank field is not sent at first; once `session.created` has told them (`server_defaults`),
clearing a field sends the server's value back, so that the default really returns.

A session keeps its voice once it has spoken (the Realtime API refuses a voice change after any assistant
audio). `RealtimeClient` then leaves the voice out of its updates; the requested voice is used by the next
session (after a reconnect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from .session_config import SessionConfig

__all__ = ["AgentSettings", "OPENAI_VOICES", "SPEED_MIN", "SPEED_MAX", "NOISE_REDUCTION_CHOICES", "TRANSCRIPTION_MODELS", "ANSWER_MODES",
           "describe_agent"]

#: The GA API's built-in voices (realtime-event-shapes: `audio.output.voice`); marin and cedar first, as
#: OpenAI recommends them for gpt-realtime.
OPENAI_VOICES = ("marin", "cedar", "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")
SPEED_MIN, SPEED_MAX = 0.25, 1.5
#: Stored value -> label. "default" sends nothing; "off" turns the server's filter off.
NOISE_REDUCTION_CHOICES = {
    "default": "Server default",
    "off": "Off",
    "near_field": "Near field (headset, laptop microphone)",
    "far_field": "Far field (room or conference microphone)",
}
MAX_INSTRUCTIONS_CHARS = 32_000
#: Transcription models offered for the user's speech (the GA list's common ones); "off" sends null.
TRANSCRIPTION_MODELS = ("gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")
ANSWER_MODES = {"audio": "Voice (and its transcript)", "text": "Text only (no audio tokens)"}


@dataclass(frozen=True)
class AgentSettings:
    instructions: str = ""  # blank: the server's default instructions
    voice: str = ""  # blank: the server's default voice
    speed: float = 1.0
    noise_reduction: str = "default"  # a key of NOISE_REDUCTION_CHOICES
    answer_mode: str = "audio"  # a key of ANSWER_MODES (output_modalities)
    transcription: str = ""  # blank: Parley's default model; "off": no transcripts; else a model name
    language: str = ""  # ISO-639-1 hint for transcription ("en"); blank: detected

    def session_config(self, base: SessionConfig, server_defaults: SessionConfig | None = None) -> SessionConfig:
        """`base` (turn detection, transcription, model…) with these settings applied."""
        defaults = server_defaults or SessionConfig()
        instructions = self.instructions.strip() or None
        if instructions is None:
            instructions = defaults.instructions if server_defaults is not None else None
        voice = self.voice.strip() or defaults.voice
        if math.isclose(self.speed, 1.0) and (defaults.speed is None or math.isclose(defaults.speed, 1.0)):
            speed = defaults.speed  # 1.0 is every server's default: send it only when the server told it
        else:
            speed = self.speed
        noise = None if self.noise_reduction == "default" else self.noise_reduction
        if noise is None and server_defaults is not None:
            noise = defaults.noise_reduction
        modalities = ("text",) if self.answer_mode == "text" else ("audio",)
        if self.transcription == "off":
            model: str | None = ""
        else:
            model = self.transcription.strip() or SessionConfig.transcription_model
        language = self.language.strip().lower() or None
        return replace(base, instructions=instructions, voice=voice, speed=speed, noise_reduction=noise,  # type: ignore[arg-type]
                       output_modalities=modalities, transcription_model=model, transcription_language=language)

    # -- persistence
    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "AgentSettings":
        """Tolerant: unknown keys ignored, wrong types and out-of-range values fall back to defaults."""
        base = cls()
        if not isinstance(data, dict):
            return base
        values: dict[str, Any] = {}
        text = data.get("instructions")
        if isinstance(text, str):
            values["instructions"] = text[:MAX_INSTRUCTIONS_CHARS]
        voice = data.get("voice")
        if isinstance(voice, str) and len(voice) <= 100:
            values["voice"] = voice.strip()
        speed = data.get("speed")
        if isinstance(speed, (int, float)) and not isinstance(speed, bool) and SPEED_MIN <= speed <= SPEED_MAX:
            values["speed"] = float(speed)
        noise = data.get("noise_reduction")
        if isinstance(noise, str) and noise in NOISE_REDUCTION_CHOICES:
            values["noise_reduction"] = noise
        mode = data.get("answer_mode")
        if isinstance(mode, str) and mode in ANSWER_MODES:
            values["answer_mode"] = mode
        model = data.get("transcription")
        if isinstance(model, str) and len(model) <= 64:
            values["transcription"] = model.strip()
        language = data.get("language")
        if isinstance(language, str) and len(language.strip()) <= 8:
            values["language"] = language.strip()
        return replace(base, **values)


def describe_agent(config: SessionConfig | None) -> str:
    """One line of what a session uses (for the dock and logs): voice, speed, instructions, noise reduction."""
    if config is None:
        return "not connected"
    parts = [f"voice {config.voice or 'default'}"]
    parts.append(f"speed {config.speed:.2f}×" if config.speed is not None else "speed default")
    if config.instructions is None:
        parts.append("instructions: default")
    else:
        words = len(config.instructions.split())
        parts.append(f"instructions: {words} word{'s' if words != 1 else ''}" if words else "instructions: none")
    noise = config.noise_reduction
    parts.append("noise reduction " + ({"near_field": "near field", "far_field": "far field"}.get(noise or "", noise or "default")))
    if "audio" not in config.output_modalities:
        parts.append("text answers")
    if config.transcription_model == "":
        parts.append("no transcription")
    elif config.transcription_model:
        parts.append(f"transcription {config.transcription_model}"
                     + (f" ({config.transcription_language})" if config.transcription_language else ""))
    return " · ".join(parts)
