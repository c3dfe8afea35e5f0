"""Nothing lost: the conversation is saved as it happens, one JSON line per change, in the user's data directory.

Each run writes `conversations/<started>-<pid>.jsonl` under `platformdirs.user_data_dir("Parley")`:

    {"kind": "meta", "version": 1, "started": "...", "provider": "offline engine"}
    {"kind": "item", "item": {"item_id": ..., "role": "user", "text": ..., "images": [{width, height, ...}]}}
    {"kind": "order", "ids": [...]}          # only when an item was placed before one already saved
    {"kind": "removed", "id": ...}
    {"kind": "dismissed"} / {"kind": "restored"}   # the user answered the offer to bring it back

Only text and metadata are written — never audio, never image bytes (an image is its size, type and source).
Each line is flushed when written, so a `kill -9` loses at most the line being written; a change that
finishes a turn (final text, a status) is also fsynced. Streaming text is written at most every
`STREAM_WRITE_INTERVAL_S` per item. A torn last line is skipped when reading.

On the next start, `latest_saved()` finds the most recent earlier conversation that has turns and was
neither dismissed nor restored: the window offers it back.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

import platformdirs

from .core.actions import ItemChanged, ItemRemoved
from .core.conversation import Conversation, ConversationItem, ImageInfo
from .core.usage import TokenUsage

log = logging.getLogger(__name__)

VERSION = 1
STREAM_WRITE_INTERVAL_S = 1.0
#: Conversations kept on disk; older files are removed when a new one starts.
KEEP_FILES = 200
_ITEM_FIELDS = {f.name for f in dataclasses.fields(ConversationItem)}


def conversations_dir() -> Path:
    return Path(platformdirs.user_data_dir("Parley", appauthor=False)) / "conversations"


def item_to_record(item: ConversationItem) -> dict[str, Any]:
    record = dataclasses.asdict(item)
    record["images"] = [dataclasses.asdict(i) for i in item.images]  # metadata only: ImageInfo holds no pixels
    return record


def item_from_record(record: dict[str, Any]) -> ConversationItem | None:
    if not isinstance(record, dict) or not isinstance(record.get("item_id"), str):
        return None
    values = {k: v for k, v in record.items() if k in _ITEM_FIELDS and k != "images"}
    try:
        item = ConversationItem(**values)
        item.usage = TokenUsage.from_record(record.get("usage"))  # saved by asdict as a plain dict
        fields = {f.name for f in dataclasses.fields(ImageInfo)}
        item.images = [ImageInfo(**{k: v for k, v in i.items() if k in fields}) for i in record.get("images") or [] if isinstance(i, dict)]
    except TypeError:
        return None
    return item


@dataclass
class SavedConversation:
    path: Path
    items: list[ConversationItem]
    started: str
    provider: str
    modified: float
    answered: bool = False  # dismissed or restored already

    @property
    def turns(self) -> list[ConversationItem]:
        return [i for i in self.items if i.role in ("user", "assistant") and (i.text or i.images)]

    def summary(self) -> str:
        when = datetime.fromtimestamp(self.modified).strftime("%a %d %b %H:%M")
        return f"{len(self.turns)} turns, last changed {when}"


def read_conversation(path: Path) -> SavedConversation:
    """Read a saved conversation; torn or foreign lines are skipped."""
    items: dict[str, ConversationItem] = {}
    first_seen: list[str] = []
    order: list[str] | None = None
    meta: dict[str, Any] = {}
    answered = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the line a kill interrupted
            if not isinstance(record, dict):
                continue
            kind = record.get("kind")
            if kind == "item":
                item = item_from_record(record.get("item"))
                if item is not None:
                    if item.item_id not in items:
                        first_seen.append(item.item_id)
                    items[item.item_id] = item
            elif kind == "order" and isinstance(record.get("ids"), list):
                order = [i for i in record["ids"] if isinstance(i, str)]
            elif kind == "removed":
                items.pop(record.get("id"), None)
            elif kind == "meta":
                meta = record
            elif kind in ("dismissed", "restored"):
                answered = True
    ids = [i for i in (order or []) if i in items]
    ids += [i for i in first_seen if i in items and i not in ids]
    return SavedConversation(
        path=path,
        items=[items[i] for i in ids],
        started=str(meta.get("started", "")),
        provider=str(meta.get("provider", "")),
        modified=path.stat().st_mtime,
        answered=answered,
    )


def _saved_newest_first(directory: Path | None, exclude: Path | None) -> Iterator[SavedConversation]:
    """The saved conversations, newest first, except `exclude` (the one being written); unreadable files skipped."""
    directory = directory or conversations_dir()
    try:
        files = sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for path in files:
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            yield read_conversation(path)
        except OSError as exc:
            log.warning("cannot read saved conversation %s: %s", path.name, exc)


def latest_saved(directory: Path | None = None, exclude: Path | None = None) -> SavedConversation | None:
    """The most recent earlier conversation with turns that the user has not answered the offer for."""
    for saved in itertools.islice(_saved_newest_first(directory, exclude), 20):
        if saved.answered:
            return None  # the newest one was already dealt with: offer nothing older
        if saved.turns:
            return saved
    return None


def saved_conversations(directory: Path | None = None, exclude: Path | None = None, limit: int = 50) -> list[SavedConversation]:
    """Earlier conversations with turns, newest first (File → Open earlier conversation)."""
    with_turns = (saved for saved in _saved_newest_first(directory, exclude) if saved.turns)
    return list(itertools.islice(with_turns, limit))


def mark_answered(path: Path, answer: str) -> None:
    """Record that the user restored or dismissed this conversation (so it is not offered again)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": answer, "at": datetime.now().isoformat(timespec="seconds")}) + "\n")
    except OSError as exc:
        log.warning("cannot mark %s as %s: %s", path.name, answer, exc)


