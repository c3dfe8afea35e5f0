"""Connection → Model: the same conversation goes on with another model. A protocol-faithful server stands in
for the OpenAI cloud (the embedded engine, reached as an "openai" provider at its URL)."""

from __future__ import annotations

import json

import pytest

from desktop.core.actions import Notice
from desktop.providers import ProviderChoice, switched_model, with_model
from desktop.transport.engine_process import EngineProcess
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def test_switched_model_replaces_the_url_parameter():
    openai = ProviderChoice("openai", "OpenAI gpt-realtime", "wss://api.openai.com/v1/realtime?model=gpt-realtime", "sk-x", "gpt-realtime")
    mini = switched_model(openai, "gpt-realtime-mini")
    assert mini.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-mini" and mini.label == "OpenAI gpt-realtime-mini"
    assert mini.api_key == "sk-x" and mini.model == "gpt-realtime-mini"
    with pytest.raises(ValueError):
        switched_model(ProviderChoice("engine", "offline engine", None), "gpt-realtime")


def test_switching_models_keeps_the_conversation(qtbot, qasync_loop, tmp_path):
    engine = EngineProcess("warning")
    qasync_loop.run_until_complete(engine.start())
    try:
        provider = ProviderChoice("openai", "OpenAI gpt-realtime", with_model(engine.url, "gpt-realtime"),
                                  "sk-test-not-a-real-key", "gpt-realtime")
        window, session = window_and_session(qtbot, tmp_path / "settings.json", provider=provider)
        assert window.reliability_ui.model_menu.menuAction().isVisible()

        async def scenario():
            assert await session.start(), session.status
            assert window.windowTitle() == "Parley — OpenAI gpt-realtime"
            assert session.send_text("Repeat after me: the first model.")
            assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 20)
            first_transport, drops, sent = session.transport, session.drops, len(session.sent_events)
            window.reliability_ui.switch_model("gpt-realtime-mini")
            assert await wait_until(lambda: session.transport is not None and session.transport is not first_transport
                                    and session.status.phase == "connected", 20), session.status
            assert "model=gpt-realtime-mini" in session.transport.endpoint.url
            assert window.windowTitle() == "Parley — OpenAI gpt-realtime-mini"
            assert session.drops == drops  # a switch is not a dropped connection
            # The conversation goes on: shown as it was, and put back into the new session as context.
            assert "the first model" in window.transcript_text()
            reseeded = [e for e in session.sent_events[sent:] if e["type"] == "conversation.item.create"]
            assert len(reseeded) == 2, [e["type"] for e in session.sent_events[sent:]]
            assert any(isinstance(n, Notice) and "carried over" in n.message for n in window.notices)
            answers = len([i for i in session.client.conversation if i.role == "assistant"])
            assert session.send_text("Repeat after me: the second model.")
            assert await wait_until(lambda: len([i for i in session.client.conversation
                                                 if i.role == "assistant" and i.text_final]) > answers, 20)
            await session.stop()

        qasync_loop.run_until_complete(scenario())
        assert json.loads((tmp_path / "settings.json").read_text())["openai.model"] == "gpt-realtime-mini"
        for event in session.sent_events:
            validate_client_event(event)
    finally:
        qasync_loop.run_until_complete(engine.stop())
