"""Function tools end to end: the window's Tools panel, the real engine over a real WebSocket, a canned result
answered at once and a result the user types, and the spoken answers that use them."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from desktop.core.tools import parse_tool
from desktop.session import LiveSession
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow

BOOKING = parse_tool(
    "book_table", "Book a table at the restaurant.",
    json.dumps({"type": "object", "properties": {"party_size": {"type": "integer"}, "time": {"type": "string"}},
                "required": ["party_size"]}),
    "",  # no canned result: the user types it
)


def _sent(session: LiveSession, kind: str) -> list[dict]:
    return [e for e in session.sent_events if e["type"] == kind]


def _answers(session: LiveSession) -> list:
    return [i for i in session.client.conversation if i.role == "assistant" and i.text_final]


def test_tool_calls_are_answered_from_the_window(qtbot, qasync_loop, tmp_path):
    store_path = tmp_path / "settings.json"
    window, session = window_and_session(qtbot, store_path)
    panel = window.agent_ui.tools

    async def scenario():
        assert await session.start(), session.status
        assert not any("tools" in e["session"] for e in _sent(session, "session.update"))  # none defined yet
        # The example tool, with its canned result: sent to the server at once.
        qtbot.mouseClick(panel.example_button, Qt.MouseButton.LeftButton)
        update = _sent(session, "session.update")[-1]["session"]
        assert [t["name"] for t in update["tools"]] == ["get_weather"] and update["tool_choice"] == "auto"
        assert not panel.example_button.isEnabled()

        assert session.send_text("What's the weather like in Paris today?")
        assert await wait_until(lambda: _sent(session, "conversation.item.create")[-1]["item"]["type"] == "function_call_output", 30)
        output = _sent(session, "conversation.item.create")[-1]["item"]
        assert json.loads(output["output"]) == {"location": "Paris", "temperature": 18, "conditions": "sunny"}
        assert await wait_until(lambda: any("18" in a.text or "sunny" in a.text for a in _answers(session)), 30), \
            window.transcript_text()

        # A tool the user answers: the panel asks, the typed result goes back, the model speaks with it.
        panel.add_tool(BOOKING)
        assert [t["name"] for t in _sent(session, "session.update")[-1]["session"]["tools"]] == ["get_weather", "book_table"]
        answered = len(_answers(session))
        assert session.send_text("Please book a table for 4 people at 8 pm.")
        assert await wait_until(lambda: panel.pending_box.isVisible(), 30), window.transcript_text()
        assert "book_table" in panel.pending_label.text()
        assert "book_table" in window.notice_label.text()
        qtbot.keyClicks(panel.pending_result, '{"status": "booked", "table": 12}')
        qtbot.keyClick(panel.pending_result, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert not panel.pending_box.isVisible()
        assert _sent(session, "conversation.item.create")[-1]["item"]["output"] == '{"status": "booked", "table": 12}'
        assert await wait_until(lambda: len(_answers(session)) > answered
                                and "booked" in _answers(session)[-1].text, 30), window.transcript_text()
        window.transcript.render_now()
        text = window.transcript_text()
        await session.stop()
        return text

    text = qasync_loop.run_until_complete(scenario())
    assert 'get_weather({"location"' in text and "book_table(" in text and "Tool" in text
    for event in session.sent_events:
        validate_client_event(event)
    # Kept for next time.
    saved = json.loads(store_path.read_text())["tools"]
    assert [t["name"] for t in saved["tools"]] == ["get_weather", "book_table"]


def test_a_bad_tool_definition_is_refused_in_the_dialog(qtbot):
    from desktop.ui.tools_panel import ToolDialog

    dialog = ToolDialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("get weather")
    dialog.accept()
    assert dialog.tool() is None and "no spaces" in dialog.problem.text() and dialog.result() == 0
    dialog.name.setText("get_weather")
    dialog.parameters.setPlainText("{not json")
    dialog.accept()
    assert "not valid JSON" in dialog.problem.text()
    dialog.parameters.setPlainText('{"type": "object", "properties": {"city": {"type": "string"}}}')
    dialog.accept()
    assert dialog.tool() is not None and dialog.tool().parameters["properties"]["city"]["type"] == "string"


def test_a_slow_tool_answers_after_its_delay_and_not_at_all_once_the_conversation_is_new(qtbot, qasync_loop, tmp_path):
    import asyncio
    import time
    from dataclasses import replace

    from desktop.core.actions import ToolCalled
    from desktop.core.tools import EXAMPLE_TOOL

    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    panel = window.agent_ui.tools
    called: list[float] = []
    answered: list[float] = []
    session.subscribe(lambda note: called.append(time.monotonic()) if isinstance(note, ToolCalled) else None)
    session.event_taps.append(lambda direction, event: answered.append(time.monotonic())
                              if direction == "client" and event.get("type") == "conversation.item.create"
                              and event["item"]["type"] == "function_call_output" else None)

    async def scenario():
        assert await session.start(), session.status
        panel.add_tool(replace(EXAMPLE_TOOL, delay_ms=1500))
        assert panel.list.item(0).text() == "get_weather — canned result after 1.5 s"
        assert session.send_text("What's the weather like in Paris today?")
        assert await wait_until(lambda: any("sunny" in a.text for a in _answers(session)), 30), window.transcript_text()
        # Under qasync the delay is a QTimer, whose default (coarse) accuracy is 5 % either way: 1.5 s is 1.425-1.575 s.
        assert len(called) == 1 and len(answered) == 1 and 1.4 <= answered[0] - called[0] < 3.0, (called, answered)
        # Asked again, then a new conversation before the result is due: the old call is not answered.
        assert session.send_text("And the weather in Rome?")
        assert await wait_until(lambda: len(called) == 2, 30)
        window.new_conversation()
        await asyncio.sleep(2.5)
        assert len(answered) == 1
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    for event in session.sent_events:
        validate_client_event(event)
