"""The event inspector: every client and server event with its time, filterable by type; payloads elided.

Hidden by default; View → Event inspector (Ctrl+Shift+E) shows it. Recording is always on, in a bounded
ring (`EventLog.capacity` entries), so opening the panel after something went wrong still shows it.
Audio (`audio`, audio `delta`) and image data URLs are replaced by their size; any long string is cut;
configured secrets are masked. Memory stays bounded over hours.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

MAX_STRING = 600
MAX_PARSE_BYTES = 4 * 1024 * 1024
AUDIO_CHUNK_TYPES = frozenset({"input_audio_buffer.append", "response.output_audio.delta", "response.audio.delta"})


def elide(value: Any, event_type: str = "", key: str = "") -> Any:
    """A copy of an event with audio and image payloads replaced by their size and long strings cut."""
    if isinstance(value, dict):
        return {k: elide(v, event_type, k) for k, v in value.items()}
    if isinstance(value, list):
        return [elide(v, event_type, key) for v in value[:50]] + ([f"… {len(value) - 50} more"] if len(value) > 50 else [])
    if isinstance(value, str):
        if key == "audio" or (key == "delta" and event_type in AUDIO_CHUNK_TYPES):
            return f"<audio: {len(value)} base64 chars, {len(value) * 3 // 4 // 2} samples elided>"
        if value.startswith("data:") and ";base64," in value[:80]:
            return f"<{value[5:value.index(';')]} data URL: {len(value)} chars elided>"
        if len(value) > MAX_STRING:
            return value[:MAX_STRING] + f"… ({len(value)} chars)"
    return value


@dataclass(frozen=True)
class Entry:
    at: float
    direction: str  # "client" | "server"
    type: str
    text: str  # the elided event as JSON

    @property
    def time_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{int(self.at * 1000) % 1000:03d}"


class EventLog:
    """The bounded record behind the panel (no Qt)."""

    def __init__(self, capacity: int = 3000, secrets: list[str | None] | None = None) -> None:
        self.entries: deque[Entry] = deque(maxlen=capacity)
        self.capacity = capacity
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 8]
        self.total = 0

    def record(self, direction: str, payload: Any, at: float | None = None) -> Entry:
        at = time.time() if at is None else at
        event: Any = payload
        if isinstance(payload, (str, bytes)):
            size = len(payload)
            if size > MAX_PARSE_BYTES:
                event = {"type": "(huge message)", "size": size}
            else:
                try:
                    event = json.loads(payload)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    shown = payload[:MAX_STRING] if isinstance(payload, str) else repr(payload[:MAX_STRING])
                    event = {"type": "(not JSON)", "text": shown}
        kind = event.get("type") if isinstance(event, dict) else None
        kind = kind if isinstance(kind, str) else f"({type(event).__name__})"
        try:
            text = json.dumps(elide(event, kind), ensure_ascii=False, indent=1)
        except (TypeError, ValueError, RecursionError):
            text = "(cannot show)"
        for secret in self.secrets:
            text = text.replace(secret, "***")
        entry = Entry(at, direction, kind, text)
        self.entries.append(entry)
        self.total += 1
        return entry


    def to_jsonl(self) -> str:
        """The recorded events, oldest first, one JSON object a line (as shown: audio elided, secrets masked)."""
        lines = []
        for e in self.entries:
            try:
                event: Any = json.loads(e.text)
            except ValueError:
                event = e.text
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e.at)) + f".{int(e.at * 1000) % 1000:03d}"
            lines.append(json.dumps({"at": stamp, "direction": e.direction, "event": event}, ensure_ascii=False))
        return "\n".join(lines) + ("\n" if lines else "")


class _Model(QAbstractTableModel):
    HEADERS = ("Time", "", "Type")

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Entry] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008,N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008,N802
        return 3

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        e = self.rows[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return "sent by Parley" if e.direction == "client" else "received from the server"
        return (e.time_text, "→" if e.direction == "client" else "←", e.type)[index.column()]

    def replace(self, rows: list[Entry]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def append(self, rows: list[Entry], limit: int) -> None:
        if rows:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
            self.rows.extend(rows)
            self.endInsertRows()
        extra = len(self.rows) - limit
        if extra > 0:
            self.beginRemoveRows(QModelIndex(), 0, extra - 1)
            del self.rows[:extra]
            self.endRemoveRows()


class EventInspector(QDockWidget):
    """The panel. Feed it with `tap(direction, payload)` (a `LiveSession.event_taps` entry)."""

    def __init__(self, parent: QWidget | None = None, secrets: list[str | None] | None = None, capacity: int = 3000) -> None:
        super().__init__("Event inspector", parent)
        self.setObjectName("EventInspector")
        self.log = EventLog(capacity, secrets)
        self._pending: list[Entry] = []
        self.model = _Model()

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by type, e.g. response, error")
        self.filter_edit.setAccessibleName("Event type filter")
        self.filter_edit.setClearButtonEnabled(True)
        self.direction_box = QComboBox()
        self.direction_box.addItems(["Sent and received", "Sent (→)", "Received (←)"])
        self.direction_box.setAccessibleName("Direction")
        self.audio_box = QCheckBox("Audio chunks")
        self.audio_box.setToolTip("Show input_audio_buffer.append and output audio deltas (payloads are elided)")
        self.clear_button = QPushButton("Clear")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the recorded events as JSON Lines (audio elided, keys masked), e.g. for a bug report")
        self.count_label = QLabel()
        for w in (self.filter_edit, self.direction_box, self.audio_box):
            signal = w.textChanged if isinstance(w, QLineEdit) else w.currentIndexChanged if isinstance(w, QComboBox) else w.toggled
            signal.connect(self._refilter)
        self.clear_button.clicked.connect(self.clear)
        self.save_button.clicked.connect(self._choose_file)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(18)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setAccessibleName("Events")
        self.table.selectionModel().currentRowChanged.connect(self._show_detail)
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setAccessibleName("Event detail")
        self.detail.setPlaceholderText("Select an event to see it.")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setSizes([300, 160])

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.direction_box)
        bar.addWidget(self.audio_box)
        bar.addWidget(self.clear_button)
        bar.addWidget(self.save_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.count_label)
        self.setWidget(body)

        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.flush)
        self._timer.start()
        self.visibilityChanged.connect(lambda shown: self._refilter() if shown else None)
        self.hide()

    # ------------------------------------------------------------------ saving
    def save(self, path: str) -> str | None:
        """Write the recorded events to `path`; None when it worked, else why not."""
        self.flush()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.log.to_jsonl())
        except OSError as exc:
            return f"The events could not be saved to {path}: {exc}"
        return None

    def _choose_file(self) -> None:
        from pathlib import Path

        from PySide6.QtCore import QStandardPaths
        from PySide6.QtWidgets import QFileDialog, QMessageBox

        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
        name = time.strftime("Parley events %Y-%m-%d %H-%M.jsonl")
        path, _ = QFileDialog.getSaveFileName(self, "Save events", str(Path(folder) / name), "JSON Lines (*.jsonl)")
        if path:
            problem = self.save(path)
            if problem:
                QMessageBox.warning(self, "Save events", problem)
            else:
                self.count_label.setText(f"Saved {len(self.log.entries)} events to {path}")

    # ------------------------------------------------------------------ recording
    def tap(self, direction: str, payload: Any) -> None:
        entry = self.log.record(direction, payload)
        self._pending.append(entry)
        if len(self._pending) > self.log.capacity:
            del self._pending[: len(self._pending) - self.log.capacity]

    def clear(self) -> None:
        self.log.entries.clear()
        self._pending.clear()
        self.model.replace([])
        self.detail.clear()
        self._update_count()

    # ------------------------------------------------------------------ view
    def matches(self, e: Entry) -> bool:
        direction = self.direction_box.currentIndex()
        if direction == 1 and e.direction != "client" or direction == 2 and e.direction != "server":
            return False
        if not self.audio_box.isChecked() and e.type in AUDIO_CHUNK_TYPES:
            return False
        words = [w.strip().lower() for w in self.filter_edit.text().replace(",", " ").split() if w.strip()]
        return not words or any(w in e.type.lower() for w in words)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if not self.isVisible():
            return  # rebuilt from the log when shown
        bar = self.table.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self.model.append([e for e in pending if self.matches(e)], self.log.capacity)
        if at_bottom:
            self.table.scrollToBottom()
        self._update_count()

    def _refilter(self, *_: Any) -> None:
        self._pending.clear()
        self.model.replace([e for e in self.log.entries if self.matches(e)])
        self.table.scrollToBottom()
        self._update_count()

    def _update_count(self) -> None:
        self.count_label.setText(f"{self.model.rowCount()} shown · {len(self.log.entries)} kept of {self.log.total} events (last {self.log.capacity} kept)")

    def _show_detail(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and current.row() < len(self.model.rows):
            e = self.model.rows[current.row()]
            self.detail.setPlainText(f"{e.time_text}  {'sent' if e.direction == 'client' else 'received'}\n{e.text}")

    def shown_types(self) -> list[str]:
        return [e.type for e in self.model.rows]
