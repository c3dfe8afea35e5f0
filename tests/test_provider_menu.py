"""Connection → Provider: the five providers, the choice kept for the next start, the dialog putting a key in the
OS keyring (a real Secret Service) and the rest in settings, and a switch mid-conversation from the offline engine
to an OpenAI-compatible server (a second engine) and back, the conversation carried over."""

from __future__ import annotations

import json

import keyring
import keyring.errors
import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from desktop import secrets
from desktop.core.actions import Notice
from desktop.providers import (
    AZURE_DEPLOYMENT_KEY,
    AZURE_ENDPOINT_KEY,
    COMPATIBLE_AUTH_KEY,
    COMPATIBLE_URL_KEY,
    PROVIDER_KEY,
)
from desktop.settings import Settings
from desktop.transport.engine_process import EngineProcess
from desktop.ui.main_window import MainWindow
from desktop.ui.provider_dialog import ProviderDialog
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until
from tests.window_session import window_and_session

AZURE_KEY = "az" + "9c1d" * 8
GEMINI_KEY = "AIzaSy" + "Pm7" * 11


def _window(qtbot, path) -> MainWindow:
    window = MainWindow(settings=Settings.load(path), keep_layout=False)
    qtbot.addWidget(window)
    return window


def test_the_menu_lists_the_five_providers_with_the_current_one_checked(qtbot, tmp_path):
    window, session = window_and_session(qtbot, tmp_path / "settings.json", show=False)
    menu = window.provider_menu.menu
    from desktop.ui.menus import menu_named

    connection = [a.text() for a in menu_named(window, "&Connection").actions()]
    assert [a.text() for a in menu.actions()] == ["OpenAI", "Azure OpenAI", "Gemini Live", "OpenAI-compatible…",
                                                  "Offline engine"]
    assert [a.text() for a in menu.actions() if a.isChecked()] == ["Offline engine"]
    assert connection.index("Provider") == connection.index("Model") - 1  # first of the provider's own items
    assert window.provider_menu.group.isExclusive()


def test_choosing_a_provider_is_kept_and_its_key_is_not(qtbot, tmp_path):
    path = tmp_path / "settings.json"
    window = _window(qtbot, path)  # no session: the choice is only kept
    window.provider_menu.environ = {"AZURE_OPENAI_API_KEY": AZURE_KEY, "AZURE_OPENAI_ENDPOINT": "https://parley.openai.azure.com",
                                    "AZURE_OPENAI_DEPLOYMENT": "gpt-realtime"}
    window.provider_menu.make_dialog = lambda kind, missing: pytest.fail(f"nothing is missing, yet asked: {missing}")
    choice = window.provider_menu.choose("azure")
    assert choice.kind == "azure" and choice.api_key == AZURE_KEY and choice.auth == "api-key"
    text = path.read_text()
    assert json.loads(text)[PROVIDER_KEY] == "azure" and AZURE_KEY not in text
    # The next start takes it.
    from desktop.providers import choose_provider

    assert choose_provider(environ=window.provider_menu.environ, settings=Settings.load(path)).kind == "azure"


@pytest.fixture
def real_keyring(session_bus):
    import keyring.backends.SecretService

    keyring.set_keyring(keyring.backends.SecretService.Keyring())
    secrets._keyring()
    names = ["azure-openai", "gemini", "compatible:127.0.0.1:9"]
    yield names
    for name in names:
        try:
            keyring.delete_password(secrets.SERVICE, name)
        except keyring.errors.PasswordDeleteError:
            pass


def _fill_when_shown(qtbot, fill) -> list:
    """Fill in the provider dialog once it is shown (modal) and press OK; what it showed is returned in a list."""
    seen: list = []

    def attempt():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ProviderDialog):
            QTimer.singleShot(20, attempt)
            return
        seen.append(dialog.backend.text())
        fill(dialog)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        if dialog.isVisible():  # refused: say why, then give up
            seen.append(dialog.message.text())
            dialog.reject()

    QTimer.singleShot(0, attempt)
    return seen


