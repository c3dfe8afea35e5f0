"""Conversation state: the items of a realtime conversation, in the server's order.

Items are placed by `item_id` / `previous_item_id`, never by arrival order: a user's transcript
often arrives after the assistant has started answering, and must still show above the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .usage import TokenUsage

Role = Literal["user", "assistant", "system", "tool"]


@dataclass
class ImageInfo:
    """What the transcript keeps of an image sent: its size, never the pixels."""

    width: int
    height: int
    byte_count: int
    mime_type: str
    source: str = ""


@dataclass
class ConversationItem:
    item_id: str
    role: Role = "user"
    kind: str = "message"
    #: Text shown for the item: the user's transcript or typed text, the assistant's transcript or text.
    text: str = ""
    #: True once the text is final (transcription completed, transcript done).
    text_final: bool = False
    #: The item carries audio (a spoken user turn or a spoken answer).
    has_audio: bool = False
    #: in_progress / completed / incomplete, as the server reports; "cancelled" when interrupted.
    status: str = "in_progress"
    transcription_failed: str | None = None
    #: Milliseconds of assistant audio received for this item (counted by the client).
    audio_received_ms: int = 0
    #: Barge-in: the item was cut at this many ms of audio; `heard_text` is what the user heard of the text.
    truncated_at_ms: int | None = None
    heard_text: str | None = None
    #: The provider cannot truncate (Gemini Live): the model's context keeps all of this interrupted answer,
    #: though the user heard only `heard_text`.
    model_kept_unheard: bool = False
    response_id: str | None = None
    images: list[ImageInfo] = field(default_factory=list)
    #: Assistant: ms from the end of the user's spoken turn (the server's `speech_stopped` reaching the client)
    #: to this answer's first audio reaching it; None for answers to typed or pushed turns.
    reply_latency_ms: int | None = None
    #: The user's speech span in the input buffer (from the server's VAD), in ms.
    audio_start_ms: int | None = None
    audio_end_ms: int | None = None
    #: The user's turn was (mostly) a sound file spoken for them (Audio → Speak a sound file): its name.
    spoken_from: str | None = None
    #: Tool items (kind "function_call" / "function_call_output"): the call's id, the function's name, its
    #: arguments (a JSON string, as the model wrote it) and the output sent back.
    call_id: str | None = None
    tool_name: str | None = None
    arguments: str | None = None
    #: Assistant: the token usage its response reported (`usage.TokenUsage`); None until response.done.
    usage: TokenUsage | None = None
    #: Assistant: the model that answered, as the session reported it (what its usage is priced by).
    model: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.truncated_at_ms is not None

    @property
    def unheard_text(self) -> str:
        if self.heard_text is None:
            return ""
        return self.text[len(self.heard_text):] if self.text.startswith(self.heard_text) else ""


def _take_tool_fields(placed: ConversationItem, item: dict[str, Any]) -> None:
    """A function call or its output: what it says, and a line of text for the transcript."""
    for key, attr in (("call_id", "call_id"), ("name", "tool_name"), ("arguments", "arguments")):
        value = item.get(key)
        if isinstance(value, str) and value:
            setattr(placed, attr, value)
    if placed.kind == "function_call":
        placed.text = f"{placed.tool_name or '?'}({placed.arguments or ''})"
    else:
        output = item.get("output")
        if isinstance(output, str):
            placed.text = output
    status = item.get("status")
    placed.text_final = placed.kind == "function_call_output" or status == "completed"
    if isinstance(status, str):
        placed.status = status
    elif placed.kind == "function_call_output":
        placed.status = "completed"


def _text_of_content(content: Any) -> tuple[str, bool, list[ImageInfo]]:
    """Text, has-audio and images of an item's content parts."""
    texts: list[str] = []
    has_audio = False
    images: list[ImageInfo] = []
    if not isinstance(content, list):
        return "", False, images
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("input_audio", "output_audio", "audio"):
            has_audio = True
            if isinstance(part.get("transcript"), str) and part["transcript"]:
                texts.append(part["transcript"])
    return " ".join(t for t in texts if t), has_audio, images


