"""The engine's session configuration: defaults, validation and merging of `session.update` (GA shape).

Pure functions over dicts, so the rules are testable without a socket.
"""

from __future__ import annotations

import copy
from typing import Any

from .tool_calls import ToolSpecError, check_tool_choice, check_tools

ENGINE_MODEL = "parley-offline"
DEFAULT_VOICE = "joe"

DEFAULT_SERVER_VAD: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}

#: semantic_vad is approximated by silence: how long a pause ends the turn at each eagerness.
#: (The real API's model waits up to ~2 s / 4 s / 8 s for an unfinished thought; we cannot judge meaning.)
SEMANTIC_SILENCE_MS = {"high": 500, "medium": 1000, "auto": 1000, "low": 2000}


class SessionUpdateError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def default_session(session_id: str) -> dict[str, Any]:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": ENGINE_MODEL,
        "output_modalities": ["audio"],
        "instructions": "You are Parley's offline engine. Be brief and honest about what you cannot do offline.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(DEFAULT_SERVER_VAD),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": DEFAULT_VOICE, "speed": 1.0},
        },
    }


def _check_format(fmt: Any, param: str) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise SessionUpdateError(f"Invalid type for '{param}': expected an object.", param)
    kind = fmt.get("type", "audio/pcm")
    if kind != "audio/pcm":
        raise SessionUpdateError(f"Invalid value for '{param}.type': this engine supports only 'audio/pcm'.", param)
    if fmt.get("rate", 24000) != 24000:
        raise SessionUpdateError(f"Invalid value for '{param}.rate': only 24000 is supported.", param)


