"""Audio → Speak a sound file: a recorded utterance spoken into the conversation as your voice.

The same words, the same way, as often as you like: after changing the silence duration, the instructions or
the tools, speak the file again (Ctrl+P) and compare the answers and their timing. A file dropped on the window
is spoken too. *Keep my last turn* (Ctrl+Shift+K) makes such a file from what you just said, exactly as the
model heard it. *Speak a series of sound files* (Ctrl+Shift+L) speaks several, one turn each, every one after the
previous answer has finished, and writes a report of what the model heard and answered and how fast (a
regression run for an agent). The recent files are kept between runs; the status bar shows "▶ name 0:01 / 0:03" while one
speaks, and Esc stops it (and discards what it said, as for any turn in progress).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from PySide6.QtCore import QStandardPaths, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu

from ..audio.file_source import OTHER_FORMATS
from ..core.actions import Notice
from ..file_series import SeriesProgress
from ..session import FileVoiceState
from ..settings import Settings
from .recording_ui import clock_text


KEY = "audio.spoken_files"  # the recent files, newest first
PACE_KEY = "audio.series_interrupt_s"  # a series: None = wait for each answer, else cut it off after so many s
PACES = (("Wait for each answer to finish", None), ("Interrupt each answer 1 s in (barge-in)", 1.0),
         ("Interrupt each answer 2 s in (barge-in)", 2.0), ("Interrupt each answer 4 s in (barge-in)", 4.0))
RECENT = 8
SOUND_SUFFIXES = (".wav",) + OTHER_FORMATS
SOUND_FILTER = "Sound files (" + " ".join(f"*{s}" for s in SOUND_SUFFIXES) + ")"


def turns_folder() -> Path:
    """Where kept turns go: the user data folder's `turns/`."""
    return Path(platformdirs.user_data_dir("Parley", appauthor=False)) / "turns"


def series_folder() -> Path:
    """Where the reports of series runs go."""
    return Path(platformdirs.user_data_dir("Parley", appauthor=False)) / "series"


def natural_key(path: str) -> list:
    """"2 b.wav" before "10 a.wav": numbered files run in their numbers' order."""
    import re

    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", os.path.basename(path))]


def is_sound_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SOUND_SUFFIXES


