"""Function tools the assistant may call, and the results Parley answers them with. Qt-free.

A voice-agent builder defines a tool (name, description, JSON-schema parameters) and how Parley answers a
call: with a canned result (a JSON or text template: `{location}` is replaced by that argument's value), or
by asking the user to type the result. A canned result can wait `delay_ms` first, as a slow backend would (what
does the model say meanwhile; can the user talk over the wait?). The model's call arrives as a `function_call` item; Parley sends a
`function_call_output` item and, once the calling response is done, `response.create` so the model speaks
with the result (see `RealtimeClient.send_tool_output`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["ToolSpec", "ToolSettings", "ToolProblem", "parse_tool", "fill_result", "answer_for", "EXAMPLE_TOOL",
           "MAX_DELAY_MS"]

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 32
MAX_TEXT = 16_000
MAX_DELAY_MS = 60_000


class ToolProblem(ValueError):
    """A tool definition that cannot be sent; the message says what to fix."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters_json: str = '{"type": "object", "properties": {}}'  # as the user wrote it (kept verbatim)
    #: The canned result (a template); blank: ask the user for each call.
    result: str = ""
    #: How long a canned result takes to come back (a slow backend), in ms.
    delay_ms: int = 0

    @property
    def parameters(self) -> dict[str, Any]:
        return json.loads(self.parameters_json)

    def to_wire(self) -> dict[str, Any]:
        return {"type": "function", "name": self.name, "description": self.description, "parameters": self.parameters}


EXAMPLE_TOOL = ToolSpec(
    name="get_weather",
    description="The current weather in a city.",
    parameters_json=json.dumps({
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    }, indent=2),
    result='{"location": "{location}", "temperature": 18, "conditions": "sunny"}',
)


def parse_tool(name: str, description: str, parameters_json: str, result: str, delay_ms: Any = 0) -> ToolSpec:
    """A tool from what the user typed; raises ToolProblem saying what is wrong."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise ToolProblem("A tool name is 1 to 64 letters, digits, '_' or '-' (no spaces).")
    text = parameters_json.strip() or '{"type": "object", "properties": {}}'
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise ToolProblem(f"The parameters are not valid JSON: {exc}.") from None
    if not isinstance(schema, dict) or schema.get("type", "object") != "object":
        raise ToolProblem('The parameters must be a JSON schema object: {"type": "object", "properties": {...}}.')
    if "properties" in schema and not isinstance(schema["properties"], dict):
        raise ToolProblem('"properties" must be an object that maps each parameter name to its schema.')
    required = schema.get("required", [])
    if not isinstance(required, list) or any(r not in (schema.get("properties") or {}) for r in required):
        raise ToolProblem('"required" must list parameter names defined in "properties".')
    if len(description) > MAX_TEXT or len(result) > MAX_TEXT:
        raise ToolProblem(f"A description or result is limited to {MAX_TEXT:,} characters.")
    try:
        delay = int(delay_ms or 0)
    except (TypeError, ValueError):
        raise ToolProblem("The result's delay is a whole number of milliseconds.") from None
    if not 0 <= delay <= MAX_DELAY_MS:
        raise ToolProblem(f"The result's delay is 0 to {MAX_DELAY_MS:,} ms.")
    return ToolSpec(name, description.strip(), text, result, delay)


def fill_result(template: str, arguments: str | None) -> str:
    """The canned result with `{argument}` placeholders replaced by the call's values.

    Only `{word}` placeholders naming an argument are replaced, so JSON braces are left alone; string values go
    in as they are, others as JSON. Arguments that are not a JSON object leave the template unchanged."""
    try:
        args = json.loads(arguments or "{}")
    except ValueError:
        return template
    if not isinstance(args, dict):
        return template

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in args:
            return match.group(0)
        v = args[key]
        return v if isinstance(v, str) else json.dumps(v)

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", value, template)


def answer_for(settings: "ToolSettings", name: str, arguments: str) -> str | None:
    """What Parley answers a call of tool `name` with: its canned result, filled; an error for a tool it does
    not define (the model must hear that, not wait forever); None when the user is to type the result."""
    tool = settings.find(name)
    if tool is None:
        return json.dumps({"error": f"Parley has no tool named {name!r}."})
    if not tool.result.strip():
        return None
    return fill_result(tool.result, arguments)


@dataclass(frozen=True)
class ToolSettings:
    tools: tuple[ToolSpec, ...] = ()
    #: "auto" (the model decides), "none" (tools defined but not used), "required" (always call one).
    choice: str = "auto"

    def find(self, name: str | None) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def with_tool(self, tool: ToolSpec, replacing: str | None = None) -> "ToolSettings":
        """This set with `tool` added, or in place of the tool named `replacing`."""
        if replacing is not None and self.find(replacing) is not None:
            tools = tuple(tool if t.name == replacing else t for t in self.tools)
        else:
            tools = self.tools + (tool,)
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ToolProblem(f"There is already a tool named {tool.name!r}.")
        if len(tools) > MAX_TOOLS:
            raise ToolProblem(f"At most {MAX_TOOLS} tools.")
        return replace(self, tools=tools)

    def without(self, name: str) -> "ToolSettings":
        return replace(self, tools=tuple(t for t in self.tools if t.name != name))

    def wire_tools(self) -> tuple[dict[str, Any], ...]:
        return tuple(t.to_wire() for t in self.tools)

    # -- persistence
    def to_dict(self) -> dict[str, Any]:
        return {"choice": self.choice, "tools": [{"name": t.name, "description": t.description,
                                                   "parameters": t.parameters_json, "result": t.result,
                                                   **({"delay_ms": t.delay_ms} if t.delay_ms else {})}
                                                  for t in self.tools]}

    @classmethod
    def from_dict(cls, data: Any) -> "ToolSettings":
        """Tolerant: a stored tool that no longer parses is left out; the rest are kept."""
        if not isinstance(data, dict):
            return cls()
        out = cls(choice=data.get("choice") if data.get("choice") in ("auto", "none", "required") else "auto")
        for raw in data.get("tools") or []:
            if not isinstance(raw, dict):
                continue
            try:
                tool = parse_tool(str(raw.get("name", "")), str(raw.get("description", "")),
                                  str(raw.get("parameters", "")), str(raw.get("result", "")), raw.get("delay_ms", 0))
                out = out.with_tool(tool)
            except ToolProblem:
                continue
        return out
