"""What the conversation costs: the status bar's figure, Connection → Prices and budget…, and the budget.

Each response's usage (`UsageUpdated`) is priced by the model that answered (`core.pricing`); the status bar
shows the conversation's sum ("$0.0123", "free (offline)", "no price for MODEL"), with the split and where the
prices come from in its tooltip; New conversation starts it over. The dialog edits the price table per model
(kept in the settings; "Reset to published prices" brings back the shipped figures) and an optional budget:
when the conversation's cost reaches it, the microphone is muted (Audio → Mute microphone, Ctrl+M) and a
notice says so. Unmuting by hand is allowed; the budget is announced once until it is changed.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.actions import ConversationCleared, Notice, UsageUpdated
from ..core.pricing import (
    BUDGET_KEY,
    FIELD_LABELS,
    OFFLINE_MODEL,
    PRICE_FIELDS,
    PRICES_KEY,
    PUBLISHED,
    CostMeter,
    ModelPrice,
    PriceTable,
    budget_text,
    check_price,
    money,
    parse_budget,
)
from ..settings import Settings
from .menus import menu_named

log = logging.getLogger(__name__)

MENU_TEXT = "Prices and budget…"


def _saved_budget(store: Settings) -> float | None:
    value = store.get(BUDGET_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return parse_budget(str(value))
        except ValueError:
            return None
    return None


class PriceDialog(QDialog):
    """The price table (USD per 1M tokens, one row per model) and the budget. OK checks every figure first:
    a figure that is not a price is named below the table and the dialog stays open."""

    def __init__(self, table: PriceTable, budget_usd: float | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prices and budget")
        self.setObjectName("price_dialog")
        self.table = table
        self.budget_usd = budget_usd
        self._shown: dict[str, ModelPrice] = {}

        intro = QLabel("What each model costs, in US dollars per 1M tokens, as the provider publishes it. "
                       "Change a figure when prices change or your contract differs; a dated snapshot "
                       "(gpt-realtime-2025-08-28) takes its model's row. The offline engine is free.")
        intro.setWordWrap(True)
        self.grid = QTableWidget(0, 1 + len(PRICE_FIELDS))
        self.grid.setHorizontalHeaderLabels(["model"] + [FIELD_LABELS[f] for f in PRICE_FIELDS])
        self.grid.verticalHeader().setVisible(False)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.grid.setAccessibleName("Prices per model")
        self.grid.currentCellChanged.connect(lambda row, *_: self._show_source(row))
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        self.source_label.setStyleSheet("color:#455a64")
        self.source_label.setAccessibleName("Where the prices come from")

        self.add_button = QPushButton("Add model")
        self.add_button.clicked.connect(self.add_model)
        self.remove_button = QPushButton("Remove model")
        self.remove_button.setToolTip("Remove a model you added (the published ones stay; reset their figures instead)")
        self.remove_button.clicked.connect(self.remove_model)
        self.reset_button = QPushButton("Reset to published prices")
        self.reset_button.clicked.connect(self.reset_to_published)
        rows = QHBoxLayout()
        rows.addWidget(self.add_button)
        rows.addWidget(self.remove_button)
        rows.addStretch(1)
        rows.addWidget(self.reset_button)

        self.budget_edit = QLineEdit("" if budget_usd is None else budget_text(budget_usd).lstrip("$"))
        self.budget_edit.setPlaceholderText("no budget")
        self.budget_edit.setAccessibleName("Budget in dollars")
        self.budget_edit.setToolTip("When this conversation's cost reaches it, Parley mutes your microphone "
                                    "(Ctrl+M unmutes). Leave it empty for none.")
        self.budget_edit.setMaximumWidth(120)
        budget_row = QHBoxLayout()
        budget_row.addWidget(QLabel("Stop at $"))
        budget_row.addWidget(self.budget_edit)
        budget_row.addWidget(QLabel("per conversation: the microphone is muted when its cost reaches this"))
        budget_row.addStretch(1)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color:#c62828")
        self.error_label.setVisible(False)
        self.error_label.setAccessibleName("Problem")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.source_label)
        layout.addLayout(rows)
        layout.addLayout(budget_row)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self._fill(table)
        self.resize(860, 420)

    # ------------------------------------------------------------------ rows
    def _fill(self, table: PriceTable) -> None:
        self.grid.setRowCount(0)
        self._shown = dict(table.prices)
        for model, price in table.prices.items():
            self._add_row(model, price)
        if self.grid.rowCount():
            self.grid.setCurrentCell(0, 1)
        self._show_source(0)

    def _add_row(self, model: str, price: ModelPrice | None) -> int:
        row = self.grid.rowCount()
        self.grid.insertRow(row)
        name = QTableWidgetItem(model)
        if model in PUBLISHED:  # the shipped rows keep their names: a snapshot finds its family by it
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.grid.setItem(row, 0, name)
        for col, f in enumerate(PRICE_FIELDS, 1):
            value = getattr(price, f) if price is not None else 0.0
            cell = QTableWidgetItem(f"{value:g}")
            cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.grid.setItem(row, col, cell)
        return row

    def _show_source(self, row: int) -> None:
        item = self.grid.item(row, 0) if row >= 0 else None
        price = self._shown.get(item.text().strip()) if item is not None else None
        if price is None:
            self.source_label.setText("A model you add: type its name as the server reports it, and its prices.")
            return
        when = f"as of {price.as_of}" if price.as_of else "of an unknown date"
        self.source_label.setText(f"{item.text()}: prices {when}. {price.source}")

    def add_model(self) -> None:
        row = self._add_row("", None)
        self.grid.setCurrentCell(row, 0)
        self.grid.editItem(self.grid.item(row, 0))

    def remove_model(self) -> None:
        row = self.grid.currentRow()
        item = self.grid.item(row, 0) if row >= 0 else None
        if item is None:
            return
        if item.text().strip() in PUBLISHED:
            self._problem(f"{item.text()} is one of the published models; “Reset to published prices” "
                          "brings back its figures.")
            return
        self.grid.removeRow(row)

    def reset_to_published(self) -> None:
        self._fill(PriceTable())
        self.error_label.setVisible(False)

    def _problem(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(True)

    # ------------------------------------------------------------------ OK
    def read_table(self) -> PriceTable:
        """The table as edited; ValueError naming the model and the figure that is wrong."""
        prices: dict[str, ModelPrice] = {}
        today = date.today().isoformat()
        for row in range(self.grid.rowCount()):
            model = (self.grid.item(row, 0).text() if self.grid.item(row, 0) else "").strip()
            figures = {}
            for col, f in enumerate(PRICE_FIELDS, 1):
                cell = self.grid.item(row, col)
                figures[f] = check_price(cell.text() if cell else "", f"{model or f'row {row + 1}'}, {FIELD_LABELS[f]}")
            if not model:
                if any(figures.values()):
                    raise ValueError(f"Row {row + 1} has prices but no model name.")
                continue  # an empty row added and left blank
            if model in prices:
                raise ValueError(f"{model} is in the table twice.")
            if model.lower() == OFFLINE_MODEL:
                raise ValueError(f"{OFFLINE_MODEL} is the offline engine, which is always free.")
            before = self._shown.get(model)
            if before is not None and tuple(figures[f] for f in PRICE_FIELDS) == before.figures():
                prices[model] = before
            else:
                prices[model] = ModelPrice(**figures, as_of=today, source="edited by you in Prices and budget")
        return PriceTable(prices)

    def try_accept(self) -> bool:
        try:
            table = self.read_table()
            budget = parse_budget(self.budget_edit.text())
        except ValueError as exc:
            self._problem(str(exc))
            return False
        self.table, self.budget_usd = table, budget
        self.accept()
        return True


class CostUi:
    """The cost label in the status bar, Connection → Prices and budget…, and the budget's mute."""

    def __init__(self, window, settings: Settings | None = None) -> None:
        self.window = window
        self.store = settings or Settings.shared()
        self.session = None
        self.dialog: PriceDialog | None = None
        table, self.problems = PriceTable.from_setting(self.store.get(PRICES_KEY))
        self.meter = CostMeter(table, _saved_budget(self.store))
        self.label = window.cost_label
        self.action = QAction(MENU_TEXT, window)
        self.action.setToolTip("Edit the price per model that the status bar's cost uses, and set a budget")
        self.action.triggered.connect(self.edit_prices)
        menu_named(window, "&Connection").addAction(self.action)
        self._show()

    @property
    def table(self) -> PriceTable:
        return self.meter.table

    def attach(self, session) -> None:
        self.session = session
        session.subscribe(self.on_notification)
        for problem in self.problems:
            self.window.on_notification(Notice("warning", problem))
        self.problems = []

    def model_of(self, reported: str | None) -> str | None:
        """The model a response is priced as: what its session reported, else the provider's choice."""
        if reported:
            return reported
        if self.session is None:
            return None
        provider = self.session.options.provider
        return OFFLINE_MODEL if provider.kind == "engine" else provider.model

    def on_notification(self, note: Any) -> None:
        if isinstance(note, ConversationCleared):
            self.meter.reset()
            self._show()
        elif isinstance(note, UsageUpdated) and note.usage is not None:
            self.meter.add(note.usage, self.model_of(note.model))
            self._show()
            self._check_budget()

    # ------------------------------------------------------------------ the budget
    def _check_budget(self) -> None:
        if not self.meter.budget_reached():
            return
        budget = budget_text(self.meter.budget_usd or 0)
        already = self.session is not None and self.session.muted
        if self.session is not None and not already:
            self.window.mute_action.setChecked(True)  # Audio → Mute microphone, as Ctrl+M does
        what = "the microphone stays muted" if already else "microphone muted"
        self.window.on_notification(Notice(
            "warning", f"Budget of {budget} reached: {what}. Ctrl+M unmutes; raise the budget in "
                       f"Connection → {MENU_TEXT}"))
        log.info("budget of %s reached at %s", budget, money(self.meter.total.usd))

    def apply(self, table: PriceTable, budget_usd: float | None) -> None:
        """Use these prices and this budget from now on (the conversation so far is priced again) and keep them."""
        self.meter.set_table(table)
        self.meter.set_budget(budget_usd)
        self.store.keep(PRICES_KEY, table.overrides(), "prices")
        self.store.keep(BUDGET_KEY, budget_usd, "budget")
        self._show()
        self._check_budget()

    def edit_prices(self) -> PriceDialog:
        """Connection → Prices and budget…: opens the dialog (window-modal); OK applies and keeps it."""
        dialog = PriceDialog(self.table, self.meter.budget_usd, self.window)
        dialog.accepted.connect(lambda: self.apply(dialog.table, dialog.budget_usd))
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog = dialog
        dialog.open()
        return dialog

    # ------------------------------------------------------------------ the label
    def _show(self) -> None:
        total = self.meter.total
        self.label.setText(total.label)
        tip = total.details() if total.responses else "No answer yet in this conversation."
        if self.meter.budget_usd is not None:
            tip += f"\nBudget: {budget_text(self.meter.budget_usd)} per conversation"
            tip += " (reached: the microphone was muted)" if self.meter.over_budget else ""
        tip += f"\nConnection → {MENU_TEXT} edits the prices and the budget."
        self.label.setToolTip(tip)
        self.label.setStyleSheet("color:#c62828" if self.meter.over_budget else "")
