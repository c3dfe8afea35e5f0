"""Re-seeding a new server session with the recent conversation, as far as the protocol allows.

After a reconnect the server starts an empty conversation: the model remembers nothing. The client still
has the transcript, and `conversation.item.create` lets it put text items back:

- what *can* be restored: the text of recent user turns (typed, or the transcript of what was said) as
  `input_text` user messages, and the text of recent answers as `output_text` assistant messages — of an
  interrupted answer only the part the user heard;
- what *cannot*: audio (Parley never keeps it, and the API does not accept assistant audio as input), images
  (only their size is kept, never the pixels), an answer that was being generated when the line dropped (it
  stays in the transcript as it was), uncommitted microphone audio, tool calls and their outputs, and the
  server's own hidden state (token caches, the 60-minute session clock restarts).

The items keep their original ids, so the echo the server sends back (`conversation.item.added`) can be
recognised and does not show the turns twice.
"""

from __future__ import annotations

from typing import Any, Iterable

from .conversation import ConversationItem
from .events import ClientEvents, text_part

#: How much context to put back: the last this-many text turns, at most this many characters in all.
DEFAULT_MAX_ITEMS = 20
DEFAULT_MAX_CHARS = 12_000


def restorable_text(item: ConversationItem) -> str:
    """The text of an item the model may be told again ('' when there is none)."""
    if item.kind != "message" or item.role not in ("user", "assistant"):
        return ""
    if item.transcription_failed:
        return ""
    if item.role == "assistant" and item.interrupted:
        return (item.heard_text or "").strip()
    if item.role == "assistant" and item.status == "in_progress":
        return ""  # cut off mid-generation: what was said is uncertain
    return item.text.strip()


def reseed_events(
    items: Iterable[ConversationItem],
    events: ClientEvents,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[dict[str, Any]]:
    """`conversation.item.create` events for the most recent restorable turns, oldest first."""
    chosen: list[tuple[ConversationItem, str]] = []
    budget = max_chars
    for item in reversed(list(items)):
        if len(chosen) >= max_items:
            break
        text = restorable_text(item)
        if not text:
            continue
        if len(text) > budget:
            if chosen:
                break
            text = text[-budget:]  # a single huge turn: keep its end
        budget -= len(text)
        chosen.append((item, text))
    chosen.reverse()
    out: list[dict[str, Any]] = []
    for item, text in chosen:
        if item.role == "user":
            content = [text_part(text)]
        else:
            content = [{"type": "output_text", "text": text}]
        wire = {"id": item.item_id, "type": "message", "role": item.role, "content": content}
        # No previous_item_id: each is appended to the new conversation, in the order sent.
        out.append(events.item_create(wire))
    return out
