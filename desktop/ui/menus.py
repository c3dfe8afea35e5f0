"""The menu bar's menus, shared by the parts of the window that add to them."""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow, QMenu


def menu_named(window: QMainWindow, title: str) -> QMenu:
    """The menu bar's menu with this title ("&View"; the & is ignored when matching), made if missing."""
    bare = title.replace("&", "")
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == bare:
            return action.menu()
    return window.menuBar().addMenu(title)
