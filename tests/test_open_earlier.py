"""File → Open earlier conversation: any saved conversation comes back, shown and given to the model as
context (the real engine), in a new conversation when one is already going."""

from __future__ import annotations

import os
import time

import pytest

from desktop.core.actions import ItemChanged
from desktop.core.conversation import Conversation
from desktop.transcript_store import TranscriptStore, conversations_dir
from tests.waiting import wait_until
from tests.window_session import window_and_session

pytestmark = pytest.mark.slow


def _saved(words: str, age_s: float) -> TranscriptStore:
    c = Conversation()
    c.place(f"item_u_{words}", None, role="user", text=f"Tell me about {words}.", text_final=True, status="completed")
    c.place(f"item_a_{words}", f"item_u_{words}", role="assistant", text=f"Here is something about {words}.",
            text_final=True, status="completed")
    store = TranscriptStore(c, provider="offline engine")
    for item in c:
        store.on_notification(ItemChanged(item.item_id))
    store.close()
    when = time.time() - age_s
    os.utime(store.path, (when, when))
    return store


def test_open_an_earlier_conversation(qtbot, qasync_loop, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _saved("lighthouses", 3600)
    time.sleep(1.1)  # another file name (they are stamped to the second)
    _saved("volcanoes", 60)
    window, session = window_and_session(qtbot, tmp_path / "settings.json")
    ui = window.reliability_ui

    async def scenario():
        assert await session.start(), session.status
        earlier = ui.earlier_conversations()
        assert [c.turns[0].text for c in earlier] == ["Tell me about volcanoes.", "Tell me about lighthouses."]
        # A conversation is going: opening the older one starts a new conversation that holds it.
        assert session.send_text("Repeat after me: today's words.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 20)
        sent = len(session.sent_events)
        ui.open_earlier(earlier[1])
        assert await wait_until(lambda: "lighthouses" in window.transcript_text(), 20)
        assert "today's words" not in window.transcript_text()
        reseeded = [e for e in session.sent_events[sent:] if e["type"] == "conversation.item.create"]
        assert [e["item"]["role"] for e in reseeded] == ["user", "assistant"]  # the model has it as context
        assert "Opened a conversation" in window.notice_label.text()
        # ... and it goes on from there, saved in the new conversation's file.
        assert session.send_text("Repeat after me: more about them.")
        assert await wait_until(lambda: any("more about them" in i.text for i in session.client.conversation
                                            if i.role == "assistant" and i.text_final), 20)
        await session.stop()

    qasync_loop.run_until_complete(scenario())
    ui.close()
    newest = max(conversations_dir().glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    text = newest.read_text()
    assert "lighthouses" in text and "more about them" in text


def test_the_dialog_lists_them_and_opens_the_chosen_one(qtbot, qasync_loop, tmp_path, monkeypatch):
    import asyncio

    from PySide6.QtCore import QTimer

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "empty"))
    first, _ = window_and_session(qtbot, tmp_path / "settings.json")
    first.reliability_ui.choose_earlier()  # nothing saved yet: says so, no dialog
    assert "no earlier conversation" in first.notice_label.text()

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _saved("lighthouses", 3600)
    time.sleep(1.1)
    _saved("volcanoes", 60)
    window, session = window_and_session(qtbot, tmp_path / "settings.json")  # not connected: shown, not sent
    ui = window.reliability_ui
    seen: list[str] = []

    def pick_second() -> None:
        listing = ui.open_dialog.findChild(__import__("PySide6.QtWidgets", fromlist=["QListWidget"]).QListWidget)
        seen.extend(listing.item(i).text() for i in range(listing.count()))
        listing.setCurrentRow(1)
        ui.open_dialog.accept()

    QTimer.singleShot(200, pick_second)
    ui.choose_earlier()
    qasync_loop.run_until_complete(asyncio.sleep(0.3))
    assert len(seen) == 2 and "volcanoes" in seen[0] and "2 turns" in seen[0]
    assert "lighthouses" in window.transcript_text() and "volcanoes" not in window.transcript_text()
