"""Function tools for the offline engine: validating definitions, and a toy rule for calling them.

The real Realtime API lets a model decide, from the conversation, whether to call one of the session's
function tools and with which arguments. The offline engine has no model, so `RuleBrain` uses the rules
below instead. They are a **toy stand-in for a model**, good enough for a voice-agent builder to exercise
the tool flow (call, output, spoken answer) offline and for tests; they understand nothing:

- Which tool (`choose_tool`): a tool is a candidate when a word of its name (split on `_`, `-` and
  camelCase, without generic verbs such as get/set/fetch/lookup/find/check/query) or a salient word of
  its description (5 letters or more, not a stop word) appears in the user's text, case-insensitively and
  allowing simple plural and -ing endings. The tool with the most such words wins; on a tie, the first
  defined. `tool_choice` "none" never calls, "required" calls the best tool or else the first one, and a
  named choice calls that tool.
- Which arguments (`extract_arguments`), from the tool's JSON schema `properties`: a string property
  named like a place (location, city, where, ...) takes the phrase after " in " / " for " / " at " / " to "
  (title-cased, up to punctuation or a word like "today"); query-like names (query, text, question, ...)
  take the user's whole text; integers and numbers take the first number in the text; an `enum` takes the
  first of its values the text mentions; booleans are false. Required properties are always present (the
  user's text for strings, 0 for numbers, the first value of an enum, false, [] or {}); optional ones only
  when something was found.
- What to say about a tool's output (`describe_output`): a JSON object's top-level keys and values, briefly;
  any other output as it is; capped in length.

Pure functions over the wire dicts, so every rule is testable without a socket.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: The API's rule for a function's name.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_CHOICE_MODES = ("auto", "none", "required")
#: A spoken summary of a tool's output is cut at about this many characters.
MAX_SPOKEN_OUTPUT = 240

#: Verbs that start many tool names and say nothing about which tool is meant.
GENERIC_VERBS = frozenset({"get", "set", "fetch", "lookup", "look", "up", "find", "check", "query", "retrieve", "do", "run", "call"})
#: Words that point at no tool in particular: common English words, and the words tool descriptions share.
STOP_WORDS = frozenset("""
a an the and or but if of to in on at by for with from into onto about above after again against all also am are as be
been before being below between both can could did do does doing down during each few further had has have having he
her here hers him his how i is it its itself just me more most my no nor not now off once only other our out over own
same she should so some such than that their theirs them then there these they this those through too under until up
very was we were what when where which while who whom why will would you your yours across along among another around
because behind beneath beside beyond either every might never please rather since thing things though whose within
without using value values current specified specific provided information return returns returned based function
parameter parameters optional required given certain string number object
""".split())
#: String properties filled with a place named in the text.
PLACE_NAMES = frozenset({"location", "city", "place", "where", "destination", "address", "town", "country", "region", "venue", "locale"})
#: String properties filled with the user's whole text.
TEXT_NAMES = frozenset({"query", "text", "question", "message", "topic", "prompt", "q", "search", "term", "terms", "keywords",
                        "input", "content", "subject", "request", "body", "note", "utterance"})
#: Words that end a place phrase ("in Paris today" -> "Paris").
_PHRASE_ENDS = frozenset({"today", "tomorrow", "tonight", "now", "right", "please", "this", "next", "later", "yesterday", "soon",
                          "and", "then", "but", "or", "so", "because", "if", "when", "with", "on", "at", "in", "for", "to",
                          "from", "by", "during", "is", "are", "was", "will", "would"})
#: First words after " in " / " to " ... that start no place ("in the morning", "to know").
_NOT_PLACES = frozenset({"morning", "afternoon", "evening", "night", "weekend", "minute", "minutes", "hour",
                         "hours", "day", "days", "week", "weeks", "moment", "while", "me", "you", "us", "him", "her", "them",
                         "it", "my", "your", "know", "see", "do", "be", "go", "get", "find", "make", "have"})
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "hundred": 100,
}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


class ToolSpecError(ValueError):
    """A tool definition or tool choice the API would refuse; `param` names the offending field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


# ----------------------------------------------------------------------------- validation