class FileVoiceUi:
    def __init__(self, window, settings: Settings | None = None) -> None:
        self.window = window
        self.store = settings or Settings.shared()
        self.session = None
        self.speak_action = QAction("Speak a sound file…", window)
        self.speak_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        self.speak_action.setToolTip("Play a recorded utterance (WAV) into the conversation as your voice, in place "
                                     "of the microphone: the same turn, as often as you like")
        self.speak_action.triggered.connect(self.choose_and_speak)
        self.again_action = QAction("Speak it again", window)
        self.again_action.setShortcut(QKeySequence("Ctrl+P"))
        self.again_action.triggered.connect(self.speak_again)
        self.keep_action = QAction("Keep my last turn as a sound file", window)
        self.keep_action.setShortcut(QKeySequence("Ctrl+Shift+K"))
        self.keep_action.setToolTip("Save what you last said, exactly as the model heard it, as a WAV file to speak "
                                    "again with Ctrl+P")
        self.keep_action.triggered.connect(lambda: self.keep_turn())  # not `checked` as the item id
        self.series_action = QAction("Speak a series of sound files…", window)
        self.series_action.setShortcut(QKeySequence("Ctrl+Shift+L"))
        self.series_action.setToolTip("Speak several files, one turn each, each after the previous answer has "
                                      "finished, then write a report: what was heard, the answers, their latency")
        self.series_action.triggered.connect(self.choose_series)
        self.report_action = QAction("Open the last series report", window)
        self.report_action.setEnabled(False)
        self.report_action.triggered.connect(self.open_report)
        self.last_report = ""
        self._series_index = ""
        self.stop_action = QAction("Stop the sound file", window)
        self.stop_action.setToolTip("Stop the file and discard what it said (Esc does the same)")
        self.stop_action.triggered.connect(self.stop)
        for action in (self.speak_action, self.again_action, self.keep_action, self.series_action,
                       self.stop_action):
            window.addAction(action)
        self.recent_menu = QMenu("Recent sound files", window)
        self.recent_menu.setObjectName("recent_sound_files")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        menu = window.audio_menu.menu
        first = menu.actions()[0]
        for action in (self.speak_action, self.again_action, self.recent_menu.menuAction(), self.keep_action,
                       self.series_action, self.report_action, self.stop_action):
            menu.insertAction(first, action)
        menu.insertSeparator(first)
        self.label = QLabel("")
        self.label.setAccessibleName("Sound file speaking")
        self.label.setStyleSheet("color:#2e7d32;font-weight:bold")
        window.statusBar().addPermanentWidget(self.label)
        self._timer = QTimer(window)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._tick)
        self._show_idle()

    def attach(self, session) -> None:
        self.session = session
        session.subscribe(self._on_note)

    # ------------------------------------------------------------------ persistence
    def recent(self) -> list[str]:
        value = self.store.get(KEY, [])
        return [p for p in value if isinstance(p, str)][:RECENT] if isinstance(value, list) else []

    def _remember(self, path: str) -> None:
        path = os.path.abspath(path)
        self.store.keep(KEY, [path] + [p for p in self.recent() if p != path][: RECENT - 1], "recent sound files")

    # ------------------------------------------------------------------ user intent
    def _dialog_folder(self) -> str:
        """Where the file dialogs open: beside the last sound file spoken, else the Music folder."""
        recent = self.recent()
        return os.path.dirname(recent[0]) if recent else (
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MusicLocation) or str(Path.home()))

    def choose_and_speak(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Speak a sound file as your voice", self._dialog_folder(),
                                              f"{SOUND_FILTER};;WAV audio (*.wav);;All files (*)")
        if path:
            self.speak(path)

    def speak_again(self) -> None:
        recent = self.recent()
        if recent:
            self.speak(recent[0])
        else:
            self.choose_and_speak()

    def speak(self, path: str) -> bool:
        """Speak `path` now; False (the session's notice says why) when it cannot be."""
        if self.session is None:
            self.window.on_notification(Notice("warning", "Not connected yet: nothing can be spoken."))
            return False
        if not self.session.speak_file(path):
            return False
        self._remember(path)
        return True

    def keep_turn(self, item_id: str | None = None) -> str | None:
        """Ctrl+Shift+K: the last spoken turn (or the turn `item_id`) into `turns_folder()`, first in the recent
        files; its path."""
        if self.session is None:
            return None
        kept = self.session.keep_turn(turns_folder(), item_id)
        if kept is None:
            return None
        path, duration_ms = kept
        self._remember(path)
        self._show_idle()
        self.window.on_notification(Notice("info", f"Kept your {'last ' if item_id is None else ''}turn ({duration_ms / 1000:.1f} s) as "
                                                   f"{os.path.basename(path)}: Ctrl+P speaks it again."))
        return path

    def choose_series(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Speak these sound files, one turn each",
                                                self._dialog_folder(), f"{SOUND_FILTER};;All files (*)")
        if not paths:
            return
        from PySide6.QtWidgets import QInputDialog

        labels = [label for label, _ in PACES]
        saved = self.store.get(PACE_KEY, None)
        current = next((n for n, (_, value) in enumerate(PACES) if value == saved), 0)
        label, ok = QInputDialog.getItem(self.window, "A series of sound files",
                                         f"{len(paths)} file{'s' if len(paths) != 1 else ''}, one turn each. While each "
                                         "answer plays:", labels, current, False)
        if ok:
            self.speak_series(paths, dict(PACES)[label])

    def speak_series(self, paths: list[str], interrupt_after_s: float | None = None):
        """Speak `paths` (sorted by name, numbers in order) one turn each, each after the previous answer or
        `interrupt_after_s` into it; the report goes to `series_folder()`. The pace is kept for next time."""
        if self.session is None:
            self.window.on_notification(Notice("warning", "Not connected yet: nothing can be spoken."))
            return None
        self.store.keep(PACE_KEY, interrupt_after_s, "series pace")
        series = self.session.speak_files(sorted(paths, key=natural_key), series_folder(), interrupt_after_s)
        self.stop_action.setEnabled(True)
        return series

    def open_report(self) -> None:
        if self.last_report:
            from PySide6.QtCore import QUrl
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(QUrl.fromLocalFile(self.last_report))

    def stop(self) -> None:
        session = self.session
        if session is None:
            return
        if session.file_voice is not None:
            session.turns.cancel()  # Esc's meaning: stop, and discard what it said
        elif session.file_series is not None and session.file_series.running:
            session.file_series.stop()

    # ------------------------------------------------------------------ what the status bar shows
    def _on_note(self, note) -> None:
        if isinstance(note, SeriesProgress):
            self._on_series(note)
            return
        if not isinstance(note, FileVoiceState):
            return
        if note.speaking:
            self.window.on_notification(Notice("info", f"Speaking {note.name} ({clock_text(note.duration_ms / 1000)}) as your "
                                                       "voice. Esc stops it."))
            self._timer.start()
            self._tick()
        else:
            self._timer.stop()
            if not note.finished:
                self.window.on_notification(Notice("info", f"Stopped {note.name}."))
            self._show_idle()

    def _on_series(self, note: SeriesProgress) -> None:
        if not note.done:
            self._series_index = f"{note.index + 1}/{note.count} "
            self.stop_action.setEnabled(True)
            return
        self._series_index = ""
        self._show_idle(series_running=False)  # its task is still finishing as it says so
        if note.report:
            self.last_report = note.report
            self.report_action.setEnabled(True)
            self.window.on_notification(Notice("info", f"Series done: {note.summary}. Report: {note.report}"))

    def _series_running(self) -> bool:
        series = self.session.file_series if self.session is not None else None
        return series is not None and series.running

    def _tick(self) -> None:
        voice = self.session.file_voice if self.session is not None else None
        if voice is None:
            return
        self.label.setText(f"▶ {self._series_index}{voice.name} {clock_text(voice.position_ms / 1000)} / {clock_text(voice.duration_ms / 1000)}")
        self.stop_action.setEnabled(True)

    def _show_idle(self, series_running: bool | None = None) -> None:
        running = self._series_running() if series_running is None else series_running
        self.label.setText(f"▶ {self._series_index}waiting for the answer" if running and self._series_index else "")
        self.stop_action.setEnabled(running)
        recent = self.recent()
        self.again_action.setText(f"Speak {os.path.basename(recent[0])} again" if recent else "Speak it again")
        self.again_action.setToolTip("Speak the last sound file again (Ctrl+P)")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.recent()
        for path in recent:
            action = self.recent_menu.addAction(os.path.basename(path))
            action.setToolTip(path)
            action.setEnabled(os.path.isfile(path))
            action.triggered.connect(lambda _checked=False, p=path: self.speak(p))
        if not recent:
            self.recent_menu.addAction("No sound files yet").setEnabled(False)
