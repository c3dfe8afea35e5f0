"""The offline engine's toy rules for function tools (tool_calls), the brains' side of a tool call, and the
validation of tool definitions: pure functions, no socket, no models."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from desktop.engine.brain import BrainRequest, ContextMessage, RuleBrain, ToolCall
from desktop.engine.llm_brain import _ToolCallPieces, chat_messages, chat_tools
from desktop.engine.session_state import SessionUpdateError, default_session, merge_session_update
from desktop.engine.tool_calls import (
    ToolSpecError,
    argument_deltas,
    arguments_json,
    check_tool_choice,
    check_tools,
    choose_tool,
    describe_output,
    extract_arguments,
    first_number,
    place_phrase,
    split_name,
    stem,
)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location.",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"],
    },
}
TIMER = {"type": "function", "name": "set_timer", "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}}}
CURRENCY = {"type": "function", "name": "fx_1", "description": "Converts amounts between dollars and euros."}
STATUS = {"type": "function", "name": "get_status", "description": "Returns information about the user."}


def tool(name: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object", "properties": properties, "required": required or []}}


# ----------------------------------------------------------------------------- which tool


def test_names_split_on_underscores_dashes_and_camel_case_and_words_meet_by_stem():
    assert split_name("getWeather_forCity-now") == ["get", "weather", "for", "city", "now"]
    assert split_name("HTTPRequest2") == ["http", "request", "2"]
    assert stem("timers") == stem("timer") and stem("meeting") == stem("meet") and stem("timing") == stem("time")
    assert stem("boxes") == stem("box") and stem("bus") == "bus"


@pytest.mark.parametrize("text, tools, expected", [
    ("What's the weather like in Paris today?", [TIMER, WEATHER], "get_weather"),  # a word of the name
    ("How many euros is 20 dollars?", [WEATHER, CURRENCY], "fx_1"),  # salient words of the description
    ("Are any timers running?", [WEATHER, TIMER], "set_timer"),  # a plural
    ("Get me a coffee.", [STATUS], None),  # generic verbs ("get") do not count
    ("Some information about me?", [STATUS], None),  # nor stop words of the description
    ("What time is it?", [WEATHER, TIMER], None),
    ("Weather and timer, please.", [WEATHER, TIMER], "get_weather"),  # a tie: the first defined
    ("A timer for the weather, in dollars and euros.", [WEATHER, CURRENCY], "fx_1"),  # the most words
])
def test_auto_calls_the_tool_the_words_point_at(text, tools, expected):
    chosen = choose_tool(tools, "auto", text)
    assert (chosen["name"] if chosen else None) == expected


def test_tool_choice_none_required_and_named():
    text = "What's the weather like in Paris?"
    assert choose_tool([WEATHER], "none", text) is None
    assert choose_tool([], "required", text) is None
    assert choose_tool([TIMER, WEATHER], "required", "Hello.") is TIMER  # nothing matches: the first
    assert choose_tool([TIMER, WEATHER], "required", text) is WEATHER  # the best match
    assert choose_tool([TIMER, WEATHER], {"type": "function", "name": "set_timer"}, text) is TIMER


# ----------------------------------------------------------------------------- which arguments


@pytest.mark.parametrize("text, expected", [
    ("What's the weather like in Paris today?", {"location": "Paris"}),
    ("weather in new york in fahrenheit please", {"location": "New York", "unit": "fahrenheit"}),
    ("I want to know the weather in Paris", {"location": "Paris"}),  # "to know" is no place
    ("Weather in the morning in Rio?", {"location": "Rio"}),
    ("Is it cold at the Eiffel Tower, in Celsius?", {"location": "Eiffel Tower", "unit": "celsius"}),
    ("What is the weather like today?", {"location": "What is the weather like today?"}),  # required: the user's text
])
def test_a_place_is_the_phrase_after_a_preposition(text, expected):
    assert extract_arguments(WEATHER, text) == expected


def test_arguments_follow_the_schema_types_and_required_ones_are_always_there():
    numbers = tool("n", {"count": {"type": "integer"}, "ratio": {"type": "number"}}, ["count"])
    assert extract_arguments(numbers, "Give me 12 of them.") == {"count": 12, "ratio": 12}
    assert extract_arguments(numbers, "Scale by 3.5 please.") == {"count": 3, "ratio": 3.5}
    assert extract_arguments(numbers, "Set a timer for ten minutes.") == {"count": 10, "ratio": 10}
    assert extract_arguments(numbers, "No number here.") == {"count": 0}  # optional ones only when found
    flags = tool("f", {"loud": {"type": "boolean"}, "quiet": {"type": "boolean"}}, ["loud"])
    assert extract_arguments(flags, "Make it loud!") == {"loud": False}
    modes = tool("m", {"mode": {"type": "string", "enum": ["fast", "slow"]}, "size": {"enum": ["S", "M"]}}, ["mode"])
    assert extract_arguments(modes, "Nothing said.") == {"mode": "fast"}
    assert extract_arguments(modes, "Go slow, size m.") == {"mode": "slow", "size": "M"}
    texts = tool("search_notes", {"query": {"type": "string"}, "topicName": {"type": ["string", "null"]}, "tag": {"type": "string"}})
    said = "Find my notes about  gardening."
    assert extract_arguments(texts, said) == {"query": "Find my notes about gardening.", "topicName": "Find my notes about gardening."}
    undescribed = {"type": "function", "name": "u", "parameters": {"type": "object", "required": ["anything"]}}
    assert extract_arguments(undescribed, "Hi.") == {"anything": "Hi."}
    assert extract_arguments({"type": "function", "name": "bare"}, "Hi.") == {}
    shapes = tool("s", {"items": {"type": "array"}, "options": {"type": "object"}}, ["items", "options"])
    assert extract_arguments(shapes, "Hi.") == {"items": [], "options": {}}


def test_small_helpers():
    assert place_phrase("Book a flight to london, please") == "London"
    assert place_phrase("Remind me in 5 minutes.") is None
    assert first_number("It costs -4.5 euros") == -4.5 and first_number("1,500 m") == 1500 and first_number("twenty past") == 20 and first_number("none") is None
    arguments = arguments_json({"location": "Zürich", "n": 1})
    assert arguments == '{"location":"Zürich","n":1}'
    deltas = argument_deltas(arguments)
    assert "".join(deltas) == arguments and 1 < len(deltas) <= 3
    assert argument_deltas("{}") == ["{", "}"] and argument_deltas("") == [""]


# ----------------------------------------------------------------------------- speaking an output


def test_an_output_is_described_briefly():
    weather = json.dumps({"location": "Paris", "temperature": 18, "conditions": "sunny"})
    assert describe_output("get_weather", weather) == "get weather says: location Paris, temperature 18, conditions sunny."
    assert describe_output("getWeather", '{"feels_like": 16.5, "rain": false, "alerts": null}') == \
        "get weather says: feels like 16.5, rain no, alerts none."
    assert describe_output("list_rooms", '{"rooms": ["a", "b", "c", "d", "e"], "where": {"floor": 2}}') == \
        "list rooms says: rooms a, b, c and 2 more, where floor 2."
    assert describe_output("t", "Minus three and snowing.") == "t says: Minus three and snowing."
    assert describe_output("t", '"quoted"') == "t says: quoted."
    assert describe_output("t", "[1, 2]") == "t says: 1, 2."
    assert describe_output("t", "  ") == "t returned nothing."
    assert describe_output("", "ok") == "The tool says: ok."
    long = describe_output("t", json.dumps({"text": "word " * 200}))
    assert len(long) < 300 and long.endswith("and so on.")


# ----------------------------------------------------------------------------- validation


def test_tool_definitions_are_checked_like_the_api():
    assert check_tools([{"name": "a-b_1", "description": "d", "parameters": {"type": "object"}}], "p") == [
        {"type": "function", "name": "a-b_1", "description": "d", "parameters": {"type": "object"}}]
    assert check_tools(None, "p") == []
    for tools, param in [
        ({"name": "x"}, "p"),
        (["x"], "p[0]"),
        ([{"name": "has space"}], "p[0].name"),
        ([{"name": ""}], "p[0].name"),
        ([{"name": 5}], "p[0].name"),
        ([{"name": "x" * 65}], "p[0].name"),
        ([{"name": "x", "parameters": "{}"}], "p[0].parameters"),
        ([{"name": "x", "parameters": {"properties": {"a": "string"}}}], "p[0].parameters.properties"),
        ([{"name": "x", "parameters": {"required": "a"}}], "p[0].parameters.required"),
        ([{"name": "x", "description": 3}], "p[0].description"),
        ([{"name": "x", "strict": True}], "p[0].strict"),
        ([{"type": "mcp", "server_label": "s"}], "p[0].type"),
        ([{"name": "x"}, {"name": "x"}], "p[1].name"),
    ]:
        with pytest.raises(ToolSpecError) as caught:
            check_tools(tools, "p")
        assert caught.value.param == param, tools
    assert check_tools([{"name": "x" * 64}], "p")[0]["name"] == "x" * 64
    tools = check_tools([WEATHER], "p")
    assert check_tool_choice(None, tools, "c") == "auto"
    assert check_tool_choice({"type": "function", "name": "get_weather"}, tools, "c") == {"type": "function", "name": "get_weather"}
    for choice, param in [("always", "c"), (1, "c"), ({"type": "mcp", "server_label": "s"}, "c.type"),
                          ({"type": "function"}, "c.name"), ({"type": "function", "name": "set_timer"}, "c")]:
        with pytest.raises(ToolSpecError) as caught:
            check_tool_choice(choice, tools, "c")
        assert caught.value.param == param, choice


def test_session_update_with_bad_tools_leaves_the_session_as_it_was():
    session = merge_session_update(default_session("sess_1"), {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}})
    assert session["tools"] == [WEATHER] and session["tool_choice"] == {"type": "function", "name": "get_weather"}
    before = copy.deepcopy(session)
    for update, param in [({"tools": [{"name": "bad name"}]}, "session.tools[0].name"),
                          ({"tools": [TIMER]}, "session.tool_choice"),
                          ({"tool_choice": {"type": "function", "name": "set_timer"}}, "session.tool_choice")]:
        with pytest.raises(SessionUpdateError) as caught:
            merge_session_update(session, update | {"instructions": "changed"})
        assert caught.value.param == param
        assert session == before
    both = merge_session_update(session, {"tools": [TIMER], "tool_choice": "required"})
    assert both["tools"] == [TIMER] and both["tool_choice"] == "required"


# ----------------------------------------------------------------------------- the brains


def _stream(brain: Any, request: BrainRequest) -> list[Any]:
    async def collect() -> list[Any]:
        return [piece async for piece in brain.stream(request)]

    return asyncio.run(collect())


def test_rule_brain_calls_a_tool_for_a_user_turn_and_speaks_the_outputs():
    brain = RuleBrain()
    user = ContextMessage("user", "What's the weather like in Paris today?")
    request = BrainRequest(instructions="", messages=[user], tools=[WEATHER])
    assert _stream(brain, request) == [ToolCall(name="get_weather", arguments='{"location":"Paris"}')]
    assert brain.first_sentence(user.text, tools=[WEATHER]) is None  # nothing to prepare: it will call
    assert brain.first_sentence(user.text, tools=[WEATHER], tool_choice="none")
    # After the call, the outputs are spoken (also under "required": the toy does not call again).
    call = ToolCall("get_weather", '{"location":"Paris"}', "call_1")
    outputs = [ContextMessage("assistant", "", call=call), ContextMessage("tool", '{"temperature": 18}', call=call),
               ContextMessage("system", "Be brief."), ContextMessage("tool", "No alerts.", call=ToolCall("", "", "call_9"))]
    request = BrainRequest(instructions="", messages=[user, *outputs], tools=[WEATHER], tool_choice="required")
    assert [m.text for m in request.tool_outputs()] == ['{"temperature": 18}', "No alerts."]
    assert _stream(brain, request) == ["get weather says: temperature 18. The tool says: No alerts."]
    # A call without output yet, or the assistant's own words, last: an answer in words, not a new call.
    for last in (ContextMessage("assistant", "", call=call), ContextMessage("assistant", "Let me see.")):
        request = BrainRequest(instructions="", messages=[user, last], tools=[WEATHER], tool_choice="required")
        assert request.tool_outputs() == []
        (answer,) = _stream(brain, request)
        assert isinstance(answer, str) and "offline" in answer
    # Idle prompts never call.
    assert "still there" in _stream(brain, BrainRequest("", [user], idle=True, tools=[WEATHER], tool_choice="required"))[0]


def test_llm_brain_maps_tools_calls_and_outputs_to_chat_completions():
    call_a, call_b = ToolCall("get_weather", '{"location":"Paris"}', "call_a"), ToolCall("set_timer", "{}", "call_b")
    request = BrainRequest(instructions="Be brief.", messages=[
        ContextMessage("user", "Weather, and a timer?"),
        ContextMessage("assistant", "Checking."),
        ContextMessage("assistant", "", call=call_a),
        ContextMessage("assistant", "", call=call_b),
        ContextMessage("tool", "sunny", call=call_a),
        ContextMessage("tool", "started", call=call_b),
        ContextMessage("assistant", "", call=call_a),
    ], tools=[WEATHER, TIMER], tool_choice={"type": "function", "name": "set_timer"})
    wire = lambda c: {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}  # noqa: E731
    assert chat_messages(request) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather, and a timer?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [wire(call_a), wire(call_b)]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "started"},
        {"role": "assistant", "content": None, "tool_calls": [wire(call_a)]},
    ]
    fields = chat_tools(request)
    assert fields["tools"][0] == {"type": "function", "function": {"name": "get_weather", "description": WEATHER["description"],
                                                                   "parameters": WEATHER["parameters"]}}
    assert fields["tool_choice"] == {"type": "function", "function": {"name": "set_timer"}}
    assert chat_tools(BrainRequest("", [])) == {}  # no tools: none sent (some servers refuse an empty list)
    pieces = _ToolCallPieces()
    pieces.add([{"index": 1, "id": "x", "function": {"name": "set_timer", "arguments": ""}}])
    pieces.add([{"index": 0, "id": "y", "function": {"name": "get_weather", "arguments": '{"loc'}}])
    pieces.add([{"index": 0, "function": {"arguments": 'ation":"Paris"}'}}, "junk"])
    pieces.add(None)
    assert pieces.calls() == [ToolCall("get_weather", '{"location":"Paris"}'), ToolCall("set_timer", "")]
