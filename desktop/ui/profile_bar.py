"""The agent-profile row at the top of the *Instructions and voice* dock: pick a saved agent, save the current
one under a name, delete, and import or export a profile as a JSON file (see core.agent_profiles).

The row only shows profiles and asks for names and files; `AgentUi` applies, saves and reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QInputDialog, QMessageBox, QPushButton, QVBoxLayout, QWidget

PLACEHOLDER = "Agent profiles…"


class ProfileBar(QWidget):
    def __init__(self, *, on_load: Callable[[str], None], on_save: Callable[[str], None],
                 on_delete: Callable[[str], None], on_import: Callable[[str], None],
                 on_export: Callable[[str, str], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._on_load, self._on_save, self._on_delete = on_load, on_save, on_delete
        self._on_import, self._on_export = on_import, on_export
        self.combo = QComboBox()
        self.combo.setAccessibleName("Agent profile")
        self.combo.setToolTip("Instructions, voice, tools and turn detection saved together under a name")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(10)
        self.save_button = QPushButton("Save as…")
        self.delete_button = QPushButton("Delete")
        self.import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export…")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.combo, 1)
        top.addWidget(self.save_button)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        for b in (self.delete_button, self.import_button, self.export_button):
            bottom.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.addLayout(top)
        layout.addLayout(bottom)
        self.combo.activated.connect(self._picked)
        self.save_button.clicked.connect(self._ask_save)
        self.delete_button.clicked.connect(self._ask_delete)
        self.import_button.clicked.connect(self._ask_import)
        self.export_button.clicked.connect(self._ask_export)
        self.set_names([], None)

    def set_names(self, names: list[str], current: str | None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(PLACEHOLDER, None)
        for name in names:
            self.combo.addItem(name, name)
        index = self.combo.findData(current) if current else 0
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)
        self.delete_button.setEnabled(current is not None and index > 0)

    def current(self) -> str | None:
        return self.combo.currentData()

    def _picked(self, index: int) -> None:
        name = self.combo.itemData(index)
        self.delete_button.setEnabled(name is not None)
        if name is not None:
            self._on_load(name)

    def _ask_save(self) -> None:
        name, ok = QInputDialog.getText(self, "Save agent profile", "Name:", text=self.current() or "")
        if ok and name.strip():
            existing = [self.combo.itemData(i) for i in range(1, self.combo.count())]
            if name.strip() in existing and QMessageBox.question(
                    self, "Save agent profile", f"Replace the profile {name.strip()!r}?") != QMessageBox.StandardButton.Yes:
                return
            self._on_save(name)

    def _ask_delete(self) -> None:
        name = self.current()
        if name and QMessageBox.question(self, "Delete agent profile", f"Delete the profile {name!r}?") == QMessageBox.StandardButton.Yes:
            self._on_delete(name)

    def _folder(self) -> str:
        return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import agent profile", self._folder(), "Parley agent (*.json)")
        if path:
            self._on_import(path)

    def _ask_export(self) -> None:
        name = self.current() or "My agent"
        path, _ = QFileDialog.getSaveFileName(self, "Export agent profile", str(Path(self._folder()) / f"{name}.json"),
                                              "Parley agent (*.json)")
        if path:
            self._on_export(path, name)
