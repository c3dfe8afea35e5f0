"""Function tools in the sans-I/O core: definitions, canned results, and the client's side of a tool call
(function_call item in, function_call_output + response.create out, after the calling response is done)."""

from __future__ import annotations

import json

import pytest

from desktop.core.actions import Send, ToolCalled
from desktop.core.session_config import ServerVad, SessionConfig
from desktop.core.tools import EXAMPLE_TOOL, ToolProblem, ToolSettings, answer_for, fill_result, parse_tool
from desktop.transcript_export import conversation_markdown
from tests.test_core_client import connect, of_type, sends


def test_tool_definitions_are_checked_with_a_clear_message():
    with pytest.raises(ToolProblem, match="no spaces"):
        parse_tool("get weather", "", "", "")
    with pytest.raises(ToolProblem, match="not valid JSON"):
        parse_tool("get_weather", "", "{type: object}", "")
    with pytest.raises(ToolProblem, match="JSON schema object"):
        parse_tool("get_weather", "", '{"type": "string"}', "")
    with pytest.raises(ToolProblem, match="required"):
        parse_tool("get_weather", "", '{"type": "object", "properties": {}, "required": ["city"]}', "")
    tool = parse_tool(" get_weather ", " Weather ", "", "sunny")
    assert tool.to_wire() == {"type": "function", "name": "get_weather", "description": "Weather",
                              "parameters": {"type": "object", "properties": {}}}
    settings = ToolSettings().with_tool(tool)
    with pytest.raises(ToolProblem, match="already a tool"):
        settings.with_tool(tool)
    assert settings.with_tool(parse_tool("get_weather", "new", "", ""), replacing="get_weather").tools[0].description == "new"


def test_canned_results_take_the_calls_arguments():
    assert fill_result(EXAMPLE_TOOL.result, '{"location": "Paris"}') == \
        '{"location": "Paris", "temperature": 18, "conditions": "sunny"}'
    assert fill_result("{n} items, {missing}", '{"n": 3}') == "3 items, {missing}"
    assert fill_result("{location}", "not json") == "{location}"
    settings = ToolSettings((EXAMPLE_TOOL, parse_tool("book_table", "", "", "")))
    assert answer_for(settings, "book_table", "{}") is None  # the user types this one
    assert json.loads(answer_for(settings, "launch_rocket", "{}")) == {"error": "Parley has no tool named 'launch_rocket'."}
    stored = json.loads(json.dumps(settings.to_dict()))
    assert ToolSettings.from_dict(stored) == settings
    stored["tools"].append({"name": "bad name", "parameters": "{"})  # a damaged entry is left out, not the rest
    assert ToolSettings.from_dict(stored) == settings
    assert ToolSettings.from_dict("junk") == ToolSettings()


def _call_events(server, rid: str, item_id: str, call_id: str, arguments: str) -> list[dict]:
    item = {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
            "name": "get_weather", "call_id": call_id, "arguments": ""}
    done = dict(item, status="completed", arguments=arguments)
    return [
        server.response_created(rid),
        server.event("response.output_item.added", response_id=rid, output_index=0, item=item),
        server.event("conversation.item.added", item=item, previous_item_id="item_u1"),
        server.event("response.function_call_arguments.delta", response_id=rid, item_id=item_id, output_index=0,
                     call_id=call_id, delta=arguments),
        server.event("response.function_call_arguments.done", response_id=rid, item_id=item_id, output_index=0,
                     call_id=call_id, name="get_weather", arguments=arguments),
        server.event("response.output_item.done", response_id=rid, output_index=0, item=done),
        server.event("conversation.item.done", item=done, previous_item_id="item_u1"),
    ]


def test_a_tool_call_is_answered_and_the_model_asked_to_go_on_after_its_response_ends():
    client, server = connect(ServerVad())
    client.receive(json.dumps(server.user_item_added("item_u1", None)))
    calls = []
    for event in _call_events(server, "resp_1", "item_f1", "call_abc", '{"location":"Paris"}'):
        calls += of_type(client.receive(json.dumps(event)), ToolCalled)
    assert calls == [ToolCalled("item_f1", "call_abc", "get_weather", '{"location":"Paris"}')]
    call_item = client.conversation.get("item_f1")
    assert (call_item.role, call_item.kind, call_item.text) == ("tool", "function_call", 'get_weather({"location":"Paris"})')

    # Answered while the calling response is still open: the output goes now, response.create waits.
    out = sends(client.send_tool_output("call_abc", '{"temperature": 18}'))
    assert [e["type"] for e in out] == ["conversation.item.create"]
    assert out[0]["item"] == {"type": "function_call_output", "call_id": "call_abc", "output": '{"temperature": 18}'}
    done = server.event("response.done", response={"id": "resp_1", "object": "realtime.response", "status": "completed",
                                                   "status_details": None, "output": []})
    after = sends(client.receive(json.dumps(done)))
    assert [e["type"] for e in after] == ["response.create"]
    # The server's echo of the output item joins the conversation, after the call.
    echo = {"id": "item_o1", "object": "realtime.item", "type": "function_call_output", "call_id": "call_abc",
            "output": '{"temperature": 18}'}
    client.receive(json.dumps(server.event("conversation.item.added", item=echo, previous_item_id="item_f1")))
    ids = [i.item_id for i in client.conversation]
    assert ids.index("item_o1") == ids.index("item_f1") + 1
    text = conversation_markdown(client.conversation, "test")
    assert "**Tool** (the model called): get\\_weather" in text and "**Tool** (result sent back)" in text
    # A replayed output_item.done does not call the tool twice.
    replay = server.event("response.output_item.done", response_id="resp_1", output_index=0,
                          item={"id": "item_f1", "object": "realtime.item", "type": "function_call", "status": "completed",
                                "name": "get_weather", "call_id": "call_abc", "arguments": "{}"})
    assert not of_type(client.receive(json.dumps(replay)), ToolCalled)


def test_tools_reach_the_wire_and_can_be_removed_again():
    config = SessionConfig(tools=ToolSettings((EXAMPLE_TOOL,)).wire_tools(), tool_choice="required")
    wire = config.to_wire()
    assert wire["tools"][0]["name"] == "get_weather" and wire["tool_choice"] == "required"
    assert wire["tools"][0]["parameters"]["required"] == ["location"]
    assert SessionConfig(tools=()).to_wire()["tools"] == []  # removes them on the server
    assert "tools" not in SessionConfig().to_wire()
    client, _ = connect(ServerVad())
    (update,) = sends(client.update_session(config))
    assert isinstance(client.update_session(config)[0], Send) and update["session"]["tools"] == wire["tools"]


def test_a_slow_tool_keeps_its_delay_and_a_bad_delay_is_refused():
    from desktop.core.tools import ToolProblem, ToolSettings, parse_tool

    slow = parse_tool("lookup_order", "Find an order.", "", '{"status": "shipped"}', 2500)
    assert slow.delay_ms == 2500
    for bad in (-1, 60_001, "soon"):
        with pytest.raises(ToolProblem, match="delay"):
            parse_tool("lookup_order", "", "", "{}", bad)
    settings = ToolSettings().with_tool(slow).with_tool(parse_tool("quick", "", "", "{}"))
    stored = settings.to_dict()
    assert stored["tools"][0]["delay_ms"] == 2500 and "delay_ms" not in stored["tools"][1]  # older files read alike
    assert ToolSettings.from_dict(stored) == settings