def test_the_dialog_asks_for_what_is_missing_and_keeps_the_key_in_the_keyring(real_keyring, qtbot, tmp_path):
    path = tmp_path / "settings.json"
    window = _window(qtbot, path)
    menu = window.provider_menu
    menu.environ = {}

    def azure(dialog):
        dialog.endpoint.setText("https://parley-res.cognitiveservices.azure.com/")
        dialog.deployment.setText("gpt-realtime")
        dialog.api_version.setText("2025-04-01-preview")
        dialog.key_edit.setText(AZURE_KEY)

    seen = _fill_when_shown(qtbot, azure)
    choice = menu.choose("azure")
    assert seen and "SecretServiceKeyring" in seen[0], seen
    assert choice is not None and choice.api_key == AZURE_KEY
    assert choice.url == ("wss://parley-res.cognitiveservices.azure.com/openai/realtime"
                          "?api-version=2025-04-01-preview&deployment=gpt-realtime")
    assert keyring.get_password(secrets.SERVICE, "azure-openai") == AZURE_KEY
    saved = json.loads(path.read_text())
    assert saved[PROVIDER_KEY] == "azure" and saved[AZURE_DEPLOYMENT_KEY] == "gpt-realtime"
    assert saved[AZURE_ENDPOINT_KEY] == "https://parley-res.cognitiveservices.azure.com/"

    # A key too short is refused in the dialog, and nothing changes.
    seen = _fill_when_shown(qtbot, lambda d: d.key_edit.setText("short"))
    assert menu.choose("gemini") is None and "too short" in seen[-1]
    assert json.loads(path.read_text())[PROVIDER_KEY] == "azure" and keyring.get_password(secrets.SERVICE, "gemini") is None

    seen = _fill_when_shown(qtbot, lambda d: d.key_edit.setText(GEMINI_KEY))
    gemini = menu.choose("gemini")
    assert gemini.kind == "gemini" and gemini.api_key == GEMINI_KEY and gemini.auth == "x-goog-api-key"
    assert keyring.get_password(secrets.SERVICE, "gemini") == GEMINI_KEY
    # Chosen again later, nothing is missing: no dialog.
    menu.make_dialog = lambda kind, missing: pytest.fail("asked again")
    assert menu.choose("azure").api_key == AZURE_KEY
    text = path.read_text()
    assert AZURE_KEY not in text and GEMINI_KEY not in text


@pytest.mark.slow
def test_switching_from_the_engine_to_a_compatible_server_and_back_keeps_the_conversation(qtbot, qasync_loop, tmp_path):
    second = EngineProcess("warning")
    qasync_loop.run_until_complete(second.start())
    try:
        path = tmp_path / "settings.json"
        window, session = window_and_session(qtbot, path)
        menu = window.provider_menu

        def compatible_dialog(kind, missing):
            dialog = ProviderDialog(window, kind, window.layout_store, missing)
            dialog.url.setText(second.url)
            dialog.auth.setCurrentIndex(dialog.auth.findData("none"))
            dialog.exec = lambda: (dialog.accept(), dialog.result())[1]  # filled in as a user would, then OK
            return dialog

        menu.make_dialog = compatible_dialog

        async def answered(n: int) -> bool:
            return await wait_until(lambda: len([i for i in session.client.conversation
                                                 if i.role == "assistant" and i.text_final]) >= n, 30)

        async def scenario():
            assert await session.start(), session.status
            first_engine = session.engine
            assert first_engine is not None and first_engine.running
            assert session.send_text("Repeat after me: the first server.")
            assert await answered(1)
            sent, drops = len(session.sent_events), session.drops
            choice = menu.choose("compatible")
            assert choice.kind == "compatible" and choice.auth == "none" and choice.url == second.url
            assert await menu.switching
            assert session.status.phase == "connected" and session.transport.endpoint.url == second.url
            assert session.engine is None and not first_engine.running  # the app's own engine was stopped
            assert window.windowTitle() == "Parley — 127.0.0.1"
            assert [a.text() for a in menu.menu.actions() if a.isChecked()] == ["OpenAI-compatible…"]
            assert not window.brain_menu.menu.menuAction().isVisible()
            assert session.drops == drops and "the first server" in window.transcript_text()
            reseeded = [e for e in session.sent_events[sent:] if e["type"] == "conversation.item.create"]
            assert len(reseeded) == 2, [e["type"] for e in session.sent_events[sent:]]
            assert any(isinstance(n, Notice) and "Now talking to 127.0.0.1" in n.message for n in window.notices)
            assert session.send_text("Repeat after me: the second server.")
            assert await answered(2)

            sent = len(session.sent_events)
            assert menu.choose("engine").kind == "engine"
            assert await menu.switching
            assert session.engine is not None and session.engine.running and session.engine.port != second.port
            assert session.status.phase == "connected" and session.transport.endpoint.url == session.engine.url
            assert window.brain_menu.menu.menuAction().isVisible()
            reseeded = [e for e in session.sent_events[sent:] if e["type"] == "conversation.item.create"]
            assert len(reseeded) >= 2
            assert session.send_text("Repeat after me: the engine again.")
            assert await answered(3)
            await session.stop()

        qasync_loop.run_until_complete(scenario())
        saved = json.loads(path.read_text())
        assert saved[PROVIDER_KEY] == "engine" and saved[COMPATIBLE_URL_KEY] == second.url
        assert saved[COMPATIBLE_AUTH_KEY] == "none"
        for event in session.sent_events:
            validate_client_event(event)
    finally:
        qasync_loop.run_until_complete(second.stop())
