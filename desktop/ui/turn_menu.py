"""The transcript's context menu for one turn: copy it, speak a spoken turn of yours again or keep it as a sound
file (its audio exactly as the model heard it, while it is among the last minute's), or delete the turn from the
conversation so that the model forgets it."""

from __future__ import annotations

import os

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu

from ..core.actions import Notice
from ..core.conversation import ConversationItem


def add_turn_actions(window, item: ConversationItem, menu: QMenu) -> None:
    """`TranscriptView.turn_actions` for `window` (a MainWindow)."""
    session = window.session
    text = item.heard_text if item.interrupted and item.heard_text is not None else item.text
    copy = menu.addAction("Copy this turn's text")
    copy.setEnabled(bool(text))
    copy.triggered.connect(lambda: QGuiApplication.clipboard().setText(text))
    if session is None:
        return
    if item.role == "user" and item.has_audio:
        kept = session.client.sent_audio.audio(item.item_id) is not None
        again = menu.addAction("Speak this turn again")
        keep = menu.addAction("Keep this turn as a sound file")
        for action in (again, keep):
            action.setEnabled(kept)
            if not kept:
                action.setToolTip("Only the last minute of what was sent is kept")
        again.triggered.connect(lambda: speak_turn_again(window, item.item_id))
        keep.triggered.connect(lambda: window.file_voice_ui.keep_turn(item.item_id))
    delete = menu.addAction("Delete from the conversation")
    delete.setToolTip("The model forgets this turn (conversation.item.delete); the transcript drops it")
    delete.setEnabled(session.client.connected)
    delete.triggered.connect(lambda: session.delete_item(item.item_id))


def speak_turn_again(window, item_id: str) -> bool:
    """Keep the turn as a sound file, then speak that file now."""
    path = window.file_voice_ui.keep_turn(item_id)
    if path is None:
        return False
    if not window.file_voice_ui.speak(path):
        window.on_notification(Notice("error", f"Could not speak {os.path.basename(path)}."))
        return False
    return True
