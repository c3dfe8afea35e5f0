"""The window's reliability parts: the connection banner (reconnecting, Retry / Stop), the Connection menu,
the event inspector, Settings → API key, the incremental transcript store and the offer to bring the last
conversation back."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QMainWindow, QPushButton

from ..core.actions import ConversationCleared, Notice
from ..session import ConnectionStatus, LiveSession
from ..transcript_store import SavedConversation, TranscriptStore, latest_saved, mark_answered, saved_conversations
from .event_inspector import EventInspector
from .menus import menu_named
from ..providers import MODEL_KEY

log = logging.getLogger(__name__)


class _Banner(QFrame):
    def __init__(self, name: str, color: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self.setStyleSheet(f"QFrame#{name} {{ background: {color}; border-radius: 4px; }}")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAccessibleName(name)
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(8, 4, 8, 4)
        self.row.addWidget(self.label, 1)
        self.setVisible(False)

    def button(self, text: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.clicked.connect(slot)
        self.row.addWidget(b)
        return b


def what_was_said(saved: SavedConversation) -> str:
    """A saved conversation's turns counted as a user counts them: "your question and its answer",
    "3 questions and their answers", "2 questions and 1 answer"."""
    asked = sum(1 for t in saved.turns if t.role == "user")
    answers = sum(1 for t in saved.turns if t.role == "assistant")

    def count(n: int, word: str) -> str:
        return f"{n} {word}" + ("s" if n != 1 else "")

    if asked == 1 and answers == 1:
        return "your question and its answer"
    if asked == answers:
        return f"{asked} questions and their answers"
    if asked == 1 and answers == 0:
        return "your question, not answered"
    if answers == 0:
        return f"{asked} questions, not answered"
    if asked == 0:
        return "an answer" if answers == 1 else f"{answers} answers"
    return f"{count(asked, 'question')} and {count(answers, 'answer')}"


def _when(saved: SavedConversation) -> str:
    return datetime.fromtimestamp(saved.modified).strftime("%a %d %b %H:%M")


class ReliabilityUi:
    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        self.session: LiveSession | None = None
        self.store: TranscriptStore | None = None
        self.offered: SavedConversation | None = None
        self._started = False

        layout = window.centralWidget().layout()
        self.connection_banner = _Banner("ConnectionBanner", "#fff3e0")
        self.retry_button = self.connection_banner.button("Retry now", self.retry)
        self.stop_button = self.connection_banner.button("Stop reconnecting", self.stop_reconnecting)
        self.restore_banner = _Banner("RestoreBanner", "#e3f2fd")
        self.restore_button = self.restore_banner.button("Restore", self.restore_last)
        self.dismiss_button = self.restore_banner.button("Dismiss", self.dismiss_last)
        layout.insertWidget(0, self.restore_banner)
        layout.insertWidget(0, self.connection_banner)

        connection = menu_named(window, "&Connection")
        self.retry_action = QAction("Reconnect now", window)
        self.retry_action.setShortcut(QKeySequence("Ctrl+R"))
        self.retry_action.triggered.connect(self.retry)
        self.stop_action = QAction("Stop reconnecting", window)
        self.stop_action.triggered.connect(self.stop_reconnecting)
        connection.addAction(self.retry_action)
        connection.addAction(self.stop_action)
        connection.addSeparator()
        #: Connection → Model: shown for the OpenAI Realtime API and --url servers (the engine has one model).
        self.model_menu = connection.addMenu("Model")
        self.model_menu.menuAction().setVisible(False)
        self.model_menu.aboutToShow.connect(self._fill_models)
        self.key_action = QAction("API key…", window)
        self.key_action.triggered.connect(self.edit_key)
        connection.addAction(self.key_action)

        #: File → Open earlier conversation: any saved conversation, not only the last one.
        self.open_action = QAction("Open earlier conversation…", window)
        self.open_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_action.setToolTip("Bring back a saved conversation: shown again and given to the model as context")
        self.open_action.triggered.connect(self.choose_earlier)
        window.addAction(self.open_action)
        file_menu = menu_named(window, "&File")
        file_menu.insertAction(next((a for a in file_menu.actions() if a.text().startswith("Save")), None), self.open_action)
        self.inspector = EventInspector(window)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.inspector)
        self.inspector.hide()
        self.inspector_action = self.inspector.toggleViewAction()
        self.inspector_action.setText("Event inspector")
        self.inspector_action.setShortcut(QKeySequence("Ctrl+Shift+E"))
        menu_named(window, "&View").addAction(self.inspector_action)
        window.addAction(self.inspector_action)
        window.addAction(self.retry_action)

    # ------------------------------------------------------------------ wiring
    def attach(self, session: LiveSession, offer_last: bool = True) -> None:
        self.session = session
        self.inspector.log.secrets = [s for s in [session.options.provider.api_key] if s and len(s) >= 8]
        session.event_taps.append(self.inspector.tap)
        self.store = TranscriptStore(session.client.conversation, provider=session.options.provider.label)
        session.subscribe(self.on_notification)
        self.model_menu.menuAction().setVisible(session.options.provider.kind in ("openai", "custom"))
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close)
        if offer_last:
            self.offer_last()

    # ------------------------------------------------------------------ model
    def _fill_models(self) -> None:
        from PySide6.QtGui import QActionGroup

        from ..providers import OPENAI_MODELS

        self.model_menu.clear()
        if self.session is None:
            return
        current = self.session.options.provider.model
        group = QActionGroup(self.model_menu)
        for model in dict.fromkeys([*OPENAI_MODELS, *([current] if current else [])]):
            action = self.model_menu.addAction(model)
            action.setCheckable(True)
            action.setChecked(model == current)
            action.triggered.connect(lambda _checked, m=model: self.switch_model(m))
            group.addAction(action)
        self.model_menu.addSeparator()
        self.model_menu.addAction("Other model…").triggered.connect(self._ask_model)

    def _ask_model(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(self.window, "Model", "Realtime model name:",
                                        text=self.session.options.provider.model or "" if self.session else "")
        if ok and name.strip():
            self.switch_model(name.strip())

    def switch_model(self, model: str) -> None:
        """Talk to `model` from now on, in this conversation; remembered for the next start."""
        if self.session is None or model == self.session.options.provider.model:
            return
        store = getattr(self.window, "layout_store", None)
        if store is not None:
            store.set(MODEL_KEY, model)
            try:
                store.save()
            except OSError as exc:
                self.window.on_notification(Notice("warning", f"Settings could not be saved: {exc}"))
        import asyncio

        asyncio.ensure_future(self.session.switch_model(model))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    def on_notification(self, note: Any) -> None:
        if isinstance(note, ConversationCleared) and self.store is not None and self.session is not None:
            # The old conversation's file is complete; the new one gets its own.
            self.store.close()
            self.store = TranscriptStore(self.session.client.conversation, provider=self.session.options.provider.label)
            return
        if self.store is not None:
            self.store.on_notification(note)
            if self.store.problem and not getattr(self, "_store_problem_shown", False):
                self._store_problem_shown = True
                self.window.on_notification(Notice("error", self.store.problem))
        if isinstance(note, ConnectionStatus):
            self._show_connection(note)

    def _show_connection(self, status: ConnectionStatus) -> None:
        if status.phase == "connected":
            self._started = True
        down = status.phase in ("reconnecting", "disconnected") or (status.phase == "failed" and self._started)
        self.connection_banner.setVisible(down)
        if not down:
            return
        headline = {
            "reconnecting": "Connection lost — you are not being heard. Reconnecting…",
            "disconnected": "Not connected — you are not being heard.",
            "failed": "Cannot reconnect — you are not being heard.",
        }[status.phase]
        self.connection_banner.label.setText(f"<b>{headline}</b><br/>{status.detail}")
        self.stop_button.setVisible(status.phase == "reconnecting")
        self.retry_button.setVisible(True)

    # ------------------------------------------------------------------ user intent
    def retry(self) -> None:
        if self.session is not None:
            self.session.retry_now()

    def stop_reconnecting(self) -> None:
        if self.session is not None:
            self.session.cancel_reconnect()

    def edit_key(self) -> None:
        from .key_dialog import KeyDialog

        KeyDialog(self.window).exec()

    # ------------------------------------------------------------------ the last conversation
    def offer_last(self) -> SavedConversation | None:
        exclude = self.store.path if self.store is not None else None
        saved = latest_saved(exclude=exclude)
        self.offered = saved
        if saved is None:
            self.restore_banner.setVisible(False)
            return None
        # Two lines that break where the text does, the question next to its buttons.
        self.restore_banner.label.setText(
            f"<b>Bring back your last conversation?</b><br/>"
            f"It was saved: {what_was_said(saved)}, last changed {_when(saved)}."
        )
        self.restore_banner.setVisible(True)
        return saved

    def restore_last(self) -> int:
        saved, self.offered = self.offered, None
        self.restore_banner.setVisible(False)
        if saved is None or self.session is None:
            return 0
        count = self.session.restore_items(saved.items)
        if self.store is not None:
            self.store.save_all(saved.items)
        mark_answered(saved.path, "restored")
        self.window.on_notification(Notice("info", f"Brought back your last conversation: {what_was_said(saved)}."))
        self.window.transcript.schedule_render()
        return count

    def earlier_conversations(self) -> list[SavedConversation]:
        return saved_conversations(exclude=self.store.path if self.store is not None else None)

    def choose_earlier(self) -> None:
        from PySide6.QtWidgets import QDialog, QDialogButtonBox, QListWidget, QListWidgetItem, QVBoxLayout

        saved = self.earlier_conversations()
        if not saved:
            self.window.on_notification(Notice("info", "There is no earlier conversation saved yet."))
            return
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Open earlier conversation")
        dialog.resize(560, 380)
        listing = QListWidget()
        listing.setAccessibleName("Saved conversations")
        for conv in saved:
            first = next((i.text for i in conv.turns if i.role == "user" and i.text), "")
            item = QListWidgetItem(f"{conv.summary()} · {conv.provider or 'unknown'}\n    {first[:90]}")
            item.setData(Qt.ItemDataRole.UserRole, conv)
            listing.addItem(item)
        listing.setCurrentRow(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        listing.itemDoubleClicked.connect(lambda *_: dialog.accept())
        layout = QVBoxLayout(dialog)
        layout.addWidget(listing)
        layout.addWidget(buttons)
        self.open_dialog = dialog
        if dialog.exec() == QDialog.DialogCode.Accepted and listing.currentItem() is not None:
            self.open_earlier(listing.currentItem().data(Qt.ItemDataRole.UserRole))

    def open_earlier(self, saved: SavedConversation) -> None:
        """Start a new conversation holding `saved`: shown, saved anew, and given to the model as context."""
        if self.session is None:
            return
        import asyncio

        async def go() -> None:
            if len(self.session.client.conversation):
                await self.session.new_conversation()
            self.session.restore_items(saved.items)
            if self.store is not None:
                self.store.save_all(saved.items)
            self.window.transcript.schedule_render()
            self.window.on_notification(Notice("info", f"Opened a conversation of {saved.summary()}; "
                                                       "the model has it as context."))

        asyncio.ensure_future(go())

    def dismiss_last(self) -> None:
        saved, self.offered = self.offered, None
        self.restore_banner.setVisible(False)
        if saved is not None:
            mark_answered(saved.path, "dismissed")
