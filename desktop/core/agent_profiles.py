"""Named agent profiles: instructions, voice and the rest, tools, and turn detection, saved together.

A builder tries several agents ("support bot", "booking agent") against the same model, or hands one to a
teammate: a profile switches all of it at once, and exports to a JSON file that another Parley imports.
Qt-free; stored under the "profiles" key of the settings file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import turn_taking as tt
from .agent_settings import AgentSettings
from .tools import ToolSettings

__all__ = ["AgentProfile", "ProfileProblem", "FORMAT", "profiles_from_store", "profiles_to_store"]

FORMAT = "parley-agent/1"
MAX_NAME = 60
MAX_FILE_BYTES = 1_000_000


class ProfileProblem(ValueError):
    """A file or name that is not a usable profile; the message says why."""


@dataclass(frozen=True)
class AgentProfile:
    name: str
    agent: AgentSettings
    tools: ToolSettings
    turn: tt.TurnSettings

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "agent": self.agent.to_dict(), "tools": self.tools.to_dict(),
                "turn": self.turn.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, name: str | None = None) -> "AgentProfile":
        """Raises ProfileProblem when `data` is not a Parley agent profile. Parts are read tolerantly (as the
        settings file is): an unknown or damaged value falls back to its default."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProfileProblem(f"This is not a Parley agent profile (no \"format\": \"{FORMAT}\").")
        chosen = clean_name(name if name is not None else str(data.get("name") or ""))
        return cls(chosen, AgentSettings.from_dict(data.get("agent")), ToolSettings.from_dict(data.get("tools")),
                   tt.TurnSettings.from_dict(data.get("turn")))

    @classmethod
    def from_json(cls, text: str, fallback_name: str = "Imported agent") -> "AgentProfile":
        if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
            raise ProfileProblem("The file is too large to be an agent profile (over 1 MB).")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProfileProblem(f"The file is not valid JSON ({exc}).") from None
        if isinstance(data, dict) and not str(data.get("name") or "").strip():
            return cls.from_dict(data, name=fallback_name)
        return cls.from_dict(data)


def clean_name(name: str) -> str:
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise ProfileProblem("A profile needs a name.")
    return name


def profiles_from_store(data: Any) -> dict[str, AgentProfile]:
    """The saved profiles by name; a damaged entry is left out, the rest kept."""
    out: dict[str, AgentProfile] = {}
    if not isinstance(data, list):
        return out
    for raw in data:
        try:
            profile = AgentProfile.from_dict(raw)
        except ProfileProblem:
            continue
        out[profile.name] = profile
    return out


def profiles_to_store(profiles: dict[str, AgentProfile]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in sorted(profiles.values(), key=lambda p: p.name.lower())]
