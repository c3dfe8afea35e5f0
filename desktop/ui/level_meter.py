"""A horizontal input level meter (dBFS) with a peak hold, repainted at display rate."""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


class LevelMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(120)
        self.setToolTip("Microphone level")
        self.setAccessibleName("Microphone level")
        self._level_db = FLOOR_DB
        self._peak_db = FLOOR_DB
        self._peak_time = 0.0
        self._updates = 0
        self._timer = QTimer(self)
        self._timer.setInterval(33)  # ~30 fps, independent of how often levels arrive
        self._timer.timeout.connect(self._decay)
        self._timer.start()

    def sizeHint(self) -> QSize:
        return QSize(200, 14)

    @property
    def level_db(self) -> float:
        return self._level_db

    @property
    def updates(self) -> int:
        return self._updates

    def set_level(self, dbfs: float) -> None:
        self._updates += 1
        db = max(FLOOR_DB, min(0.0, dbfs))
        # Fast attack, slow release (decay happens in the timer).
        self._level_db = max(db, self._level_db)
        if db >= self._peak_db:
            self._peak_db, self._peak_time = db, time.monotonic()

    def _decay(self) -> None:
        self._level_db = max(FLOOR_DB, self._level_db - 1.5)
        if time.monotonic() - self._peak_time > 1.0:
            self._peak_db = max(FLOOR_DB, self._peak_db - 1.0)
        self.update()

    @staticmethod
    def _fraction(db: float) -> float:
        return (db - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QColor(120, 120, 120))
        p.setBrush(QColor(30, 30, 30))
        p.drawRoundedRect(r, 3, 3)
        frac = self._fraction(self._level_db)
        if frac > 0:
            color = QColor(76, 175, 80) if self._level_db < -12 else QColor(255, 193, 7) if self._level_db < -3 else QColor(244, 67, 54)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawRoundedRect(QRectF(r.left() + 1, r.top() + 1, (r.width() - 2) * frac, r.height() - 2), 2, 2)
        peak = self._fraction(self._peak_db)
        if peak > 0:
            x = r.left() + 1 + (r.width() - 2) * peak
            p.setPen(QColor(230, 230, 230))
            p.drawLine(int(x), int(r.top() + 1), int(x), int(r.bottom() - 1))
        p.end()
