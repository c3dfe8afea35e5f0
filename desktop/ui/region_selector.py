"""Drag a region of the screen: a full-screen overlay showing a grab of all screens; drag a rectangle, release
to accept, Esc or a click without dragging to cancel. Returns the region in the grab's pixels."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

#: Smaller drags are taken as a click (cancel).
MIN_DRAG_PX = 8


class RegionSelector(QWidget):
    #: (left, top, width, height) in the grab's pixels.
    selected = Signal(tuple)
    cancelled = Signal()

    def __init__(self, grab: QImage, geometry: QRect) -> None:
        super().__init__(None, Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint | Qt.WindowType.Tool)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setWindowTitle("Drag a region of the screen (Esc cancels)")
        self.grab_image = grab
        self.setGeometry(geometry)
        self._start: QPoint | None = None
        self._end: QPoint | None = None
        self._done = False

    def _scale(self) -> tuple[float, float]:
        return self.grab_image.width() / max(1, self.width()), self.grab_image.height() / max(1, self.height())

    def selection(self) -> QRect | None:
        if self._start is None or self._end is None:
            return None
        (x0, y0), (x1, y1) = (self._start.x(), self._start.y()), (self._end.x(), self._end.y())
        return QRect(min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))

    def region_pixels(self) -> tuple[int, int, int, int] | None:
        rect = self.selection()
        if rect is None or rect.width() < MIN_DRAG_PX or rect.height() < MIN_DRAG_PX:
            return None
        sx, sy = self._scale()
        return int(rect.x() * sx), int(rect.y() * sy), max(1, int(rect.width() * sx)), max(1, int(rect.height() * sy))

    # -- events
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.drawImage(self.rect(), self.grab_image)
        p.fillRect(self.rect(), QColor(0, 0, 0, 110))
        rect = self.selection()
        if rect is not None:
            sx, sy = self._scale()
            source = QRect(int(rect.x() * sx), int(rect.y() * sy), int(rect.width() * sx), int(rect.height() * sy))
            p.drawImage(rect, self.grab_image, source)
            p.setPen(QPen(QColor("#42a5f5"), 2))
            p.drawRect(rect)
            p.setPen(QColor("white"))
            p.drawText(rect.bottomLeft() + QPoint(4, 16), f"{source.width()}×{source.height()}")
        else:
            p.setPen(QColor("white"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Drag a region to send · Esc cancels")
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._start = self._end = event.position().toPoint()
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._start is not None:
            self._end = event.position().toPoint()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton or self._start is None:
            return
        self._end = event.position().toPoint()
        self._finish(self.region_pixels())

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape:
            self._finish(None)

    def _finish(self, region: tuple[int, int, int, int] | None) -> None:
        if self._done:
            return
        self._done = True
        if region is None:
            self.cancelled.emit()
        else:
            self.selected.emit(region)
        self.close()
