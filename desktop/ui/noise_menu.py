"""Audio → Background noise (simulated): a noisy room on demand, to tune turn detection for one.

The noise is mixed into the microphone before anything hears it (`audio.room_noise`), so the waveform, the local
VAD, the onsets and the server all get it. Kind and level are kept between runs; the status bar says when it is
on, since what the model hears is then not only you.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu

from ..audio.room_noise import KINDS
from ..settings import Settings
from .file_voice_ui import SOUND_FILTER


KEY = "audio.noise"
LEVELS = (("Quiet (−45 dBFS)", -45.0), ("Moderate (−35 dBFS)", -35.0), ("Loud (−25 dBFS)", -25.0))


class NoiseMenu:
    def __init__(self, window, settings: Settings | None = None) -> None:
        self.window = window
        self.store = settings or Settings.shared()
        self.session = None
        self.menu = QMenu("Background noise (simulated)", window)
        self.menu.setObjectName("noise_menu")
        self.menu.setToolTip("Mix a noisy room into your microphone, to tune turn detection for one")
        kinds = QActionGroup(self.menu)
        self.kind_actions: dict[str | None, QAction] = {}
        for kind, label in [(None, "Off")] + list(KINDS.items()):
            action = QAction(label + ("…" if kind == "file" else ""), self.menu, checkable=True)
            action.triggered.connect(lambda _checked=False, k=kind: self.choose_kind(k))
            kinds.addAction(action)
            self.menu.addAction(action)
            self.kind_actions[kind] = action
        self.menu.addSeparator()
        levels = QActionGroup(self.menu)
        self.level_actions: dict[float, QAction] = {}
        for label, level in LEVELS:
            action = QAction(label, self.menu, checkable=True)
            action.triggered.connect(lambda _checked=False, v=level: self.choose_level(v))
            levels.addAction(action)
            self.menu.addAction(action)
            self.level_actions[level] = action
        audio = window.audio_menu.menu
        audio.insertMenu(window.audio_menu.input_menu.menuAction(), self.menu)
        self.label = QLabel("")
        self.label.setAccessibleName("Background noise")
        self.label.setStyleSheet("color:#ef6c00")
        window.statusBar().addPermanentWidget(self.label)
        self._show(self.saved())

    # ------------------------------------------------------------------ persistence
    def saved(self) -> dict[str, Any]:
        value = self.store.get(KEY, {})
        if not isinstance(value, dict):
            return {"kind": None, "level_dbfs": -35.0}
        kind = value.get("kind") if value.get("kind") in KINDS else None
        level = value.get("level_dbfs")
        level = float(level) if isinstance(level, (int, float)) and not isinstance(level, bool) else -35.0
        path = value.get("path") if isinstance(value.get("path"), str) else None
        return {"kind": kind, "level_dbfs": level, "path": path}

    def _save(self, **changes: Any) -> None:
        values = self.saved()
        values.update(changes)
        self.store.keep(KEY, values, "noise settings")

    def attach(self, session) -> None:
        """The saved noise applies from the start (a noise file gone since is reported and left off)."""
        self.session = session
        saved = self.saved()
        if saved["kind"] is not None and not session.set_noise(saved["kind"], saved["level_dbfs"], saved["path"]):
            self._save(kind=None)
        self._show(self.saved())

    # ------------------------------------------------------------------ user intent
    def choose_kind(self, kind: str | None, path: str | None = None) -> bool:
        saved = self.saved()
        if kind == "file" and path is None:
            start = os.path.dirname(saved["path"]) if saved["path"] else ""
            path, _ = QFileDialog.getOpenFileName(self.window, "A recording of a noisy room, looped", start,
                                                  f"{SOUND_FILTER};;All files (*)")
            if not path:
                self._show(saved)
                return False
        path = path if kind == "file" else saved["path"]
        if self.session is not None and not self.session.set_noise(kind, saved["level_dbfs"], path):
            self._show(saved)
            return False
        self._save(kind=kind, path=path)
        self._show(self.saved())
        return True

    def choose_level(self, level_dbfs: float) -> None:
        saved = self.saved()
        self._save(level_dbfs=level_dbfs)
        if saved["kind"] is not None and self.session is not None:
            self.session.set_noise(saved["kind"], level_dbfs, saved["path"])
        self._show(self.saved())

    def _show(self, saved: dict[str, Any]) -> None:
        kind, level = saved["kind"], saved["level_dbfs"]
        self.kind_actions[kind].setChecked(True)
        action = self.level_actions.get(level)
        if action is not None:
            action.setChecked(True)
        noise = self.session.noise if self.session is not None else None
        self.label.setText(f"+ noise: {noise.describe()}" if noise is not None else "")
        self.label.setToolTip("Simulated background noise is mixed into your microphone (Audio → Background noise)")
