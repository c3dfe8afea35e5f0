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


def _save_conversation(asked: int, answered: int) -> None:
    from desktop.core.actions import ItemChanged
    from desktop.core.conversation import Conversation
    from desktop.transcript_store import TranscriptStore

    c = Conversation()
    previous = None
    for n in range(max(asked, answered)):
        if n < asked:
            c.place(f"item_u{n}", previous, role="user", text=f"question {n}?", text_final=True, status="completed")
            previous = f"item_u{n}"
        if n < answered:
            c.place(f"item_a{n}", previous, role="assistant", text=f"answer {n}.", text_final=True, status="completed")
            previous = f"item_a{n}"
    store = TranscriptStore(c, provider="offline engine")
    for item in c:
        store.on_notification(ItemChanged(item.item_id))
    store.close()


def _visual_lines(label) -> int:
    """How many lines the label's text takes at the label's width (QLabel lays out rich text this way)."""
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setDocumentMargin(0)
    doc.setDefaultFont(label.font())
    doc.setHtml(label.text())
    doc.setTextWidth(label.contentsRect().width())
    doc.size()  # lays it out
    lines, block = 0, doc.firstBlock()
    while block.isValid():
        lines += block.layout().lineCount()
        block = block.next()
    return lines


def test_the_restore_banner_counts_questions_and_answers_and_breaks_only_where_its_text_does(qtbot, tmp_path,
                                                                                           monkeypatch):
    cases = [((1, 1), "your question and its answer"), ((3, 3), "3 questions and their answers"),
             ((2, 1), "2 questions and 1 answer"), ((12, 11), "12 questions and 11 answers"),
             ((1, 0), "your question, not answered")]
    for n, ((asked, answered), words) in enumerate(cases):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / f"data{n}"))
        _save_conversation(asked, answered)
        window, _session = window_and_session(qtbot, tmp_path / f"settings{n}.json")
        qtbot.waitExposed(window)
        assert (window.width(), window.height()) == (1100, 700)
        ui = window.reliability_ui
        banner = ui.restore_banner
        assert banner.isVisible()
        text = banner.label.text()
        assert words in text, text
        assert "turns" not in text
        assert text.count("Bring") == 1
        intended = text.count("<br/>") + 1
        assert _visual_lines(banner.label) == intended, (text, banner.label.width())
        # The question sits on the first line, next to the Restore and Dismiss buttons.
        first_line = text.split("<br/>")[0]
        assert "Bring" in first_line and first_line.rstrip("</b>").endswith("?")
        if (asked, answered) == (1, 1):
            banner.grab().save(str(tmp_path / "restore_banner.png"))
            ui.restore_button.click()
            assert window.notices[-1].message == "Brought back your last conversation: your question and its answer."
        window.close()