class TranscriptStore:
    """Saves one conversation as it happens. Feed it the session's notifications with `on_notification`."""

    def __init__(self, conversation: Conversation, directory: Path | None = None, provider: str = "") -> None:
        self.conversation = conversation
        self.directory = directory or conversations_dir()
        self.provider = provider
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.path = self.directory / f"{stamp}-{os.getpid()}.jsonl"
        n = 1
        while self.path.exists():  # a second conversation in the same second (File → New conversation)
            n += 1
            self.path = self.directory / f"{stamp}-{os.getpid()}-{n}.jsonl"
        self._file = None
        self._written: dict[str, dict[str, Any]] = {}
        self._written_at: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._order: list[str] = []
        self.problem: str | None = None
        self.lines_written = 0

    # ------------------------------------------------------------------ writing
    def _open(self) -> bool:
        if self._file is not None:
            return True
        if self.problem is not None:
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._prune()
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            self.problem = f"The conversation cannot be saved ({exc})."
            log.error("%s", self.problem)
            return False
        self._write({"kind": "meta", "version": VERSION, "started": datetime.now().isoformat(timespec="seconds"), "provider": self.provider})
        return True

    def _prune(self) -> None:
        files = sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - KEEP_FILES + 1)]:
            try:
                old.unlink()
            except OSError:
                pass

    def _write(self, record: dict[str, Any], sync: bool = False) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
            self.lines_written += 1
        except (OSError, ValueError) as exc:
            if self.problem is None:
                self.problem = f"The conversation could not be saved ({exc})."
                log.error("%s", self.problem)

    def on_notification(self, note: Any) -> None:
        if isinstance(note, ItemChanged):
            self.item_changed(note.item_id)
        elif isinstance(note, ItemRemoved):
            if note.item_id in self._written and self._open():
                self._write({"kind": "removed", "id": note.item_id})
                self._written.pop(note.item_id, None)
                self._order = [i for i in self._order if i != note.item_id]

    def item_changed(self, item_id: str, now: float | None = None) -> None:
        item = self.conversation.get(item_id)
        if item is None:
            return
        now = time.monotonic() if now is None else now
        record = item_to_record(item)
        last = self._written.get(item_id)
        if last == record:
            self._dirty.discard(item_id)
            return
        settled = last is None or any(last.get(k) != record[k] for k in ("text_final", "status", "truncated_at_ms", "transcription_failed", "images", "role"))
        if not settled and now - self._written_at.get(item_id, 0.0) < STREAM_WRITE_INTERVAL_S:
            self._dirty.add(item_id)  # streaming text: written with the next settled change or flush
            return
        self._save(item_id, record, now, sync=settled and (item.text_final or item.status != "in_progress"))
        for other in list(self._dirty):
            if now - self._written_at.get(other, 0.0) >= STREAM_WRITE_INTERVAL_S:
                self._flush_one(other, now)

    def _save(self, item_id: str, record: dict[str, Any], now: float, sync: bool = False) -> None:
        if not self._open():
            return
        self._write({"kind": "item", "item": record}, sync=sync)
        self._written[item_id] = record
        self._written_at[item_id] = now
        self._dirty.discard(item_id)
        if item_id not in self._order:
            self._order.append(item_id)
        self._save_order_if_moved()

    def _save_order_if_moved(self) -> None:
        saved = set(self._order)
        actual = [i.item_id for i in self.conversation if i.item_id in saved]
        if actual != self._order:
            self._order = actual
            self._write({"kind": "order", "ids": actual})

    def _flush_one(self, item_id: str, now: float) -> None:
        item = self.conversation.get(item_id)
        self._dirty.discard(item_id)
        if item is not None:
            record = item_to_record(item)
            if record != self._written.get(item_id):
                self._save(item_id, record, now)

    def flush(self) -> None:
        now = time.monotonic()
        for item_id in list(self._dirty):
            self._flush_one(item_id, now)
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except (OSError, ValueError):
                pass

    def save_all(self, items: Iterable[ConversationItem]) -> None:
        """Write these items now (a restored conversation continues in this run's file)."""
        now = time.monotonic()
        for item in items:
            self._save(item.item_id, item_to_record(item), now)
        self.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
