"""Function calling in the embedded engine, over a real WebSocket on 127.0.0.1, as the GA API does it.

A response that calls a tool is: response.created, response.output_item.added (the function_call item,
in progress, empty arguments), conversation.item.added, response.function_call_arguments.delta...,
.done, response.output_item.done, conversation.item.done, response.done (the call as the only output, no
audio). The client's function_call_output joins the conversation without starting a response; the next
response speaks about it. Every server event is checked against the openai SDK's GA types by the Peer,
and each stream against the protocol's ordering rules (run_scenario).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import numpy as np
import pytest

from desktop.engine.brain import BrainError, BrainRequest, RuleBrain, ToolCall
from desktop.engine.llm_brain import LLMBrain
# `models`: the conformance tests' module fixture (speech models loaded once), used here by name.
from tests.test_engine_conformance import FakeChatCompletions, TimedPeer, models, run_scenario, types_of, user_text  # noqa: F401
from tests.test_engine_protocol import MANIFEST, MANUAL_WITH_TRANSCRIPTION, RATE, decoded_audio, load_wav, server_vad_session, silence, words
from tests.test_engine_tool_choice import WEATHER  # the same definition as the rule's unit tests

pytestmark = pytest.mark.slow


TIMER = {
    "type": "function",
    "name": "set_timer",
    "description": "Start a countdown.",
    "parameters": {"type": "object", "properties": {"minutes": {"type": "integer"}}, "required": ["minutes"]},
}
EMAIL = {
    "type": "function",
    "name": "send_email",
    "description": "Send an email to a contact.",
    "parameters": {"type": "object", "properties": {"recipient": {"type": "string"}, "body": {"type": "string"}}, "required": ["recipient"]},
}
#: What the client's tool answers (Parley's canned example result).
WEATHER_OUTPUT = json.dumps({"location": "Paris", "temperature": 18, "conditions": "sunny"})

CALL_SEQUENCE = ["response.created", "response.output_item.added", "conversation.item.added", "response.function_call_arguments.delta",
                 "response.function_call_arguments.done", "response.output_item.done", "conversation.item.done", "response.done"]


def with_tools(session: dict[str, Any], tools: list[dict[str, Any]], tool_choice: Any = "auto") -> dict[str, Any]:
    return session | {"tools": tools, "tool_choice": tool_choice}


async def respond(peer: TimedPeer, **options: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """response.create; the response.done and every event from response.created to it."""
    mark = peer.mark()
    if options:
        await peer.send("response.create", response=options)
    else:
        await peer.send("response.create")
    done = await peer.until("response.done")
    end = peer.received.index(done, mark)
    start = next(i for i in range(mark, end) if peer.received[i]["type"] == "response.created")
    peer.mark()  # the response's events are read: `until` waits for what comes next
    return done["response"], peer.received[start : end + 1]


def check_call_events(events: list[dict[str, Any]], name: str, previous: str | None) -> dict[str, Any]:
    """The exact event sequence of a response that calls `name` and nothing else; returns the done item."""
    kinds = types_of(events)
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) >= 1
    assert [k for k in kinds if k != "response.function_call_arguments.delta"] == \
        [k for k in CALL_SEQUENCE if k != "response.function_call_arguments.delta"], kinds
    assert kinds == CALL_SEQUENCE[:3] + ["response.function_call_arguments.delta"] * len(deltas) + CALL_SEQUENCE[4:], kinds
    created, added, conv_added, *_ = events
    rid = created["response"]["id"]
    item = added["item"]
    assert item["type"] == "function_call" and item["object"] == "realtime.item"
    assert (item["status"], item["name"], item["arguments"]) == ("in_progress", name, "")
    assert item["call_id"].startswith("call_") and len(item["call_id"]) > len("call_")
    assert added["response_id"] == rid and added["output_index"] == 0
    assert conv_added["item"] == item and conv_added["previous_item_id"] == previous
    ids = {"response_id": rid, "item_id": item["id"], "output_index": 0, "call_id": item["call_id"]}
    for delta in deltas:
        assert {k: delta[k] for k in ids} == ids
    args_done = events[3 + len(deltas)]
    assert {k: args_done[k] for k in ids} == ids and args_done["name"] == name
    arguments = args_done["arguments"]
    assert "".join(d["delta"] for d in deltas) == arguments
    assert arguments == json.dumps(json.loads(arguments), separators=(",", ":"), ensure_ascii=False)  # compact JSON
    item_done, conv_done, response_done = events[-3:]
    done_item = item | {"status": "completed", "arguments": arguments}
    assert item_done["item"] == done_item and item_done["output_index"] == 0 and item_done["response_id"] == rid
    assert conv_done["item"] == done_item and conv_done["previous_item_id"] == previous
    response = response_done["response"]
    assert response["id"] == rid and response["status"] == "completed" and response["status_details"] is None
    assert response["output"] == [done_item]
    assert response["usage"]["output_token_details"]["audio_tokens"] == 0
    return done_item


def spoken(response: dict[str, Any]) -> str:
    """The transcript of a response's only (audio) message."""
    (item,) = response["output"]
    assert item["type"] == "message" and item["role"] == "assistant", item
    return item["content"][0]["transcript"]


