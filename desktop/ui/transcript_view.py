"""The transcript: both sides of the conversation, in the server's order, streaming as it arrives."""

from __future__ import annotations

import html

from typing import Any, Callable

from PySide6.QtCore import QPoint, QTimer, QUrl, Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QMenu, QTextBrowser, QWidget

from ..core.conversation import Conversation, ConversationItem
from ..transcript_export import SPEAKER, item_meta

_STYLE = """
<style>
  .turn { margin: 6px 0 10px 0; }
  .who { font-weight: bold; }
  .user .who { color: #1565c0; }
  .assistant .who { color: #2e7d32; }
  .tool .who { color: #6a1b9a; }
  .tool .call { font-family: monospace; }
  .meta { color: #888; font-size: small; }
  .unheard { color: #9e9e9e; }
  .pending { color: #888; font-style: italic; }
  .failed { color: #c62828; }
</style>
"""


TURN_ANCHOR = "turn-"


def render_item(item: ConversationItem, image_key: Callable[[Any], str | None] | None = None) -> str:
    who = SPEAKER.get(item.role, item.role.title())
    meta = item_meta(item)
    if item.transcription_failed:
        body = f'<span class="failed">(could not transcribe: {html.escape(item.transcription_failed)})</span>'
    elif item.interrupted and item.heard_text is not None:
        heard = html.escape(item.heard_text)
        unheard = html.escape(item.unheard_text)
        cut = '<b style="color:#c62828" title="you interrupted here">&nbsp;|&nbsp;</b>'
        body = heard + cut + (f'<span class="unheard">{unheard}</span>' if unheard else "")
        if item.model_kept_unheard:
            body += ('<br/><span class="meta" title="This provider has no truncate: the model could not be told '
                     'where you interrupted.">(not truncated: this provider cannot cut the answer, so the model '
                     'remembers all of it, heard or not)</span>')
    elif item.role == "tool" and item.text:
        body = f'<span class="call">{html.escape(item.text)}</span>'
    elif item.text:
        body = html.escape(item.text)
    elif item.role == "user" and item.has_audio:
        body = '<span class="pending">(transcribing…)</span>'
    else:
        body = '<span class="pending">…</span>'
    meta_html = f' <span class="meta">· {" · ".join(meta)}</span>' if meta else ""
    # Thumbnails of the images sent (click: full size); the view loads them by key from its image store.
    keys = [k for k in (image_key(im) for im in item.images) if k] if image_key and item.images else []
    thumbs = "".join(f'<a href="{k}"><img src="{k}"/></a>&nbsp;' for k in keys)
    if thumbs:
        body = thumbs + ("<br/>" + body if item.text else "")
    # The named anchor marks where each turn starts: the context menu finds the turn under the pointer by it.
    return (f'<div class="turn {item.role}"><span class="who"><a name="{TURN_ANCHOR}{html.escape(item.item_id)}">'
            f'{who}</a></span>{meta_html}<br/>{body}</div>')


class TranscriptView(QTextBrowser):
    """Renders a `Conversation`. Changes are coalesced and repainted at most every 40 ms."""

    #: A thumbnail was clicked: its image-store key.
    image_clicked = Signal(str)

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
        #: Where thumbnails come from (`key_for(info)`, `thumbnail(key)`); set by the attachments feature.
        self.image_store: Any = None
        self.anchorClicked.connect(self._on_anchor)
        #: Adds a turn's own actions (speak it again, delete it…) to the context menu: (item, menu) -> None.
        self.turn_actions: Callable[[ConversationItem, QMenu], None] | None = None

    def set_conversation(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.schedule_render()

    def schedule_render(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def render_now(self) -> None:
        bar = self.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        key = self.image_store.key_for if self.image_store is not None else None
        items = [render_item(i, key) for i in self.conversation if i.role in ("user", "assistant", "system", "tool")]
        self.setHtml(_STYLE + "".join(items) if items else "")
        if at_bottom:
            bar.setValue(bar.maximum())

    def loadResource(self, kind: int, url: QUrl) -> Any:  # noqa: N802 - Qt API
        if self.image_store is not None and int(getattr(kind, "value", kind)) == QTextDocument.ResourceType.ImageResource.value:
            thumb = self.image_store.thumbnail(url.toString())
            if thumb is not None:
                return thumb
        return super().loadResource(kind, url)

    def _on_anchor(self, url: QUrl) -> None:
        if self.image_store is not None and self.image_store.key_for is not None and url.scheme() == "parley-image":
            self.image_clicked.emit(url.toString())

    def plain_text(self) -> str:
        return self.toPlainText()

    # ------------------------------------------------------------------ a turn's context menu
    def item_at(self, pos: QPoint) -> ConversationItem | None:
        """The turn under `pos` (viewport coordinates): the nearest turn start at or before it in the text."""
        return self.item_at_position(self.cursorForPosition(pos).position())

    def item_at_position(self, position: int) -> ConversationItem | None:
        block = self.document().findBlock(position)
        while block.isValid():
            fragments = []
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.isValid() and fragment.position() <= position:
                    fragments.append(fragment)
                it += 1
            for fragment in reversed(fragments):
                for name in fragment.charFormat().anchorNames():
                    if name.startswith(TURN_ANCHOR):
                        return self.conversation.get(name[len(TURN_ANCHOR):])
            block = block.previous()
        return None

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt API
        menu = self.createStandardContextMenu(event.pos())
        item = self.item_at(event.pos())
        if item is not None and self.turn_actions is not None:
            menu.addSeparator()
            self.turn_actions(item, menu)
        menu.exec(event.globalPos())
        menu.deleteLater()

    def position_of(self, item_id: str) -> int | None:
        """Where the turn `item_id` starts in the text (for tests and keyboard use), or None."""
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.isValid() and TURN_ANCHOR + item_id in fragment.charFormat().anchorNames():
                    return fragment.position()
                it += 1
            block = block.next()
        return None
