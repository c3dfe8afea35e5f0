"""A window with its own settings file, attached to a LiveSession on the embedded engine (not started)."""

from __future__ import annotations

from pathlib import Path

from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.settings import Settings
from desktop.ui.main_window import MainWindow


def window_and_session(qtbot, settings_path: Path, *, show: bool = True, provider=None, **options) -> tuple[MainWindow, LiveSession]:
    """`options` go to SessionOptions (default: no speaker). The settings file is the test's own, so nothing a
    test changes (push-to-talk, profiles) leaks into another test's window."""
    window = MainWindow(settings=Settings.load(settings_path), keep_layout=False)
    qtbot.addWidget(window)
    if show:
        window.show()
    options.setdefault("use_speaker", False)
    session = LiveSession(SessionOptions(provider or choose_provider(environ={}), **options))
    session.record_sent = True
    window.attach(session)
    return window, session
