"""Turn-taking controls in the main window: the settings dock, the waveform, push-to-talk and its keys.

`TurnUi(window)` installs everything into a `MainWindow`; `attach(session)` wires it to a `LiveSession`.
Keys (while the Parley window has focus and the focus is not in a text field):
Space held = push-to-talk (auto-repeat ignored), Esc = discard what was said (`input_audio_buffer.clear`).
Settings persist under the "turn" key of the app settings file.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from ..core import turn_taking as tt
from ..core.actions import Notice, SessionChanged, SpeechBoundary
from ..settings import Settings
from ..turn_controller import PushToTalkState, SilenceOverride, TurnSettingsChanged
from .menus import menu_named
from .settings_dock import SettingsDock
from .waveform import Waveform

log = logging.getLogger(__name__)
SETTINGS_KEY = "turn"


class TurnUi(QObject):
    def __init__(self, window, settings: Settings | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.store = settings or Settings.shared()
        turn = tt.TurnSettings.from_dict(self.store.get(SETTINGS_KEY, {}))
        self.session = None
        self.dock = SettingsDock(turn, window)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        if window.width() < 1100:  # room for the conversation next to the dock
            window.resize(1100, max(window.height(), 700))
        toggle = self.dock.toggleViewAction()
        toggle.setText("Turn detection")
        toggle.setShortcut("Ctrl+T")
        menu_named(window, "&View").addAction(toggle)
        self.dock.changed.connect(self._changed)

        self.waveform = Waveform()
        self.waveform.set_threshold(turn.threshold, turn.silence_duration_ms, turn.prefix_padding_ms)
        self.ptt_button = QPushButton("Hold to talk (Space)")
        self.ptt_button.setToolTip("Push-to-talk: hold while you speak, release to send. Pressing it switches to push-to-talk mode.")
        self.ptt_button.setAccessibleName("Push to talk")
        self.ptt_button.setMinimumHeight(34)
        self.ptt_button.pressed.connect(self.press)
        self.ptt_button.released.connect(self.release)
        self.cancel_button = QPushButton("Discard (Esc)")
        self.cancel_button.setToolTip("Throw away what you said in this turn (input_audio_buffer.clear)")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QVBoxLayout()
        buttons.addWidget(self.ptt_button)
        buttons.addWidget(self.cancel_button)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.waveform, 1)
        row.addLayout(buttons)
        self.panel = QWidget()
        self.panel.setLayout(row)
        layout = window.centralWidget().layout()
        layout.insertWidget(max(0, layout.count() - 2), self.panel)  # above the level meter and the text box
        self._t0 = time.monotonic()
        QApplication.instance().installEventFilter(self)
        window.destroyed.connect(self._uninstall)
        if self.store.problem:  # a damaged settings file: say so once, in the window and the dock's log
            self.dock.append_log(self.store.problem)
            window.on_notification(Notice("warning", self.store.problem))

    def _uninstall(self, *_args) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    # ------------------------------------------------------------------ session
    def attach(self, session) -> None:
        self.session = session
        session.turns.input_taps.append(self.waveform.add_audio)
        self.waveform.attach(session)  # the answer as played, and where barge-ins cut it
        session.subscribe(self._on_note)
        self.dock.set_provider(session.client.capabilities)
        if session.turns.settings != self.dock.settings():
            session.turns.apply(self.dock.settings())
        self._show_detector()

    def _on_note(self, note: Any) -> None:
        kind = type(note).__name__
        if kind == "VadFrame":
            self.waveform.add_probability(note.probability, note.end_ms)
        elif isinstance(note, SpeechBoundary):
            self.waveform.server_boundary(note.started, note.audio_ms)
            self._log(f"server: speech {'started' if note.started else 'stopped'} at {note.audio_ms} ms")
        elif isinstance(note, SessionChanged) and self.session is not None:
            client = self.session.client
            if client.capabilities is not self.dock.capabilities:  # another provider (Connection → Provider)
                self.dock.set_provider(client.capabilities)
            self.dock.show_server(client.requested.turn_detection,
                                  client.effective.turn_detection if client.effective else None, note.differences)
        elif isinstance(note, SilenceOverride):
            self._log(note.reason)
        elif isinstance(note, TurnSettingsChanged):
            if note.settings != self.dock.settings():
                self.dock.set_settings(note.settings)
                self._save(note.settings)
            self._show_detector()
        elif isinstance(note, PushToTalkState):
            self.ptt_button.setText("● Recording — release to send" if note.held else "Hold to talk (Space)")
            self.ptt_button.setStyleSheet("background:#c62828;color:white;font-weight:bold" if note.held else "")
            self._log("push-to-talk pressed" if note.held else "push-to-talk released")
        elif isinstance(note, Notice) and self.session is not None and self.session.turns.settings.mode != "vad":
            if note.level != "error":
                self._log(note.message)

    def _show_detector(self) -> None:
        if self.session is not None and self.session.turns.settings.mode == "wake_word":
            name = self.session.turns.detector_name or "not started"
            self.dock.set_detector(name)

    def _log(self, line: str) -> None:
        self.dock.append_log(f"{time.monotonic() - self._t0:7.1f}s  {line}")

    # ------------------------------------------------------------------ edits
    def apply(self, s: tt.TurnSettings) -> None:
        """Settings from elsewhere (an agent profile): shown in the dock, saved, and sent, as an edit would be."""
        if s != self.dock.settings():
            self.dock.set_settings(s)
            self._changed(s)

    def _changed(self, s: tt.TurnSettings) -> None:
        self.waveform.set_threshold(s.threshold, s.silence_duration_ms, s.prefix_padding_ms)
        self._save(s)
        if self.session is not None:
            self.session.turns.apply(s)
            self._log(f"sent session.update: {tt.MODE_LABELS[s.mode]}, "
                      + (f"{s.threshold:.2f} / {s.prefix_padding_ms} / {s.silence_duration_ms} ms" if s.mode == "vad" else "turn_detection null"))

    def _save(self, s: tt.TurnSettings) -> None:
        self.store.set(SETTINGS_KEY, s.to_dict())
        try:
            self.store.save()
        except OSError as exc:
            self.window.on_notification(Notice("warning", f"Settings could not be saved: {exc}"))

    # ------------------------------------------------------------------ push-to-talk
    def press(self) -> None:
        if self.session is None:
            return
        if getattr(self.window, "microphone_missing", False):
            # Nothing would be recorded: say why, rather than "that press recorded only 0 ms" on release.
            self.window.on_notification(Notice("warning", "No microphone is capturing, so push-to-talk has nothing to "
                                                          "send. Type below, or connect a microphone."))
            return
        self.session.turns.press()

    def release(self) -> None:
        if self.session is not None:
            self.session.turns.release()

    def cancel(self) -> None:
        if self.session is not None:
            self.session.turns.cancel()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt naming)
        kind = event.type()
        if kind not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            return False
        key = event.key()
        if key not in (Qt.Key.Key_Space, Qt.Key.Key_Escape):
            return False
        target = QApplication.focusWidget() or (obj if isinstance(obj, QWidget) else None)
        if target is None or target.window() is not self.window:
            return False
        if key == Qt.Key.Key_Space:
            typing = isinstance(target, (QLineEdit, QAbstractSpinBox, QComboBox)) or (
                isinstance(target, (QTextEdit, QPlainTextEdit)) and not target.isReadOnly()
            )
            if typing or isinstance(target, QPushButton) and target is not self.ptt_button:
                return False
            if event.isAutoRepeat():
                return True  # holding the key repeats presses: ignore them
            if kind == QEvent.Type.KeyPress:
                self.press()
            else:
                self.release()
            return True
        if kind == QEvent.Type.KeyPress and not event.isAutoRepeat():
            self.cancel()
            return True
        return False
