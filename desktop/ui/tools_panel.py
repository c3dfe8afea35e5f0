"""Function tools in the *Instructions and voice* dock: define them, choose how the model may use them, and
answer the calls that wait for a typed result.

The panel only edits `core.tools.ToolSettings` and shows calls; `AgentUi` sends the tools with
`session.update` and answers calls (a canned result at once, or what the user types here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.tools import EXAMPLE_TOOL, MAX_DELAY_MS, ToolProblem, ToolSettings, ToolSpec, parse_tool

CHOICES = {"auto": "The model decides", "required": "Always call a tool", "none": "Never (tools off)"}


@dataclass(frozen=True)
class PendingCall:
    call_id: str
    name: str
    arguments: str


class ToolDialog(QDialog):
    """Add or edit one tool. `tool()` after `exec()`: the parsed tool (the dialog refuses to close on a bad one)."""

    def __init__(self, tool: ToolSpec | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit tool" if tool else "Add tool")
        self.resize(520, 520)
        self.name = QLineEdit(tool.name if tool else "")
        self.name.setPlaceholderText("get_weather")
        self.description = QLineEdit(tool.description if tool else "")
        self.description.setPlaceholderText("What it does: the model reads this to decide when to call it")
        self.parameters = QPlainTextEdit(tool.parameters_json if tool else '{"type": "object", "properties": {}}')
        self.parameters.setAccessibleName("Parameters (JSON schema)")
        self.result_text = QPlainTextEdit(tool.result if tool else "")
        self.result_text.setPlaceholderText('Blank: Parley asks you for each call.\nOr a canned result, e.g. '
                                       '{"temperature": 18, "city": "{location}"} ({name} = that argument)')
        self.result_text.setAccessibleName("Result")
        self.delay = QSpinBox()
        self.delay.setRange(0, MAX_DELAY_MS)
        self.delay.setSingleStep(250)
        self.delay.setSuffix(" ms")
        self.delay.setSpecialValueText("at once")
        self.delay.setValue(tool.delay_ms if tool else 0)
        self.delay.setAccessibleName("Result delay")
        self.delay.setToolTip("A slow backend: the canned result comes back this long after the call. What does "
                              "the model say meanwhile, and can you talk over the wait?")
        self.problem = QLabel("")
        self.problem.setStyleSheet("color:#c62828")
        self.problem.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow("Parameters (JSON schema)", self.parameters)
        form.addRow("Result", self.result_text)
        form.addRow("Result comes back", self.delay)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self._tool: ToolSpec | None = None

    def tool(self) -> ToolSpec | None:
        return self._tool

    def accept(self) -> None:
        try:
            self._tool = parse_tool(self.name.text(), self.description.text(), self.parameters.toPlainText(),
                                    self.result_text.toPlainText(), self.delay.value())
        except ToolProblem as exc:
            self.problem.setText(str(exc))
            return
        super().accept()


class ToolsPanel(QGroupBox):
    changed = Signal(object)  # ToolSettings
    #: The user typed the result of a waiting call: (call_id, output).
    result_typed = Signal(str, str)

    def __init__(self, settings: ToolSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Tools (function calling)", parent)
        self._settings = settings or ToolSettings()
        self._pending: list[PendingCall] = []
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setAccessibleName("Tools")
        self.list.setMaximumHeight(110)
        self.list.itemDoubleClicked.connect(lambda *_: self.edit_selected())
        layout.addWidget(self.list)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.example_button = QPushButton("Example")
        self.example_button.setToolTip("Add get_weather, with a canned result, to try a tool call at once")
        for b in (self.add_button, self.edit_button, self.remove_button):
            row.addWidget(b)
        layout.addLayout(row)
        form = QFormLayout()
        self.choice = QComboBox()
        for key, label in CHOICES.items():
            self.choice.addItem(label, key)
        self.choice.setAccessibleName("Tool choice")
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.setMinimumContentsLength(10)
        use = QHBoxLayout()
        use.addWidget(self.choice, 1)
        use.addWidget(self.example_button)
        form.addRow("Use", use)
        layout.addLayout(form)

        # A call without a canned result waits here for the user's answer.
        self.pending_box = QWidget()
        pending = QVBoxLayout(self.pending_box)
        pending.setContentsMargins(0, 4, 0, 0)
        self.pending_label = QLabel("")
        self.pending_label.setWordWrap(True)
        self.pending_label.setStyleSheet("color:#6a1b9a")
        self.pending_result = QPlainTextEdit()
        self.pending_result.setPlaceholderText('The result to send back, e.g. {"status": "booked"}. Ctrl+Enter sends.')
        self.pending_result.setAccessibleName("Tool result")
        self.pending_result.setMaximumHeight(80)
        self.send_button = QPushButton("Send result")
        pending.addWidget(self.pending_label)
        pending.addWidget(self.pending_result)
        pending.addWidget(self.send_button)
        self.pending_box.setVisible(False)
        layout.addWidget(self.pending_box)

        self.add_button.clicked.connect(lambda: self._edit(None))
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.example_button.clicked.connect(self.add_example)
        self.choice.currentIndexChanged.connect(self._choice_changed)
        self.send_button.clicked.connect(self.send_typed_result)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self.pending_result, activated=self.send_typed_result,
                      context=Qt.ShortcutContext.WidgetShortcut)
        self.set_settings(self._settings)

    # ------------------------------------------------------------------ settings
    def settings(self) -> ToolSettings:
        return self._settings

    def set_settings(self, s: ToolSettings) -> None:
        self._settings = s
        self.list.clear()
        for tool in s.tools:
            answer = "canned result" if tool.result.strip() else "you answer"
            if tool.result.strip() and tool.delay_ms:
                answer += f" after {tool.delay_ms / 1000:g} s"
            item = QListWidgetItem(f"{tool.name} — {answer}")
            item.setToolTip(tool.description or tool.name)
            item.setData(Qt.ItemDataRole.UserRole, tool.name)
            self.list.addItem(item)
        self.choice.blockSignals(True)
        self.choice.setCurrentIndex(max(0, self.choice.findData(s.choice)))
        self.choice.blockSignals(False)
        has = bool(s.tools)
        self.edit_button.setEnabled(has)
        self.remove_button.setEnabled(has)
        self.example_button.setEnabled(s.find(EXAMPLE_TOOL.name) is None)

    def _set(self, s: ToolSettings) -> None:
        if s != self._settings:
            self.set_settings(s)
            self.changed.emit(s)

    def _selected_name(self) -> str | None:
        item = self.list.currentItem() or (self.list.item(0) if self.list.count() == 1 else None)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _edit(self, name: str | None) -> None:
        dialog = ToolDialog(self._settings.find(name) if name else None, self)
        while dialog.exec() == QDialog.DialogCode.Accepted and dialog.tool() is not None:
            try:
                self.add_tool(dialog.tool(), replacing=name)
                return
            except ToolProblem as exc:  # a duplicate name: say so and let the user fix it
                dialog.problem.setText(str(exc))

    def edit_selected(self) -> None:
        name = self._selected_name()
        if name:
            self._edit(name)

    def add_tool(self, tool: ToolSpec, replacing: str | None = None) -> None:
        """Raises ToolProblem (a duplicate name, too many tools)."""
        self._set(self._settings.with_tool(tool, replacing))

    def add_example(self) -> None:
        if self._settings.find(EXAMPLE_TOOL.name) is None:
            self.add_tool(EXAMPLE_TOOL)

    def remove_selected(self) -> None:
        name = self._selected_name()
        if name:
            self._set(self._settings.without(name))

    def _choice_changed(self, *_args) -> None:
        self._set(replace(self._settings, choice=self.choice.currentData() or "auto"))

    # ------------------------------------------------------------------ calls waiting for a typed result
    def ask(self, call: PendingCall) -> None:
        self._pending.append(call)
        self._show_pending()
        if len(self._pending) == 1:  # the model waits on the user: the box is ready for typing
            self.pending_result.setFocus()

    def _show_pending(self) -> None:
        if not self._pending:
            self.pending_box.setVisible(False)
            return
        call = self._pending[0]
        more = f" (+{len(self._pending) - 1} more)" if len(self._pending) > 1 else ""
        self.pending_label.setText(f"The model called {call.name}({call.arguments}){more}. Type its result:")
        self.pending_box.setVisible(True)

    def send_typed_result(self) -> None:
        if not self._pending:
            return
        text = self.pending_result.toPlainText().strip()
        if not text:
            self.pending_label.setText(self.pending_label.text().split(" Type its result:")[0] +
                                       " Type its result first (any text or JSON).")
            return
        call = self._pending.pop(0)
        self.pending_result.clear()
        self._show_pending()
        self.result_typed.emit(call.call_id, text)

    def forget_pending(self) -> None:
        """The connection was lost: those calls can no longer be answered."""
        self._pending.clear()
        self._show_pending()
