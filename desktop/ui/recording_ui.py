"""File → Record audio (Ctrl+Shift+R): both sides of the conversation into a stereo WAV while it is on.

Left channel the microphone (after echo cancellation), right the assistant as played; the status bar shows
"● REC m:ss" while it runs, and the notice at the end says where the file is and how long it is.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QStandardPaths, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel

from ..core.actions import Notice
from .menus import menu_named


def clock_text(seconds: float) -> str:
    """"1:05" for 65 s: the status bar's running times (the recording, a sound file speaking)."""
    s = max(0, int(seconds))
    return f"{s // 60}:{s % 60:02d}"


class RecordingUi:
    def __init__(self, window) -> None:
        self.window = window
        self.session = None
        self.action = QAction("Record audio…", window)
        self.action.setCheckable(True)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.action.setToolTip("Record both sides to a stereo WAV: left your microphone, right the assistant")
        self.action.triggered.connect(self._toggled)
        window.addAction(self.action)
        file_menu = menu_named(window, "&File")
        separator = next((a for a in file_menu.actions() if a.isSeparator()), None)  # above Quit
        file_menu.insertAction(separator, self.action)
        self.label = QLabel("")
        self.label.setStyleSheet("color:#c62828;font-weight:bold")
        self.label.setAccessibleName("Recording")
        window.statusBar().addPermanentWidget(self.label)
        self._timer = QTimer(window)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)

    def attach(self, session) -> None:
        self.session = session

    # ------------------------------------------------------------------ user intent
    def _toggled(self, on: bool) -> None:
        if on:
            path = self._choose_file()
            if not path or not self.start(path):
                self.action.setChecked(False)
        else:
            self.stop()

    def _choose_file(self) -> str:
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MusicLocation) or str(Path.home())
        name = f"Parley conversation {datetime.now():%Y-%m-%d %H-%M}.wav"
        path, _ = QFileDialog.getSaveFileName(self.window, "Record audio to", str(Path(folder) / name), "WAV audio (*.wav)")
        return path

    def start(self, path: str) -> bool:
        if self.session is None:
            return False
        try:
            self.session.start_recording(path)
        except OSError as exc:
            self.window.on_notification(Notice("error", f"Cannot record to {path}: {exc}"))
            return False
        self.action.setChecked(True)
        self._timer.start()
        self._tick()
        return True

    def stop(self) -> None:
        self._timer.stop()
        self.label.setText("")
        self.action.setChecked(False)
        if self.session is None:
            return
        recorder = self.session.recorder
        seconds = self.session.stop_recording()
        if recorder is not None and seconds is not None:
            self.window.on_notification(Notice("info", f"Recorded {seconds:.0f} s of audio to {recorder.path} "
                                                       "(left: you, right: the assistant)."))

    def _tick(self) -> None:
        recorder = self.session.recorder if self.session is not None else None
        if recorder is None:  # stopped by the session (a full disk, quitting)
            self._timer.stop()
            self.label.setText("")
            self.action.setChecked(False)
            return
        self.label.setText(f"● REC {clock_text(recorder.seconds)}")
