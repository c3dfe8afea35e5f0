"""Connection → Provider: OpenAI, Azure OpenAI, Gemini Live, an OpenAI-compatible server, or the offline engine.

Choosing one that lacks its key or endpoint first asks for it (`provider_dialog.ProviderDialog`; the
OpenAI-compatible item always asks, it is a server of your choosing). The conversation then goes on with the new
provider (`LiveSession.switch_provider`: the engine started or stopped as needed, the recent turns carried over),
and the choice is remembered for the next start (settings key `provider.kind`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QDialog, QMainWindow

from ..core.actions import Notice
from ..providers import PROVIDER_KEY, PROVIDERS, ProviderChoice, ProviderSetupError, provider_choice
from .menus import menu_named

log = logging.getLogger(__name__)

#: The menu's items, in PROVIDERS' order.
ITEM_TEXT = {"openai": "OpenAI", "azure": "Azure OpenAI", "gemini": "Gemini Live",
             "compatible": "OpenAI-compatible…", "engine": "Offline engine"}


class ProviderMenu:
    def __init__(self, window: QMainWindow, settings: Any = None) -> None:
        self.window = window
        self.settings = settings
        self.session: Any = None
        #: The environment keys and endpoints are read from (None: the process's; tests give their own).
        self.environ: Mapping[str, str] | None = None
        #: Makes the dialog for a provider that lacks something (tests replace it to fill it in).
        self.make_dialog = lambda kind, missing: _dialog(window, kind, self._store(), missing)
        self.switching: asyncio.Future | None = None
        connection = menu_named(window, "&Connection")
        self.menu = connection.addMenu("Provider")
        model_menu = getattr(getattr(window, "reliability_ui", None), "model_menu", None)
        if model_menu is not None:  # first among the provider's settings: Provider, Model, API key…
            connection.removeAction(self.menu.menuAction())
            connection.insertMenu(model_menu.menuAction(), self.menu)
        self.group = QActionGroup(self.menu)
        self.actions: dict[str, QAction] = {}
        for kind in PROVIDERS:
            action = self.menu.addAction(ITEM_TEXT[kind])
            action.setCheckable(True)
            action.setData(kind)
            action.triggered.connect(lambda _checked=False, k=kind: self.choose(k))
            self.group.addAction(action)
            self.actions[kind] = action

    def _store(self) -> Any:
        return self.settings if self.settings is not None else getattr(self.window, "layout_store", None)

    def attach(self, session: Any) -> None:
        self.session = session
        self._show_current()

    @property
    def current(self) -> str | None:
        kind = getattr(getattr(getattr(self.session, "options", None), "provider", None), "kind", None)
        return "compatible" if kind == "custom" else kind

    def _show_current(self) -> None:
        current = self.current
        for kind, action in self.actions.items():
            action.setChecked(kind == current)
        # The parts of the Connection menu that belong to one provider follow it.
        brain = getattr(self.window, "brain_menu", None)
        if brain is not None:
            brain.menu.menuAction().setVisible(current == "engine")
        reliability = getattr(self.window, "reliability_ui", None)
        if reliability is not None:
            kind = getattr(getattr(self.session, "options", None), "provider", None)
            reliability.model_menu.menuAction().setVisible(getattr(kind, "kind", None) in ("openai", "custom"))

    # ------------------------------------------------------------------ choosing
    def choice_for(self, kind: str, api_key: str | None = None) -> ProviderChoice:
        """`kind` as it can be reached now (raises ProviderSetupError naming what is missing)."""
        return provider_choice(kind, api_key=api_key, environ=self.environ, settings=self._store(), use_keyring=True)

    def choose(self, kind: str) -> ProviderChoice | None:
        """Talk to `kind` from now on, in this conversation; remembered for the next start. None when it was not
        switched to (the dialog was cancelled)."""
        if kind == self.current and kind != "compatible":  # a compatible server may have a new URL or key
            self._show_current()
            return None
        key: str | None = None
        missing: tuple[str, ...] = ()
        try:
            choice = self.choice_for(kind)
        except ProviderSetupError as exc:
            choice, missing = None, exc.missing or ("key",)
        if kind == "compatible" or choice is None:
            dialog = self.make_dialog(kind, missing)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                self._show_current()
                return None
            key = dialog.key
            if dialog.key_problem:
                self._tell("warning", f"The key could not be saved ({dialog.key_problem}); it is used until Parley quits.")
            self._save()
            try:
                choice = self.choice_for(kind, api_key=key)
            except ProviderSetupError as exc:
                self._tell("warning", str(exc))
                self._show_current()
                return None
        store = self._store()
        if store is not None:
            store.set(PROVIDER_KEY, kind)
            self._save()
        if choice.api_key:
            from ..secrets import mask_in_logs

            mask_in_logs(choice.api_key)
            inspector = getattr(getattr(self.window, "reliability_ui", None), "inspector", None)
            if inspector is not None and choice.api_key not in inspector.log.secrets and len(choice.api_key) >= 8:
                inspector.log.secrets.append(choice.api_key)
        if self.session is not None:
            self.switching = asyncio.ensure_future(self._switch(choice))
        return choice

    async def _switch(self, choice: ProviderChoice) -> bool:
        assert self.session is not None
        try:
            ok = await self.session.switch_provider(choice)
        finally:
            self._show_current()
        return ok

    def _save(self) -> None:
        store = self._store()
        if store is None:
            return
        try:
            store.save()
        except OSError as exc:
            self._tell("warning", f"Settings could not be saved: {exc}")

    def _tell(self, level: str, text: str) -> None:
        self.window.on_notification(Notice(level, text))


def _dialog(window: QMainWindow, kind: str, settings: Any, missing: tuple[str, ...]):
    from .provider_dialog import ProviderDialog

    return ProviderDialog(window, kind, settings, missing)
