"""Rough edges a newcomer sees at the default window size: the Thinking phrases field shows its whole list and
lies inside the dock's visible area; the restore banner counts what a user counts and does not wrap awkwardly."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QLineEdit

from tests.window_session import window_and_session


def _rect_in(widget, ancestor) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def _whole_text_shown(field) -> bool:
    if isinstance(field, QLineEdit):  # one line: the text must not run past the field's edge
        return field.fontMetrics().horizontalAdvance(field.text()) <= field.contentsRect().width() - 6
    return (field.verticalScrollBar().maximum() == 0
            and field.document().size().width() <= field.viewport().width())


def test_thinking_phrases_fit_at_the_default_window_size(qtbot, tmp_path):
    window, _session = window_and_session(qtbot, tmp_path / "settings.json")
    qtbot.waitExposed(window)
    qtbot.wait(50)  # the wrapped field settles its height
    assert (window.width(), window.height()) == (1100, 700)  # the default size the window opens at
    dock = window.turn_ui.dock
    field = dock.think_phrases
    assert field.isVisible() and "give me a moment" in field.text()
    scroll = dock.widget()
    viewport = scroll.viewport()
    assert viewport.rect().contains(_rect_in(field, viewport)), (_rect_in(field, viewport), viewport.rect())
    assert dock.rules_box.rect().contains(_rect_in(field, dock.rules_box))
    assert not scroll.horizontalScrollBar().isVisible() and not scroll.verticalScrollBar().isVisible()
    assert _whole_text_shown(field), (field.text(), field.size())
    # Nothing below it overlaps it.
    assert _rect_in(dock.think_ms, dock.rules_box).top() >= _rect_in(field, dock.rules_box).bottom()
    window.grab().save(str(tmp_path / "default_size.png"))


def test_thinking_phrases_edit_still_changes_the_rule(qtbot, tmp_path):
    window, _session = window_and_session(qtbot, tmp_path / "settings.json")
    dock = window.turn_ui.dock
    seen = []
    dock.changed.connect(seen.append)
    field = dock.think_phrases
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, "let me check, one moment")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert seen, "Enter applies the edit"
    rule = next(r for r in seen[-1].rules if r.trigger == "user_said")
    assert rule.phrases == ("let me check", "one moment")
    assert "\n" not in field.toPlainText()  # Enter applies; it does not add a line
