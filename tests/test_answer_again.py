"""Answer again: the last answer is replaced by a new one (after the user changed the instructions or the
voice); a still-playing answer is stopped and cancelled first, and deleted rather than truncated."""

from __future__ import annotations

import json

import pytest

from desktop.core.actions import Notice, StopPlayback
from desktop.core.session_config import ServerVad
from tests.test_core_client import connect, of_type, sends, start_speaking_answer
from tests.waiting import wait_until
from tests.window_session import window_and_session


def test_a_finished_answer_is_deleted_and_asked_for_again():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    done = server.event("response.done", response={"id": "resp_1", "object": "realtime.response", "status": "completed",
                                                   "status_details": None, "output": []})
    client.receive(json.dumps(done))
    client.playback_finished()
    out = sends(client.answer_again())
    assert [(e["type"], e.get("item_id")) for e in out] == [("conversation.item.delete", "item_a1"), ("response.create", None)]


def test_a_playing_answer_is_stopped_cancelled_then_deleted_not_truncated():
    client, server = connect(ServerVad())
    start_speaking_answer(client, server)
    client.playback_started("item_a1")
    actions = client.answer_again()
    assert of_type(actions, StopPlayback)
    assert [e["type"] for e in sends(actions)] == ["response.cancel"]  # the rest waits for the cancel to land
    assert not sends(client.playback_stopped("item_a1", 300))  # no truncate of an answer being deleted
    done = server.event("response.done", response={"id": "resp_1", "object": "realtime.response", "status": "cancelled",
                                                   "status_details": {"type": "cancelled", "reason": "client_cancelled"},
                                                   "output": []})
    out = sends(client.receive(json.dumps(done)))
    assert [(e["type"], e.get("item_id")) for e in out] == [("conversation.item.delete", "item_a1"), ("response.create", None)]
    client.receive(json.dumps(server.event("conversation.item.deleted", item_id="item_a1")))
    assert client.conversation.get("item_a1") is None


def test_nothing_to_answer_again_says_so():
    client, _ = connect(ServerVad())
    assert of_type(client.answer_again(), Notice)


@pytest.mark.slow
def test_answer_again_from_the_window_uses_the_new_instructions(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json")

    async def scenario():
        assert await session.start(), session.status
        assert session.send_text("Who are you?")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 20)
        first = next(i for i in session.client.conversation if i.role == "assistant")
        assert "Ada" not in first.text
        # The builder gives the agent a name, then hears the same question answered again.
        window.agent_ui.dock.instructions.setPlainText("You are Ada, a helpful guide.")
        window.agent_ui.dock.apply_instructions()
        window.again_action.trigger()
        assert await wait_until(lambda: session.client.conversation.get(first.item_id) is None and any(
            i.role == "assistant" and i.text_final and "I'm Ada" in i.text for i in session.client.conversation), 20), \
            window.transcript_text()
        assert [i.role for i in session.client.conversation] == ["user", "assistant"]
        await session.stop()

    qasync_loop.run_until_complete(scenario())