def _check_turn_detection(td: Any) -> dict[str, Any] | None:
    param = "session.audio.input.turn_detection"
    if td is None:
        return None
    if not isinstance(td, dict):
        raise SessionUpdateError(f"Invalid type for '{param}': expected an object or null.", param)
    kind = td.get("type")
    if kind == "server_vad":
        merged = dict(DEFAULT_SERVER_VAD)
        for key, value in td.items():
            if key not in merged:
                raise SessionUpdateError(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}")
            merged[key] = value
        thr = merged["threshold"]
        if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not 0.0 <= thr <= 1.0:
            raise SessionUpdateError(f"Invalid value for '{param}.threshold': expected a number from 0 to 1.", f"{param}.threshold")
        for key in ("prefix_padding_ms", "silence_duration_ms"):
            v = merged[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > 10_000:
                raise SessionUpdateError(f"Invalid value for '{param}.{key}': expected an integer from 0 to 10000.", f"{param}.{key}")
        idle = merged["idle_timeout_ms"]
        if idle is not None and (not isinstance(idle, int) or isinstance(idle, bool) or not 5000 <= idle <= 30000):
            raise SessionUpdateError(f"Invalid value for '{param}.idle_timeout_ms': expected 5000 to 30000 or null.", f"{param}.idle_timeout_ms")
        for key in ("create_response", "interrupt_response"):
            if not isinstance(merged[key], bool):
                raise SessionUpdateError(f"Invalid type for '{param}.{key}': expected a boolean.", f"{param}.{key}")
        merged["threshold"] = float(thr)
        return merged
    if kind == "semantic_vad":
        merged = {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
        for key, value in td.items():
            if key not in merged:
                raise SessionUpdateError(f"Unknown parameter: '{param}.{key}'.", f"{param}.{key}")
            merged[key] = value
        if merged["eagerness"] not in SEMANTIC_SILENCE_MS:
            raise SessionUpdateError(f"Invalid value for '{param}.eagerness': expected low, medium, high or auto.", f"{param}.eagerness")
        return merged
    raise SessionUpdateError(
        f"Invalid value for '{param}.type': expected 'server_vad' or 'semantic_vad' (use null for manual turns).",
        f"{param}.type",
    )


def merge_session_update(current: dict[str, Any], update: Any) -> dict[str, Any]:
    """The effective session after `session.update` with `update`; raises SessionUpdateError."""
    if not isinstance(update, dict):
        raise SessionUpdateError("Invalid type for 'session': expected an object.", "session")
    kind = update.get("type")
    if kind not in ("realtime", None):
        raise SessionUpdateError(
            f"Invalid value for 'session.type': this engine supports 'realtime' sessions, not {kind!r}.", "session.type"
        )
    merged = copy.deepcopy(current)
    for key in ("instructions",):
        if key in update:
            if not isinstance(update[key], str):
                raise SessionUpdateError(f"Invalid type for 'session.{key}': expected a string.", f"session.{key}")
            merged[key] = update[key]
    if "output_modalities" in update:
        mods = update["output_modalities"]
        if not isinstance(mods, list) or not mods or any(m not in ("audio", "text") for m in mods):
            raise SessionUpdateError("Invalid value for 'session.output_modalities'.", "session.output_modalities")
        merged["output_modalities"] = list(mods)
    for key in ("model", "max_output_tokens", "tracing", "truncation", "include", "prompt"):
        if key in update:
            merged[key] = update[key] if key != "model" else ENGINE_MODEL
    if "tools" in update or "tool_choice" in update:
        try:
            if "tools" in update:
                merged["tools"] = check_tools(update["tools"], "session.tools")
            # A named choice must name a tool of the resulting session, also when only the tools changed.
            choice = update["tool_choice"] if "tool_choice" in update else merged["tool_choice"]
            merged["tool_choice"] = check_tool_choice(choice, merged["tools"], "session.tool_choice")
        except ToolSpecError as exc:
            raise SessionUpdateError(str(exc), exc.param) from None
    audio = update.get("audio")
    if audio is not None:
        if not isinstance(audio, dict):
            raise SessionUpdateError("Invalid type for 'session.audio': expected an object.", "session.audio")
        a_in = audio.get("input")
        if a_in is not None:
            if not isinstance(a_in, dict):
                raise SessionUpdateError("Invalid type for 'session.audio.input'.", "session.audio.input")
            target = merged["audio"]["input"]
            if "format" in a_in:
                _check_format(a_in["format"], "session.audio.input.format")
                target["format"] = {"type": "audio/pcm", "rate": 24000}
            if "turn_detection" in a_in:
                target["turn_detection"] = _check_turn_detection(a_in["turn_detection"])
            if "transcription" in a_in:
                tr = a_in["transcription"]
                if tr is not None and not isinstance(tr, dict):
                    raise SessionUpdateError("Invalid type for 'session.audio.input.transcription'.", "session.audio.input.transcription")
                target["transcription"] = dict(tr) if tr else None
            if "noise_reduction" in a_in:
                target["noise_reduction"] = a_in["noise_reduction"]
        a_out = audio.get("output")
        if a_out is not None:
            if not isinstance(a_out, dict):
                raise SessionUpdateError("Invalid type for 'session.audio.output'.", "session.audio.output")
            target = merged["audio"]["output"]
            if "format" in a_out:
                _check_format(a_out["format"], "session.audio.output.format")
            if "voice" in a_out:
                # One offline voice: any requested voice is spoken by it (and reported as such).
                target["voice"] = DEFAULT_VOICE
            if "speed" in a_out:
                speed = a_out["speed"]
                if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 1.5:
                    raise SessionUpdateError("Invalid value for 'session.audio.output.speed': expected 0.25 to 1.5.", "session.audio.output.speed")
                target["speed"] = float(speed)
    return merged


def vad_parameters(session: dict[str, Any]) -> tuple[float, int, int] | None:
    """(threshold, prefix_padding_ms, silence_duration_ms) of the session's turn detection, or None for manual."""
    td = session["audio"]["input"]["turn_detection"]
    if td is None:
        return None
    if td["type"] == "semantic_vad":
        return 0.5, 300, SEMANTIC_SILENCE_MS[td["eagerness"]]
    return td["threshold"], td["prefix_padding_ms"], td["silence_duration_ms"]
