"""Draw Parley's icon with QPainter and write it to resources/icons/.

    .venv/bin/python packaging/make_icon.py

Writes parley.svg (the master drawing, for Linux desktops), parley-<N>.png for the usual sizes,
parley.png (256 px, what the window and the .desktop file use), parley.ico (Windows) and
parley.icns (macOS) when this Qt has the matching image-format plugins. The drawing: two speech
bubbles on a rounded square, one blue (you), one green (the model), with three sound bars.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPainterPath, QPen  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

BACKGROUND = "#263238"
YOU = "#42a5f5"
MODEL = "#66bb6a"
BARS = "#ffffff"


def _bubble(x: float, y: float, w: float, h: float, tail_left: bool) -> QPainterPath:
    """A rounded rectangle with a small tail at the bottom (left or right), in a 100-unit box."""
    path = QPainterPath()
    path.addRoundedRect(QRectF(x, y, w, h), h * 0.28, h * 0.28)
    tail = QPainterPath()
    if tail_left:
        bx = x + w * 0.22
        tail.moveTo(QPointF(bx, y + h - 2))
        tail.lineTo(QPointF(bx - 9, y + h + 11))
        tail.lineTo(QPointF(bx + 12, y + h - 2))
    else:
        bx = x + w * 0.78
        tail.moveTo(QPointF(bx, y + h - 2))
        tail.lineTo(QPointF(bx + 9, y + h + 11))
        tail.lineTo(QPointF(bx - 12, y + h - 2))
    tail.closeSubpath()
    return path.united(tail)


def paint(p: QPainter, size: int) -> None:
    """Paint the icon into a size×size square (the drawing is done in 100×100 units)."""
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 100.0, size / 100.0)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(BACKGROUND))
    p.drawRoundedRect(QRectF(2, 2, 96, 96), 22, 22)
    # You: upper-left bubble.
    p.setBrush(QColor(YOU))
    p.drawPath(_bubble(11, 14, 52, 34, tail_left=True))
    # The model: lower-right bubble, drawn over it.
    p.setBrush(QColor(MODEL))
    p.setPen(QPen(QColor(BACKGROUND), 3.5))
    p.drawPath(_bubble(34, 44, 55, 36, tail_left=False))
    # Sound bars in the model's bubble.
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(BARS))
    cx, cy = 61.5, 62.0
    for dx, h in ((-14, 10), (-7, 18), (0, 24), (7, 16), (14, 8)):
        p.drawRoundedRect(QRectF(cx + dx - 2.2, cy - h / 2, 4.4, h), 2.2, 2.2)
    # Three dots ("talking") in your bubble.
    for dx in (-10, 0, 10):
        p.drawEllipse(QPointF(37 + dx, 31), 3.6, 3.6)


def render(size: int) -> QImage:
    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    paint(p, size)
    p.end()
    return img


def write_svg(path: Path) -> bool:
    try:
        from PySide6.QtSvg import QSvgGenerator
    except ImportError:
        return False
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(render(1).size() * 256)
    gen.setViewBox(QRectF(0, 0, 256, 256))
    gen.setTitle("Parley")
    gen.setDescription("Parley icon: two speech bubbles")
    p = QPainter(gen)
    paint(p, 256)
    p.end()
    return True


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - painting needs it
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for size in SIZES:
        path = OUT / f"parley-{size}.png"
        if not render(size).save(str(path)):
            raise SystemExit(f"could not write {path}")
        written.append(path.name)
    render(256).save(str(OUT / "parley.png"))
    written.append("parley.png")
    if render(256).save(str(OUT / "parley.ico")):  # Qt's ico plugin writes one 256 px image
        written.append("parley.ico")
    if render(512).save(str(OUT / "parley.icns")):
        written.append("parley.icns")
    if write_svg(OUT / "parley.svg"):
        written.append("parley.svg")
    print("wrote", ", ".join(written), "to", OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