# ----------------------------------------------------------------------------- a typed turn


def test_a_typed_question_calls_the_tool_and_its_output_is_spoken(models):
    async def scenario(peer: TimedPeer) -> None:
        session = await peer.update(with_tools(MANUAL_WITH_TRANSCRIPTION, [WEATHER]))
        assert session["tools"] == [WEATHER] and session["tool_choice"] == "auto"
        await peer.send("conversation.item.create", item=user_text("What's the weather like in Paris today?"))
        user = (await peer.until("conversation.item.added"))["item"]["id"]
        await peer.until("conversation.item.done")

        response, events = await respond(peer)
        call = check_call_events(events, "get_weather", previous=user)
        assert json.loads(call["arguments"]) == {"location": "Paris"}  # the optional unit was not said: left out
        assert not decoded_audio(events).size

        # The client ran the tool: its output joins the conversation after the call, and starts nothing.
        mark = peer.mark()
        await peer.send("conversation.item.create", item={"type": "function_call_output", "call_id": call["call_id"], "output": WEATHER_OUTPUT})
        added = await peer.until("conversation.item.added")
        output_item = added["item"]
        assert added["previous_item_id"] == call["id"]
        assert {k: output_item[k] for k in ("object", "type", "status", "call_id", "output")} == {
            "object": "realtime.item", "type": "function_call_output", "status": "completed", "call_id": call["call_id"], "output": WEATHER_OUTPUT}
        assert (await peer.until("conversation.item.done"))["item"] == output_item
        await peer.send("conversation.item.retrieve", item_id=output_item["id"])
        assert (await peer.until("conversation.item.retrieved"))["item"] == output_item
        await asyncio.sleep(0.3)
        assert not peer.since(mark, "response.created"), "a function_call_output started a response by itself"

        # Asked to go on, the assistant speaks about the output.
        response, events = await respond(peer)
        assert response["status"] == "completed"
        assert len(decoded_audio(events)) > 0.5 * RATE
        transcript = spoken(response)
        for value in ("Paris", "18", "sunny"):
            assert value in transcript, transcript
        answer = response["output"][0]["id"]
        answer_added = next(e for e in events if e["type"] == "conversation.item.added")
        assert answer_added["previous_item_id"] == output_item["id"]  # user -> call -> output -> answer

        # The call is a conversation item like any other: retrieved as it was, not truncatable.
        await peer.send("conversation.item.retrieve", item_id=call["id"])
        assert (await peer.until("conversation.item.retrieved"))["item"] == call
        for item_id in (call["id"], output_item["id"], user):  # the same refusal as for a user message
            eid = await peer.send("conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=0)
            error = await peer.error_for(eid)
            assert (error["code"], error["param"]) == ("invalid_value", "item_id"), error
        await peer.send("conversation.item.truncate", item_id=answer, content_index=0, audio_end_ms=200)
        await peer.until("conversation.item.truncated")
        await peer.send("conversation.item.delete", item_id=output_item["id"])
        assert (await peer.until("conversation.item.deleted"))["item_id"] == output_item["id"]

    run_scenario(models, scenario)


def test_client_created_calls_and_outputs_are_items_and_bad_ones_are_refused(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(with_tools(MANUAL_WITH_TRANSCRIPTION, [WEATHER]))
        await peer.send("conversation.item.create", item=user_text("How warm is it in Oslo?"))
        await peer.until("conversation.item.done")
        # A call the client restores (as after a reconnect), with its output: the API accepts both.
        await peer.send("conversation.item.create", item={"type": "function_call", "name": "get_weather", "call_id": "call_restored",
                                                          "arguments": '{"location":"Oslo"}'})
        call = (await peer.until("conversation.item.done"))["item"]
        assert (call["type"], call["call_id"], call["status"]) == ("function_call", "call_restored", "completed")
        # Any call_id is accepted, as the API does; the answer speaks of the output it gave.
        await peer.send("conversation.item.create", item={"type": "function_call_output", "call_id": "call_restored",
                                                          "output": "Minus three and snowing."})
        await peer.until("conversation.item.done")
        response, _ = await respond(peer, output_modalities=["text"])
        text = response["output"][0]["content"][0]["text"]
        assert text == "get weather says: Minus three and snowing.", text
        for item, param in [
            ({"type": "function_call_output", "output": "x"}, "item.call_id"),
            ({"type": "function_call_output", "call_id": "call_1", "output": {"temperature": 18}}, "item.output"),
            ({"type": "function_call_output", "call_id": "call_1"}, "item.output"),
            ({"type": "function_call", "arguments": "{}"}, "item.name"),
            ({"type": "function_call", "name": "get_weather"}, "item.arguments"),
            ({"type": "mcp_call", "id": "x", "name": "n", "arguments": "{}", "server_label": "s"}, "item.type"),
        ]:
            eid = await peer.send_raw_event("conversation.item.create", item=item)
            error = await peer.error_for(eid)
            assert error["param"] == param, (item, error)

    run_scenario(models, scenario)


# ----------------------------------------------------------------------------- tool choice


def test_tool_choice_none_required_named_and_unmatched_tools(models):
    async def scenario(peer: TimedPeer) -> None:
        # "none": a question about the weather is answered in words.
        await peer.update(with_tools(MANUAL_WITH_TRANSCRIPTION, [WEATHER, TIMER], "none"))
        await peer.send("conversation.item.create", item=user_text("What's the weather like in Paris today?"))
        response, events = await respond(peer)
        assert "running offline" in spoken(response)
        assert len(decoded_audio(events)) > 0 and "response.function_call_arguments.done" not in types_of(events)

        # "required": even a greeting calls a tool: the best match, else the first; required arguments filled.
        await peer.update({"type": "realtime", "tool_choice": "required"})
        await peer.send("conversation.item.create", item=user_text("Hello."))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)
        call = check_call_events(events, "get_weather", previous=user)
        assert json.loads(call["arguments"]) == {"location": "Hello."}

        # "auto" picks the tool the words point at: "timer" and a number.
        await peer.update({"type": "realtime", "tool_choice": "auto"})
        await peer.send("conversation.item.create", item=user_text("Please start a timer for 12 minutes."))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)
        call = check_call_events(events, "set_timer", previous=user)
        assert json.loads(call["arguments"]) == {"minutes": 12}

        # Named: that tool, whatever was said.
        await peer.update({"type": "realtime", "tool_choice": {"type": "function", "name": "set_timer"}})
        await peer.send("conversation.item.create", item=user_text("What's the weather like in Paris today?"))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)
        assert json.loads(check_call_events(events, "set_timer", previous=user)["arguments"]) == {"minutes": 0}

        # Tools whose words the user does not say: a normal spoken answer.
        await peer.update({"type": "realtime", "tools": [EMAIL], "tool_choice": "auto"})
        await peer.send("conversation.item.create", item=user_text("What time is it?"))
        response, events = await respond(peer)
        assert spoken(response).startswith("It is"), spoken(response)

        # Per-response overrides: tools and tool_choice of response.create, for that response only.
        await peer.send("conversation.item.create", item=user_text("Send an email to Ada, please."))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer, tool_choice="none", output_modalities=["text"])
        assert [item["type"] for item in response["output"]] == ["message"]
        await peer.send("conversation.item.create", item=user_text("Send an email to Ada, please."))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer, tools=[TIMER, WEATHER], tool_choice={"type": "function", "name": "get_weather"})
        assert json.loads(check_call_events(events, "get_weather", previous=user)["arguments"]) == {"location": "Ada"}
        await peer.send("conversation.item.create", item=user_text("Send an email to Ada, please."))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)  # the session's tools again
        # No rule finds a recipient: the required one gets the user's words, and so does the text-like body.
        said = "Send an email to Ada, please."
        assert json.loads(check_call_events(events, "send_email", previous=user)["arguments"]) == {"recipient": said, "body": said}
        # Out of band, a call is in the response only, not in the conversation.
        response, events = await respond(peer, conversation="none", input=[user_text("Email Bob, please.")], output_modalities=["text"])
        assert response["conversation_id"] is None and response["output"][0]["type"] == "function_call"
        assert "conversation.item.added" not in types_of(events)
        eid = await peer.send("conversation.item.retrieve", item_id=response["output"][0]["id"])
        assert (await peer.error_for(eid))["code"] == "item_not_found"
        for options, param in [
            ({"tools": [{"type": "function", "name": "no spaces allowed"}]}, "response.tools[0].name"),
            ({"tool_choice": {"type": "function", "name": "get_weather"}}, "response.tool_choice"),
            ({"tool_choice": "always"}, "response.tool_choice"),
        ]:
            eid = await peer.send_raw_event("response.create", response=options)
            assert (await peer.error_for(eid))["param"] == param, options

    run_scenario(models, scenario)


