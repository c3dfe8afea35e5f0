"""The transcript: both sides of the conversation, in the server's order, streaming as it arrives."""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTextBrowser, QWidget

from ..core.conversation import Conversation, ConversationItem

_STYLE = """
<style>
  .turn { margin: 6px 0 10px 0; }
  .who { font-weight: bold; }
  .user .who { color: #1565c0; }
  .assistant .who { color: #2e7d32; }
  .meta { color: #888; font-size: small; }
  .unheard { color: #9e9e9e; }
  .pending { color: #888; font-style: italic; }
  .failed { color: #c62828; }
</style>
"""


def render_item(item: ConversationItem) -> str:
    who = {"user": "You", "assistant": "Assistant", "system": "System"}.get(item.role, item.role.title())
    meta: list[str] = []
    if item.role == "user" and item.has_audio:
        meta.append("spoken")
    if item.images:
        meta += [f"image {im.width}×{im.height}, {im.byte_count // 1024} KB" for im in item.images]
    if item.interrupted:
        meta.append(f"interrupted at {item.truncated_at_ms / 1000:.1f} s")
    elif item.status == "cancelled":
        meta.append("cancelled")
    elif item.status == "incomplete":
        meta.append("incomplete")
    if item.transcription_failed:
        body = f'<span class="failed">(could not transcribe: {html.escape(item.transcription_failed)})</span>'
    elif item.interrupted and item.heard_text is not None:
        heard = html.escape(item.heard_text)
        unheard = html.escape(item.unheard_text)
        body = heard + (f' <span class="unheard">{unheard}</span>' if unheard else "") + ' <span class="meta">—</span>'
    elif item.text:
        body = html.escape(item.text)
    elif item.role == "user" and item.has_audio:
        body = '<span class="pending">(transcribing…)</span>'
    else:
        body = '<span class="pending">…</span>'
    meta_html = f' <span class="meta">· {" · ".join(meta)}</span>' if meta else ""
    return f'<div class="turn {item.role}"><span class="who">{who}</span>{meta_html}<br/>{body}</div>'


class TranscriptView(QTextBrowser):
    """Renders a `Conversation`. Changes are coalesced and repainted at most every 40 ms."""

    def __init__(self, conversation: Conversation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conversation = conversation
        self.setOpenLinks(False)
        self.setAccessibleName("Transcript")
        self.setPlaceholderText("Say something, or type below. The conversation appears here.")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(40)
        self._timer.timeout.connect(self.render_now)

    def set_conversation(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.schedule_render()

    def schedule_render(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def render_now(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        items = [render_item(i) for i in self.conversation if i.role in ("user", "assistant", "system")]
        self.setHtml(_STYLE + "".join(items) if items else "")
        if at_bottom:
            bar.setValue(bar.maximum())

    def plain_text(self) -> str:
        return self.toPlainText()