class Conversation:
    """Ordered conversation items, keyed by id."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, ConversationItem] = {}
        # Items placed before their predecessor was known: predecessor id -> waiting item ids.
        self._waiting_for: dict[str, list[str]] = {}
        # In a new server session, `previous_item_id: null` means "first of this session":
        # it goes after everything kept from earlier sessions.
        self._session_anchor: str | None = None

    # -- reading
    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __iter__(self):
        return (self._items[i] for i in self._order)

    def get(self, item_id: str) -> ConversationItem | None:
        return self._items.get(item_id)

    def index_of(self, item_id: str) -> int:
        return self._order.index(item_id)

    @property
    def items(self) -> list[ConversationItem]:
        return [self._items[i] for i in self._order]

    @property
    def last_item_id(self) -> str | None:
        return self._order[-1] if self._order else None

    def clear(self) -> None:
        """Forget every item (a new conversation). The same object stays, so views keep their reference."""
        self._order.clear()
        self._items.clear()
        self._waiting_for.clear()
        self._session_anchor = None

    # -- placing
    def begin_server_session(self) -> None:
        """A new server session (reconnect): its first item goes after what we already show."""
        self._session_anchor = self.last_item_id
        self._waiting_for.clear()

    def place(self, item_id: str, previous_item_id: str | None, *, explicit: bool = True, **attrs: Any) -> ConversationItem:
        """Insert or move `item_id` right after `previous_item_id`; create it if new.

        `explicit=False` means the caller does not know the predecessor (e.g. a transcript for an item
        not announced yet): a new item then goes at the end and an existing one stays where it is.
        """
        item = self._items.get(item_id)
        if item is None:
            item = ConversationItem(item_id=item_id)
            self._items[item_id] = item
        else:
            if not explicit:
                self._apply(item, attrs)
                return item
            self._order.remove(item_id)
        for key, value in attrs.items():
            setattr(item, key, value)
        if not explicit:
            self._order.append(item_id)
        elif previous_item_id is None:
            anchor = self._session_anchor
            pos = self._order.index(anchor) + 1 if anchor in self._items and anchor in self._order else 0
            self._order.insert(pos, item_id)
        elif previous_item_id in self._items and previous_item_id in self._order:
            pos = self._order.index(previous_item_id) + 1
            # Items already placed after the same predecessor but whose successor is this item come later.
            self._order.insert(pos, item_id)
        else:
            self._order.append(item_id)
            self._waiting_for.setdefault(previous_item_id, []).append(item_id)
        # Anything that was waiting for this item now moves right after it.
        for waiting in self._waiting_for.pop(item_id, []):
            if waiting in self._items and waiting != item_id:
                self._order.remove(waiting)
                self._order.insert(self._order.index(item_id) + 1, waiting)
        return item

    @staticmethod
    def _apply(item: ConversationItem, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            setattr(item, key, value)

    def ensure(self, item_id: str, role: Role) -> ConversationItem:
        """The item with this id, appended at the end if it was not known yet."""
        item = self._items.get(item_id)
        if item is None:
            item = self.place(item_id, None, explicit=False, role=role)
        return item

    def update_from_wire(self, item: dict[str, Any], previous_item_id: str | None, explicit: bool) -> ConversationItem | None:
        """Place an item from `conversation.item.added` / `.done` and take what it says."""
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            return None
        role = item.get("role") if item.get("role") in ("user", "assistant", "system") else None
        kind = item.get("type") if isinstance(item.get("type"), str) else "message"
        existing = self._items.get(item_id)
        placed = self.place(item_id, previous_item_id, explicit=explicit or existing is None)
        if role:
            placed.role = role
        elif kind in ("function_call", "function_call_output"):
            placed.role = "tool"
        placed.kind = kind
        if kind in ("function_call", "function_call_output"):
            _take_tool_fields(placed, item)
            return placed
        text, has_audio, _ = _text_of_content(item.get("content"))
        placed.has_audio = placed.has_audio or has_audio
        if text and not placed.text_final:
            # Typed messages and finished items carry their text; transcripts may come later.
            placed.text = text
            if not has_audio or isinstance(item.get("status"), str) and item["status"] == "completed":
                placed.text_final = placed.text_final or not has_audio
        status = item.get("status")
        if isinstance(status, str) and placed.status != "cancelled":
            placed.status = status
        return placed

    def delete(self, item_id: str) -> bool:
        if item_id not in self._items:
            return False
        self._order.remove(item_id)
        del self._items[item_id]
        return True

    def restore(self, items: list[ConversationItem]) -> None:
        """Load items saved from an earlier run, in order, before anything else."""
        for item in items:
            if item.item_id in self._items:
                continue
            self._items[item.item_id] = item
            self._order.append(item.item_id)
        self._session_anchor = self.last_item_id