def test_bad_tools_are_refused_and_the_session_is_unchanged(models):
    async def scenario(peer: TimedPeer) -> None:
        good = await peer.update(with_tools({"type": "realtime"}, [WEATHER], {"type": "function", "name": "get_weather"}))
        cases = [
            ({"tools": [{"type": "function", "name": "get weather", "parameters": {}}]}, "session.tools[0].name"),
            ({"tools": [{"type": "function", "description": "no name"}]}, "session.tools[0].name"),
            ({"tools": [{"type": "function", "name": "x" * 65}]}, "session.tools[0].name"),
            ({"tools": [WEATHER, {"type": "function", "name": "t", "parameters": "a schema"}]}, "session.tools[1].parameters"),
            ({"tools": [{"type": "function", "name": "t", "parameters": ["location"]}]}, "session.tools[0].parameters"),
            ({"tools": [{"type": "function", "name": "t", "parameters": {"type": "object", "properties": ["location"]}}]},
             "session.tools[0].parameters.properties"),
            ({"tools": [WEATHER, WEATHER]}, "session.tools[1].name"),
            ({"tools": [{"type": "mcp", "server_label": "files"}]}, "session.tools[0].type"),
            ({"tools": "get_weather"}, "session.tools"),
            ({"tool_choice": {"type": "function", "name": "launch_rocket"}}, "session.tool_choice"),
            ({"tool_choice": "sometimes"}, "session.tool_choice"),
            ({"tools": [TIMER]}, "session.tool_choice"),  # would leave the named choice naming no tool
        ]
        for update, param in cases:
            mark = peer.mark()
            eid = await peer.send_raw_event("session.update", session={"type": "realtime", "instructions": "changed"} | update)
            error = await peer.error_for(eid)
            assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_value", param), (update, error)
            assert not peer.since(mark, "session.updated")
        unchanged = await peer.update({"type": "realtime"})
        assert unchanged == good
        # Tools can be removed again (with the choice that named one).
        cleared = await peer.update({"type": "realtime", "tools": [], "tool_choice": "auto"})
        assert (cleared["tools"], cleared["tool_choice"]) == ([], "auto")

    run_scenario(models, scenario)