def check_tools(tools: Any, param: str) -> list[dict[str, Any]]:
    """The tools as the session stores them (function tools only); raises ToolSpecError like the API would."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ToolSpecError(f"Invalid type for '{param}': expected an array of tools.", param)
    checked: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"{param}[{i}]"
        if not isinstance(tool, dict):
            raise ToolSpecError(f"Invalid type for '{where}': expected an object.", where)
        if tool.get("type", "function") != "function":
            raise ToolSpecError(f"Invalid value for '{where}.type': this engine supports only 'function' tools.", f"{where}.type")
        for key in tool:
            if key not in ("type", "name", "description", "parameters"):
                raise ToolSpecError(f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}")
        name = tool.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ToolSpecError(
                f"Invalid value for '{where}.name': expected a string of 1 to 64 letters, digits, underscores or dashes.", f"{where}.name"
            )
        if name in seen:
            raise ToolSpecError(f"Invalid value for '{where}.name': the tool '{name}' is defined twice.", f"{where}.name")
        seen.add(name)
        description = tool.get("description")
        if description is not None and not isinstance(description, str):
            raise ToolSpecError(f"Invalid type for '{where}.description': expected a string.", f"{where}.description")
        parameters = tool.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise ToolSpecError(f"Invalid type for '{where}.parameters': expected a JSON schema object.", f"{where}.parameters")
            properties = parameters.get("properties")
            if properties is not None and (not isinstance(properties, dict) or any(not isinstance(p, dict) for p in properties.values())):
                raise ToolSpecError(f"Invalid value for '{where}.parameters.properties': expected an object of schemas.",
                                    f"{where}.parameters.properties")
            required = parameters.get("required")
            if required is not None and (not isinstance(required, list) or any(not isinstance(r, str) for r in required)):
                raise ToolSpecError(f"Invalid value for '{where}.parameters.required': expected an array of names.",
                                    f"{where}.parameters.required")
        entry: dict[str, Any] = {"type": "function", "name": name}
        if description is not None:
            entry["description"] = description
        if parameters is not None:
            entry["parameters"] = parameters
        checked.append(entry)
    return checked


def check_tool_choice(choice: Any, tools: list[dict[str, Any]], param: str) -> str | dict[str, Any]:
    """The tool choice as stored; a named choice must name one of `tools`. Raises ToolSpecError."""
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE_MODES:
            raise ToolSpecError(f"Invalid value for '{param}': expected 'auto', 'none', 'required' or a function.", param)
        return choice
    if not isinstance(choice, dict):
        raise ToolSpecError(f"Invalid type for '{param}': expected a string or an object.", param)
    if choice.get("type") != "function":
        raise ToolSpecError(f"Invalid value for '{param}.type': this engine supports only 'function'.", f"{param}.type")
    name = choice.get("name")
    if not isinstance(name, str):
        raise ToolSpecError(f"Missing required parameter: '{param}.name'.", f"{param}.name")
    if not any(tool["name"] == name for tool in tools):
        raise ToolSpecError(f"Invalid value for '{param}': it names the function '{name}', but no tool of that name is defined.", param)
    return {"type": "function", "name": name}


# ----------------------------------------------------------------------------- which tool


def split_name(name: str) -> list[str]:
    """"getWeather_forCity-now" -> ["get", "weather", "for", "city", "now"]."""
    words: list[str] = []
    for part in re.split(r"[_\-\s]+", name):
        words += re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)
    return [w.lower() for w in words]


def stem(word: str) -> str:
    """A crude stem so that "timers", "timing" and "timer"/"time" meet: plural and -ing endings, final e."""
    word = word.lower()
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def tool_words(tool: dict[str, Any]) -> set[str]:
    """The stems that point at `tool`: its name's words (no generic verbs) and its description's salient words."""
    words = {w for w in split_name(tool.get("name", "")) if w not in GENERIC_VERBS and w not in STOP_WORDS and len(w) >= 2}
    description = tool.get("description") or ""
    words |= {w for w in re.findall(r"[a-z]+", description.lower()) if len(w) >= 5 and w not in STOP_WORDS}
    return {stem(w) for w in words}


def match_count(tool: dict[str, Any], text: str) -> int:
    """How many of the tool's words the text mentions."""
    said = {stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())}
    return len(tool_words(tool) & said)


def choose_tool(tools: list[dict[str, Any]], tool_choice: str | dict[str, Any], text: str) -> dict[str, Any] | None:
    """The tool to call for a user turn saying `text`, or None to answer in words (see the module doc)."""
    if not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        return next((t for t in tools if t["name"] == tool_choice.get("name")), None)
    counts = [match_count(tool, text) for tool in tools]
    best = max(range(len(tools)), key=lambda i: (counts[i], -i))
    if counts[best] > 0:
        return tools[best]
    return tools[0] if tool_choice == "required" else None


# ----------------------------------------------------------------------------- which arguments


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return kind if isinstance(kind, str) else "string"


def _name_words(name: str) -> set[str]:
    return set(split_name(name))


