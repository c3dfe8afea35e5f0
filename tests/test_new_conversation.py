"""File → New conversation (Ctrl+N) with the real engine: the transcript and the counts start over, a fresh
server session knows nothing of the old items, settings are kept, and the old conversation stays saved."""

from __future__ import annotations

import json

import pytest

from desktop.core.actions import ConversationCleared, Notice, UsageUpdated
from desktop.core.session_config import ServerVad
from desktop.core.usage import TokenUsage
from desktop.transcript_store import read_conversation
from tests.test_core_client import connect, of_type, start_speaking_answer
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def test_start_over_forgets_everything_of_the_old_conversation():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    client.outbox.append(([{"type": "input_text", "text": "queued"}], []))
    actions = client.start_over()
    assert of_type(actions, ConversationCleared) and of_type(actions, UsageUpdated)[0].total == TokenUsage()
    assert len(client.conversation) == 0 and client.active_response is None and not client.audio_queued
    assert client.outbox == [] and client.audible_item is None


def test_new_conversation_from_the_window(qtbot, qasync_loop, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    notes: list = []
    session.subscribe(notes.append)
    window.agent_ui.dock.speed.setValue(1.2)

    async def scenario():
        assert await session.start(), session.status
        assert session.send_text("Repeat after me: the blue heron.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 30)
        assert window.usage_label.text().startswith("tokens ")
        old_items = [i.item_id for i in session.client.conversation]
        old_store = window.reliability_ui.store
        old_transport, drops = session.transport, session.drops

        window.new_action.trigger()  # Ctrl+N
        assert await wait_until(lambda: session.transport is not None and session.transport is not old_transport
                                and session.status.phase == "connected", 20), session.status
        assert len(session.client.conversation) == 0
        assert "blue heron" not in window.transcript_text()
        assert window.usage_label.text() == ""
        assert session.drops == drops  # starting over is not a dropped connection
        assert not any(getattr(n, "phase", None) == "reconnecting" for n in notes)
        assert any(isinstance(n, Notice) and "New conversation" in n.message for n in notes)
        # The new server session does not know the old items (asked directly, over the wire).
        session.transport.send({"type": "conversation.item.retrieve", "item_id": old_items[0]})
        assert await wait_until(lambda: any(isinstance(n, Notice) and n.code == "item_not_found" for n in notes), 10)
        # The settings carried over: the new session was configured with them.
        assert session.client.effective is not None and session.client.effective.speed == 1.2
        # And the conversation goes on in the new session.
        assert session.send_text("Repeat after me: a new start.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 30)
        new_store = window.reliability_ui.store
        await session.stop()
        return old_store, new_store

    old_store, new_store = qasync_loop.run_until_complete(scenario())
    window.reliability_ui.close()
    assert new_store.path != old_store.path
    old_saved, new_saved = read_conversation(old_store.path), read_conversation(new_store.path)
    assert any("blue heron" in i.text for i in old_saved.items)
    assert any("a new start" in i.text for i in new_saved.items)
    assert not any("blue heron" in i.text for i in new_saved.items)
    assert json.loads(old_store.path.read_text().splitlines()[0])["kind"] == "meta"