# ----------------------------------------------------------------------------- a spoken turn


def test_a_spoken_turn_with_server_vad_calls_the_tool_by_itself(models):
    def turn(name: str) -> np.ndarray:
        return np.concatenate([silence(500), load_wav(name), silence(1200)])

    def response_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The response's events: the user turn's transcription may arrive among them (placed by item_id)."""
        return [e for e in events if not e["type"].startswith("conversation.item.input_audio_transcription.")]

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(with_tools(server_vad_session(silence_duration_ms=500), [WEATHER, TIMER]))
        mark = peer.mark()
        await peer.append(turn("hello_weather.wav"), chunk_ms=100)
        done = await peer.until("response.done")
        kinds = types_of(peer.received[mark:])
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped") \
            < kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
        user = (await peer.until("input_audio_buffer.committed"))["item_id"]
        end = peer.received.index(done)
        start = next(i for i in range(mark, end) if peer.received[i]["type"] == "response.created")
        call = check_call_events(response_events(peer.received[start : end + 1]), "get_weather", previous=user)
        transcript = (await peer.until("conversation.item.input_audio_transcription.completed"))["transcript"]
        assert set(MANIFEST["hello_weather.wav"]["key_words"]) <= words(transcript)
        # No place was said: the required location falls back to what the user said.
        assert json.loads(call["arguments"]) == {"location": transcript}
        assert not decoded_audio(peer.received[mark:]).size

        # The output does not start a response, even with server VAD and create_response; asking does.
        mark = peer.mark()
        await peer.send("conversation.item.create", item={"type": "function_call_output", "call_id": call["call_id"],
                                                          "output": json.dumps({"conditions": "cloudy", "temperature": 12})})
        await peer.until("conversation.item.done")
        await peer.append(silence(600), chunk_ms=100)
        await asyncio.sleep(0.3)
        assert not peer.since(mark, "response.created")
        response, events = await respond(peer)
        assert "conditions cloudy, temperature 12" in spoken(response), spoken(response)
        assert len(decoded_audio(events)) > 0.5 * RATE

        # The next spoken turn picks the other tool, with the number it heard.
        mark = peer.mark()
        await peer.append(turn("set_timer.wav"), chunk_ms=100)
        user = (await peer.until("input_audio_buffer.committed"))["item_id"]
        done = await peer.until("response.done")
        end = peer.received.index(done)
        start = next(i for i in range(mark, end) if peer.received[i]["type"] == "response.created")
        call = check_call_events(response_events(peer.received[start : end + 1]), "set_timer", previous=user)
        assert json.loads(call["arguments"]) == {"minutes": 10}

    run_scenario(models, scenario)


# ----------------------------------------------------------------------------- the LLM brain


def test_llm_brain_gets_the_tools_and_its_tool_calls_become_function_calls(models):
    streamed = [
        {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_llm1", "type": "function",
                                              "function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
    ]
    fake = FakeChatCompletions(streamed)

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(with_tools({"type": "realtime", "instructions": "Be a helpful test.", "audio": {"input": {"turn_detection": None}}},
                                     [WEATHER], "required"))
        await peer.send("conversation.item.create", item=user_text("Weather in Paris?"))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)
        call = check_call_events(events, "get_weather", previous=user)
        assert call["arguments"] == '{"location":"Paris"}'
        body = fake.requests[0]["body"]
        assert body["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}]
        assert body["tool_choice"] == "required"
        # The call and its output go back to the model as an assistant tool call and a tool message.
        await peer.send("conversation.item.create", item={"type": "function_call_output", "call_id": call["call_id"], "output": WEATHER_OUTPUT})
        await peer.until("conversation.item.done")
        await respond(peer)
        messages = fake.requests[1]["body"]["messages"]
        assert messages[1:] == [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call["call_id"], "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": call["call_id"], "content": WEATHER_OUTPUT},
        ]

    async def main() -> None:
        url = await fake.start()
        try:
            await asyncio.to_thread(run_scenario, models, scenario, brain_factory=lambda: LLMBrain(url, model="fake-model"))
        finally:
            await fake.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- words and calls in one response


class ScriptedBrain(RuleBrain):
    """A brain that says a little and then calls tools (as models often do), or breaks after a call."""

    async def stream(self, request: BrainRequest) -> AsyncIterator[str | ToolCall]:
        said = "" if request.tool_outputs() else request.last_user().text
        if said == "words then calls":
            yield "Let me check "
            yield "both for you. "
            yield ToolCall("get_weather", '{"location":"Paris"}')
            yield "  "
            yield ToolCall("set_timer", '{"minutes":5}')
        elif said == "a call then a failure":
            yield ToolCall("get_weather", "")
            raise BrainError("The model went away.", "test_failure")
        else:
            async for piece in super().stream(request):
                yield piece


def test_a_response_can_speak_and_call_several_tools_in_order(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(with_tools(MANUAL_WITH_TRANSCRIPTION, [WEATHER, TIMER]))
        await peer.send("conversation.item.create", item=user_text("words then calls"))
        user = (await peer.until("conversation.item.done"))["item"]["id"]
        response, events = await respond(peer)
        assert response["status"] == "completed"
        message, weather, timer = response["output"]
        assert message["content"][0]["transcript"] == "Let me check both for you."
        assert (weather["name"], weather["arguments"], timer["name"], timer["arguments"]) == \
            ("get_weather", '{"location":"Paris"}', "set_timer", '{"minutes":5}')
        assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]
        chain = [e["previous_item_id"] for e in events if e["type"] == "conversation.item.added"]
        assert chain == [user, message["id"], weather["id"]]
        assert len(decoded_audio(events)) > 0.5 * RATE
        # The client answers both calls; the next response speaks of both outputs.
        for call, output in ((weather, '{"conditions": "rain"}'), (timer, '{"started": true}')):
            await peer.send("conversation.item.create", item={"type": "function_call_output", "call_id": call["call_id"], "output": output})
            await peer.until("conversation.item.done")
        response, _ = await respond(peer, output_modalities=["text"])
        assert response["output"][0]["content"][0]["text"] == "get weather says: conditions rain. set timer says: started yes."

        # A brain failing after a call: the call stays, the apology follows it, the response failed.
        await peer.send("conversation.item.create", item=user_text("a call then a failure"))
        await peer.until("conversation.item.done")
        response, events = await respond(peer)
        assert response["status"] == "failed" and response["status_details"]["error"]["code"] == "test_failure"
        call, apology = response["output"]
        assert (call["type"], call["status"], call["arguments"]) == ("function_call", "completed", "{}")
        assert apology["status"] == "incomplete" and apology["content"][0]["transcript"].startswith("Sorry")

    run_scenario(models, scenario, brain_factory=ScriptedBrain)
