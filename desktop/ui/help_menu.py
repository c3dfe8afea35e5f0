"""The Help menu: the keyboard shortcuts (F1) and About Parley (version, licence, third-party notices).

The shortcut list is read from the window's own actions when it opens, so it always matches what the keys
do; push-to-talk (Space) and Esc are key handlers rather than actions and are added by name. About shows
`LICENSE` and `THIRD_PARTY_NOTICES.md` as shipped with this copy of Parley (from the source tree, or from
the installed bundle), which is how a GPL program that bundles Piper and espeak-ng passes their terms on.
"""

from __future__ import annotations

import platform
import sys

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
)

from .. import __version__
from ..resources import legal_file
from .menus import menu_named

#: Keys handled outside QActions (see turn_ui's key filter): (what it does, key).
KEY_HANDLERS = (
    ("Push-to-talk: hold to talk, release to send (focus outside the text box)", "Space"),
    ("Push-to-talk: throw the turn away", "Esc"),
    ("Send the typed message", "Enter"),
    ("Apply the instructions, or send a tool's typed result (in their box)", "Ctrl+Enter"),
)


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    """(what, keys) for every action of the window with a shortcut, then the key handlers; sorted by what."""
    rows: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        what = action.text().replace("&", "").rstrip(".…").strip()
        if keys and what:
            rows.setdefault(what, " or ".join(keys))
    ordered = sorted(rows.items(), key=lambda row: row[0].lower())
    return ordered + list(KEY_HANDLERS)


class ShortcutsDialog(QDialog):
    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, (what, keys) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(what))
            self.table.setItem(i, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(580, 480)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]


def _read(name: str) -> str:
    path = legal_file(name)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"{name} was not found with this copy of Parley ({path}: {exc.strerror or exc})."


class AboutDialog(QDialog):
    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.setWindowTitle("About Parley")
        summary = QLabel(
            f"<h3>Parley {__version__}</h3>"
            "<p>Talk to realtime speech-to-speech models with your voice, your images and your screen.</p>"
            "<p>Parley is free software: you can redistribute it and modify it under the terms of the GNU General "
            "Public License, version 3 or (at your option) any later version. It comes with no warranty. It "
            "ships third-party models and software under their own terms, listed under <i>Third-party "
            "notices</i>.</p>"
            f"<p>Python {platform.python_version()} · {sys.platform}</p>"
        )
        summary.setWordWrap(True)
        self.tabs = QTabWidget(self)
        notices = QTextBrowser(self)  # the notices are Markdown (tables); the licence is plain text
        notices.setOpenExternalLinks(True)
        notices.setMarkdown(_read("THIRD_PARTY_NOTICES.md"))
        self.tabs.addTab(notices, "Third-party notices")
        licence = QPlainTextEdit(self)
        licence.setReadOnly(True)
        licence.setPlainText(_read("LICENSE"))
        self.tabs.addTab(licence, "Licence (GPL-3.0-or-later)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(buttons)
        self.summary = summary
        self.resize(720, 560)

    def tab_text(self, index: int) -> str:
        return self.tabs.widget(index).toPlainText()


class HelpMenu:
    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        menu = menu_named(window, "&Help")
        self.shortcuts_action = QAction("Keyboard shortcuts", window)
        self.shortcuts_action.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))  # F1
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.about_action = QAction("About Parley", window)
        self.about_action.triggered.connect(self.show_about)
        self.logs_action = QAction("Open log folder", window)
        self.logs_action.setToolTip("The log files, to attach to a bug report (API keys are masked in them)")
        self.logs_action.triggered.connect(self.open_logs)
        menu.addAction(self.shortcuts_action)
        menu.addAction(self.logs_action)
        menu.addAction(self.about_action)
        window.addAction(self.shortcuts_action)
        self.dialog: QDialog | None = None

    def open_logs(self) -> str:
        """Show the log folder in the file manager; the folder's path (also in a notice, to copy)."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from ..core.actions import Notice
        from ..logging_setup import log_dir

        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        notify = getattr(self.window, "on_notification", None)
        if notify is not None:
            notify(Notice("info", f"Logs are in {folder}" + ("" if opened else " (no file manager could open it)")))
        return str(folder)

    def show_shortcuts(self) -> ShortcutsDialog:
        self.dialog = ShortcutsDialog(self.window)
        self.dialog.show()
        return self.dialog

    def show_about(self) -> AboutDialog:
        self.dialog = AboutDialog(self.window)
        self.dialog.show()
        return self.dialog
