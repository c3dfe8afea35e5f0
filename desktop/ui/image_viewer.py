"""A sent image at full size: click a thumbnail in the transcript to open it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QScrollArea, QVBoxLayout, QWidget


class ImageViewer(QDialog):
    """Shows the image exactly as it was sent (after the pipeline), scrollable; Ctrl+C copies it, Esc closes."""

    def __init__(self, image: QImage, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.image = image
        self.label = QLabel()
        self.label.setPixmap(QPixmap.fromImage(image))
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setAccessibleName("Image")
        self.label.setToolTip(title)
        scroll = QScrollArea()
        scroll.setWidget(self.label)
        scroll.setWidgetResizable(True)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        caption = QLabel(title)
        caption.setContentsMargins(8, 4, 8, 6)
        layout.addWidget(caption)
        copy = QAction("Copy image", self)
        copy.setShortcut(QKeySequence.StandardKey.Copy)
        copy.triggered.connect(lambda: QGuiApplication.clipboard().setImage(self.image))
        self.addAction(copy)
        screen = self.screen().availableGeometry() if self.screen() else None
        w, h = image.width() + 24, image.height() + 48
        if screen is not None:
            w, h = min(w, int(screen.width() * 0.9)), min(h, int(screen.height() * 0.9))
        self.resize(max(w, 240), max(h, 160))
