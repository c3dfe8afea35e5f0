"""Audio → Compare providers on a series…: the same sound files on several providers, one report side by side.

The user picks the files, then the providers (those not set up yet are shown, disabled, with what they lack) and
the pace; the run goes provider by provider (`series_compare.compare_providers`), the status bar says which one is
speaking, and the report opens from Audio → Open the last series report.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QLabel,
                               QVBoxLayout)

from ..core.actions import Notice
from ..providers import ProviderChoice, ProviderSetupError, provider_choice
from ..settings import Settings
from .file_voice_ui import PACE_KEY, PACES, SOUND_FILTER, natural_key, series_folder

log = logging.getLogger(__name__)

#: What can be compared: (provider kind, dialect or None, label in the dialog).
CANDIDATES = (("openai", None, "OpenAI"), ("azure", None, "Azure OpenAI"), ("gemini", None, "Gemini Live"),
              ("compatible", None, "OpenAI-compatible server"), ("engine", None, "Offline engine (OpenAI dialect)"),
              ("engine", "gemini", "Offline engine (Gemini dialect)"))
CHOSEN_KEY = "compare.providers"  # the providers ticked last time: ["engine", "engine:gemini", …]


def candidates(settings) -> list[tuple[str, ProviderChoice | None, str]]:
    """(key, the provider or None, what it lacks) for each candidate."""
    out = []
    for kind, dialect, label in CANDIDATES:
        key = f"{kind}:{dialect}" if dialect else kind
        try:
            out.append((key, provider_choice(kind, dialect=dialect, settings=settings), label))
        except (ProviderSetupError, ValueError) as exc:
            out.append((key, None, f"{label}: {exc}"))
    return out


class CompareDialog(QDialog):
    def __init__(self, parent, count: int, settings) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare providers")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{count} file{'s' if count != 1 else ''}, one turn each, on each provider ticked:"))
        chosen = settings.get(CHOSEN_KEY, ["engine", "engine:gemini"])
        self.boxes: list[tuple[QCheckBox, ProviderChoice | None]] = []
        for key, choice, label in candidates(settings):
            box = QCheckBox(choice.label if choice else label.split(":")[0])
            box.setProperty("key", key)
            if choice is None:
                box.setEnabled(False)
                box.setToolTip(label + " (Connection → Provider sets it up)")
            else:
                box.setChecked(key in (chosen if isinstance(chosen, list) else []))
            self.boxes.append((box, choice))
            layout.addWidget(box)
        form = QFormLayout()
        self.pace = QComboBox()
        for text, value in PACES:
            self.pace.addItem(text, value)
        saved = settings.get(PACE_KEY, None)
        self.pace.setCurrentIndex(max(0, next((n for n, (_, v) in enumerate(PACES) if v == saved), 0)))
        form.addRow("While each answer plays", self.pace)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> list[tuple[str, ProviderChoice]]:
        return [(box.property("key"), choice) for box, choice in self.boxes if choice is not None and box.isChecked()]


class CompareUi:
    def __init__(self, window, file_voice_ui, settings: Settings | None = None) -> None:
        self.window = window
        self.file_voice_ui = file_voice_ui
        self.store = settings or Settings.shared()
        self.session = None
        self.task: asyncio.Task | None = None
        self.last_result = None
        self.action = QAction("Compare providers on a series…", window)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.action.setToolTip("Speak the same sound files on several providers, one after the other, and write "
                               "one report side by side: what each heard and answered, how fast, what it cost")
        self.action.triggered.connect(self.choose)
        window.addAction(self.action)
        menu = window.audio_menu.menu
        after = file_voice_ui.series_action
        actions = menu.actions()
        index = actions.index(after) if after in actions else -1
        menu.insertAction(actions[index + 1] if 0 <= index < len(actions) - 1 else None, self.action)

    def attach(self, session) -> None:
        self.session = session

    def choose(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Compare providers on these sound files",
                                                self.file_voice_ui._dialog_folder(), f"{SOUND_FILTER};;All files (*)")
        if not paths:
            return
        dialog = CompareDialog(self.window, len(paths), self.store)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        chosen = dialog.chosen()
        if len(chosen) < 1:
            self.window.on_notification(Notice("info", "No provider was ticked: nothing was spoken."))
            return
        self.store.keep(CHOSEN_KEY, [key for key, _ in chosen], "providers to compare")
        self.store.keep(PACE_KEY, dialog.pace.currentData(), "series pace")
        self.run([choice for _, choice in chosen], paths, dialog.pace.currentData())

    def run(self, providers: list[ProviderChoice], paths: list[str], interrupt_after_s: float | None = None):
        """Start the comparison; returns its task (the result is `last_result` when it is done)."""
        if self.session is None:
            self.window.on_notification(Notice("warning", "Not connected yet: nothing can be spoken."))
            return None
        if self.task is not None and not self.task.done():
            self.window.on_notification(Notice("info", "A comparison is already running."))
            return None
        from ..series_compare import compare_providers

        names = ", ".join(p.label for p in providers)
        self.window.on_notification(Notice("info", f"Comparing {names} on {len(paths)} file(s)…"))
        self.task = asyncio.ensure_future(compare_providers(self.session, providers, sorted(paths, key=natural_key),
                                                            series_folder(), interrupt_after_s))
        self.task.add_done_callback(self._done)
        return self.task

    def _done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("the comparison failed", exc_info=exc)
            self.window.on_notification(Notice("error", f"The comparison stopped: {exc}"))
            return
        result = task.result()
        self.last_result = result
        if result.report_path is not None:
            self.file_voice_ui.last_report = str(result.report_path)
            self.file_voice_ui.report_action.setEnabled(True)
        failed = f"; not run on {', '.join(result.failed)}" if result.failed else ""
        self.window.on_notification(Notice("info", f"Comparison done on {len(result.runs)} provider(s){failed}. "
                                                   f"Report: {result.report_path}"))
