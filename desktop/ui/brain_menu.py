"""Connection → Offline brain: who answers on the offline engine, the built-in rules or a local model.

The submenu lists the built-in responder, then the OpenAI-compatible chat servers found on loopback with
their models (probed off the UI thread each time the menu opens; see desktop.local_llm_discovery), then
"Other URL…" for a server typed in (its key, if any, goes to the OS keyring). Choosing restarts the engine
with that brain, the conversation carried over (desktop.brain_switch), and is remembered for the next start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QMainWindow

from ..core.actions import Notice
from ..local_llm_discovery import BRAIN_KEY, KNOWN_PORTS, BrainChoice, LocalServer, discover, is_http_url, short_model
from .menus import menu_named

log = logging.getLogger(__name__)

RULES_TEXT = "Built-in responder (rules)"
SEARCHING_TEXT = "Looking for local models…"
NONE_FOUND_TEXT = "No local chat server found (Ollama, llama.cpp, LM Studio, vLLM)"


class BrainMenu:
    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        self.session: Any = None
        #: The loopback ports probed when the menu opens (tests add their own server's).
        self.ports: tuple[tuple[int, str], ...] = KNOWN_PORTS
        #: What the last probe found (None: still looking, or never looked).
        self.servers: list[LocalServer] | None = None
        self._looking: asyncio.Future | None = None
        self.menu = menu_named(window, "&Connection").addMenu("Offline brain")
        self.menu.setToolTipsVisible(True)
        self.menu.menuAction().setVisible(False)
        self.menu.aboutToShow.connect(self.look)
        self._fill()

    def attach(self, session: Any) -> None:
        self.session = session
        self.menu.menuAction().setVisible(session.options.provider.kind == "engine")

    @property
    def current(self) -> BrainChoice:
        choice = getattr(getattr(self.session, "options", None), "engine_brain", None)
        if getattr(self.session, "brain_fallback", False):
            return BrainChoice()
        return choice if isinstance(choice, BrainChoice) else BrainChoice()

    # ------------------------------------------------------------------ the menu
    def look(self) -> None:
        """Probe the usual ports (off the UI thread); the menu fills in when they have answered."""
        self.servers = None
        self._fill()
        if self._looking is not None and not self._looking.done():
            return
        self._looking = asyncio.ensure_future(self._look())

    async def _look(self) -> None:
        ports = self.ports
        try:
            servers = await asyncio.get_running_loop().run_in_executor(None, lambda: discover(ports))
        except Exception as exc:  # noqa: BLE001 - the menu still offers the rules and a typed URL
            log.warning("looking for local chat servers failed: %s", exc)
            servers = []
        self.servers = servers
        self._fill()

    def _fill(self) -> None:
        self.menu.clear()
        current = self.current
        group = QActionGroup(self.menu)
        rules = self._choice_action(RULES_TEXT, BrainChoice(), current.is_rules, group)
        rules.setToolTip("Parley's offline rules: the time, the date, a story, repeating after you")
        self.menu.addSeparator()
        if self.servers is None:
            self.menu.addAction(SEARCHING_TEXT).setEnabled(False)
        elif not self.servers:
            self.menu.addAction(NONE_FOUND_TEXT).setEnabled(False)
        shown_current = current.is_rules
        for server in self.servers or []:
            for model in server.models or ("default",):
                choice = BrainChoice(server.url, model, server.name)
                checked = current.url == server.url and current.model == model
                shown_current = shown_current or checked
                action = self._choice_action(f"{server.name}: {short_model(model)}", choice, checked, group)
                action.setToolTip(f"{model} at {server.url}")
        if not shown_current:  # a typed URL, or a server not found now: still shown as the choice
            action = self._choice_action(f"{current.server or current.url}: {short_model(current.model)}", current, True, group)
            action.setToolTip(f"{current.model} at {current.url}")
        self.menu.addSeparator()
        self.menu.addAction("Other URL…").triggered.connect(self.ask_url)

    def _choice_action(self, text: str, choice: BrainChoice, checked: bool, group: QActionGroup) -> QAction:
        action = self.menu.addAction(text)
        action.setCheckable(True)
        action.setChecked(checked)
        action.setData(choice.to_settings())
        action.triggered.connect(lambda _checked=False, c=choice: self.choose(c))
        group.addAction(action)
        return action

    def ask_url(self) -> None:
        dialog = OtherUrlDialog(self.window, self.current)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        url, model, key = dialog.values()
        if not is_http_url(url):
            self.window.on_notification(Notice("warning", f"{url!r} is not an http:// or https:// URL."))
            return
        from urllib.parse import urlsplit

        choice = BrainChoice(url, model or "default", urlsplit(url).hostname or "", has_key=bool(key))
        if key:
            from ..secrets import SecretStoreError, store_secret

            try:
                store_secret(choice.key_name, key)
            except SecretStoreError as exc:  # used for this run only; never written to the settings file
                self.window.on_notification(Notice("warning", f"The key could not be saved ({exc}); it is used until Parley quits."))
                choice = BrainChoice(choice.url, choice.model, choice.server, has_key=False)
        self.choose(choice, key or None)

    # ------------------------------------------------------------------ choosing
    def choose(self, choice: BrainChoice, api_key: str | None = None) -> None:
        """Answer with `choice` from now on, in this conversation; remembered for the next start."""
        if self.session is None or (choice == self.current and api_key is None):
            return
        store = getattr(self.window, "layout_store", None)
        if store is not None:
            value = choice.to_settings()
            if value is None:
                store.remove(BRAIN_KEY)
            else:
                store.set(BRAIN_KEY, value)
            try:
                store.save()
            except OSError as exc:
                self.window.on_notification(Notice("warning", f"Settings could not be saved: {exc}"))
        if api_key is None:
            from ..brain_switch import brain_key

            api_key = brain_key(choice)
        from ..brain_switch import switch_brain

        asyncio.ensure_future(switch_brain(self.session, choice, api_key))


class OtherUrlDialog(QDialog):
    """Connection → Offline brain → Other URL…: a chat-completions server, its model, and an optional key."""

    def __init__(self, parent: QMainWindow, current: BrainChoice) -> None:
        super().__init__(parent)
        self.setWindowTitle("Offline brain: other URL")
        form = QFormLayout(self)
        self.url = QLineEdit(current.url or "http://127.0.0.1:8080/v1")
        self.url.setAccessibleName("Server URL")
        self.model = QLineEdit(current.model if current.url else "")
        self.model.setPlaceholderText("default")
        self.model.setAccessibleName("Model")
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("none (kept in the OS keyring)")
        self.key.setAccessibleName("API key")
        form.addRow("Server URL (OpenAI-compatible):", self.url)
        form.addRow("Model:", self.model)
        form.addRow("API key (optional):", self.key)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> tuple[str, str, str]:
        return self.url.text().strip(), self.model.text().strip(), self.key.text().strip()
