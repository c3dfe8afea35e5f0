"""Right-click a turn in the transcript, with the engine: the menu finds the turn under the pointer; a spoken
turn can be spoken again (its audio as the model heard it); any turn can be copied or deleted from the
conversation (the model forgets it, the transcript drops it once the server confirms)."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu

from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


_menus: list[QMenu] = []  # the menus live as long as the test (their actions with them)


def _menu(window, item) -> dict:
    menu = QMenu(window)
    _menus.append(menu)
    window.transcript.turn_actions(item, menu)
    return {a.text(): a for a in menu.actions() if a.text()}


def test_speak_a_turn_again_copy_it_and_delete_one(qtbot, qasync_loop, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", audio_in=str(AUDIO / "silence_2s.wav"))

    async def scenario():
        assert await session.start(), session.status
        assert session.speak_file(AUDIO / "what_time.wav")
        assert await wait_until(lambda: any(i.role == "assistant" and i.status == "completed"
                                            for i in session.client.conversation), 30)
        user, answer = list(session.client.conversation)[:2]
        window.transcript.render_now()
        # The menu is for the turn under the pointer: each turn's text maps back to it.
        view = window.transcript
        for item in (user, answer):
            start = view.position_of(item.item_id)
            assert start is not None and view.item_at_position(start + 3) is item
        actions = _menu(window, user)
        assert {"Copy this turn's text", "Speak this turn again", "Keep this turn as a sound file",
                "Delete from the conversation"} <= set(actions)
        assert all(actions[name].isEnabled() for name in actions)
        actions["Copy this turn's text"].trigger()
        assert QGuiApplication.clipboard().text() == user.text
        actions["Speak this turn again"].trigger()
        assert session.file_voice is not None and session.file_voice.name.startswith("turn ")
        assert await wait_until(lambda: len([i for i in session.client.conversation
                                             if i.role == "assistant" and i.status == "completed"]) == 2, 30)
        again = [i for i in session.client.conversation if i.role == "user"][1]
        assert "time" in again.text.lower() and again.spoken_from.startswith("turn ")
        # An answer's menu has no audio actions; deleting it takes it out of the conversation.
        answer_actions = _menu(window, answer)
        assert "Speak this turn again" not in answer_actions
        answer_actions["Delete from the conversation"].trigger()
        assert await wait_until(lambda: session.client.conversation.get(answer.item_id) is None, 10)
        window.transcript.render_now()
        assert window.transcript.position_of(answer.item_id) is None
        assert window.transcript.position_of(user.item_id) is not None
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    deletes = [e for e in session.sent_events if e["type"] == "conversation.item.delete"]
    assert len(deletes) == 1
    for event in session.sent_events:
        validate_client_event(event)