def place_phrase(text: str) -> str | None:
    """The place after " in " / " for " / " at " / " to ", title-cased: "weather like in paris today?" -> "Paris".

    A phrase that starts with a capital letter in the text (a proper name, as transcripts write them) is
    preferred over the first one found."""
    candidates: list[tuple[bool, str]] = []
    for match in re.finditer(r"\b(?:in|for|at|to)\s+(?=([^.,;:!?]+))", text, re.IGNORECASE):
        words = match.group(1).split()
        while words and words[0].lower() in ("the", "a", "an"):
            words = words[1:]
        if not words or words[0].lower() in _NOT_PLACES or _NUMBER.fullmatch(words[0]):
            continue
        phrase: list[str] = []
        for word in words[:4]:
            if word.lower() in _PHRASE_ENDS:
                break
            phrase.append(word)
        if phrase:
            candidates.append((phrase[0][:1].isupper(), " ".join(phrase)))
    if not candidates:
        return None
    capitalized = [p for upper, p in candidates if upper]
    chosen = capitalized[0] if capitalized else candidates[0][1]
    return " ".join(w[:1].upper() + w[1:] for w in chosen.split())


def first_number(text: str) -> float | None:
    """The first number in the text, in digits ("12", "3.5") or as a small number word ("ten")."""
    match = _NUMBER.search(text)
    if match is None:
        return None
    token = match.group(0).lower()
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token.replace(",", ""))  # "1,000": a thousands separator


def _enum_value(values: list[Any], text: str) -> Any | None:
    low = text.lower()
    for value in values:
        if re.search(r"\b" + re.escape(str(value).lower()) + r"\b", low):
            return value
    return None


def _fallback(kind: str, text: str) -> Any:
    return {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}.get(kind, text)


def extract_arguments(tool: dict[str, Any], text: str) -> dict[str, Any]:
    """The arguments for calling `tool` about `text`, from its JSON schema (see the module doc)."""
    parameters = tool.get("parameters") or {}
    properties: dict[str, Any] = parameters.get("properties") or {}
    required = [r for r in parameters.get("required") or [] if isinstance(r, str)]
    text = " ".join(text.split())
    arguments: dict[str, Any] = {}
    for name, schema in properties.items():
        kind = _schema_type(schema)
        found: Any = None
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            found = _enum_value(schema["enum"], text)
            if found is None and name in required:
                found = schema["enum"][0]
        elif kind in ("integer", "number"):
            number = first_number(text)
            if number is not None:
                found = int(number) if kind == "integer" or number.is_integer() else number
        elif kind == "string":
            words = _name_words(name)
            if words & PLACE_NAMES:
                found = place_phrase(text)
            elif words & TEXT_NAMES and text:
                found = text
        if found is None and name in required:
            found = _fallback(kind, text)
        if found is not None:
            arguments[name] = found
    for name in required:
        if name not in arguments:  # required but not described: the user's text is the best guess
            arguments[name] = text
    return arguments


def arguments_json(arguments: dict[str, Any]) -> str:
    """Compact JSON, as a model writes a call's arguments."""
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def argument_deltas(arguments: str, pieces: int = 3) -> list[str]:
    """The arguments cut into a few deltas, as they would stream from a model (at least one, never empty)."""
    if not arguments:
        return [""]
    size = max(1, math.ceil(len(arguments) / pieces))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


# ----------------------------------------------------------------------------- speaking the output


def spoken_name(name: str) -> str:
    """"get_weather" -> "get weather": how a tool's name is said (a voice would read "_" aloud)."""
    return " ".join(split_name(name)) or name


def _spoken_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        shown = [_spoken_value(v) for v in value[:3]]
        more = f" and {len(value) - 3} more" if len(value) > 3 else ""
        return ", ".join(shown) + more if shown else "nothing"
    if isinstance(value, dict):
        return ", ".join(f"{_spoken_key(k)} {_spoken_value(v)}" for k, v in list(value.items())[:3])
    return str(value)


def _spoken_key(key: str) -> str:
    return " ".join(split_name(str(key))) or str(key)


def describe_output(name: str, output: str, limit: int = MAX_SPOKEN_OUTPUT) -> str:
    """One sentence about a tool's output: "get weather says: temperature 18, conditions sunny."."""
    who = spoken_name(name) if name else "The tool"
    output = output.strip()
    if not output:
        return f"{who} returned nothing."
    try:
        data = json.loads(output)
    except ValueError:
        data = output
    if isinstance(data, dict):
        body = ", ".join(f"{_spoken_key(k)} {_spoken_value(v)}".strip() for k, v in data.items()) or "nothing"
    else:
        body = _spoken_value(data)
    body = " ".join(body.split())
    if len(body) > limit:
        cut = body.rfind(" ", 0, limit)
        body = body[: cut if cut > 0 else limit].rstrip(" ,;:") + " and so on"
    return f"{who} says: {body.rstrip('.!?')}."
