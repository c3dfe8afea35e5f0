"""A scrolling input waveform with the live speech probability, the threshold, and where speech was found.

Three layers over the last `window_ms` of microphone audio (newest at the right):
- the waveform (peak envelope per 10 ms column),
- the local VAD's speech probability (0 at the bottom, 1 at the top) with the turn-detection threshold
  drawn as a dashed line,
- shaded speech regions: the server's (speech_started … speech_stopped, purple band across the
  whole height) and the local VAD's (green strip along the bottom), so a user can see why a turn ended.

Data arrives on the event loop (`add_audio`, `add_probability`, `server_boundary`) and only goes into
small ring buffers; painting happens on a 30 fps timer, so repainting never waits on or delays audio.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.pcm import PROTOCOL_RATE
from ..core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter

COLUMN_MS = 10


class Waveform(QWidget):
    def __init__(self, parent: QWidget | None = None, window_ms: int = 8000, fps: int = 30) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(70)
        self.setAccessibleName("Input waveform and speech probability")
        self.setToolTip(
            "Microphone waveform (grey), local speech probability (orange) and the threshold (dashed).\n"
            "Purple: speech as the server's turn detection saw it. Green strip: speech by the local VAD."
        )
        self.window_ms = window_ms
        self.threshold = 0.5
        self.now_ms = 0.0
        self._samples = 0
        self._peaks: deque[float] = deque(maxlen=window_ms // COLUMN_MS + 2)
        self._partial = np.zeros(0, dtype=np.int16)
        self._probs: deque[tuple[int, float]] = deque(maxlen=window_ms // 32 + 4)
        self.server_regions: deque[list[float | None]] = deque(maxlen=64)
        self.local_regions: deque[list[float | None]] = deque(maxlen=64)
        self._local = SpeechSegmenter(0.5, 0, 500, frame_ms=32.0)
        self.paints = 0
        self._timer = QTimer(self)
        self._timer.setInterval(max(16, 1000 // fps))
        self._timer.timeout.connect(self.update)
        self._timer.start()

    def sizeHint(self) -> QSize:
        return QSize(480, 90)

    # ------------------------------------------------------------------ data in
    def set_threshold(self, threshold: float, silence_ms: int | None = None) -> None:
        self.threshold = float(threshold)
        self._local.configure(threshold, 0, silence_ms if silence_ms is not None else self._local.silence_duration_ms)

    def add_audio(self, pcm16: np.ndarray) -> None:
        per_col = PROTOCOL_RATE * COLUMN_MS // 1000
        x = np.concatenate((self._partial, np.asarray(pcm16, dtype=np.int16))) if self._partial.size else np.asarray(pcm16, dtype=np.int16)
        n = len(x) // per_col
        if n:
            cols = np.abs(x[: n * per_col].astype(np.int32)).reshape(n, per_col).max(axis=1) / 32768.0
            self._peaks.extend(float(c) for c in cols)
        self._partial = x[n * per_col:].copy()
        self._samples += len(pcm16)
        self.now_ms = self._samples * 1000.0 / PROTOCOL_RATE

    def add_probability(self, probability: float, end_ms: int) -> None:
        self._probs.append((end_ms, probability))
        boundary = self._local.push(probability)
        if isinstance(boundary, SegmentStart):
            self.local_regions.append([float(boundary.audio_start_ms), None])
        elif isinstance(boundary, SegmentEnd) and self.local_regions and self.local_regions[-1][1] is None:
            self.local_regions[-1][1] = float(boundary.audio_end_ms)

    def server_boundary(self, started: bool, audio_ms: int) -> None:
        if started:
            self.server_regions.append([float(audio_ms), None])
        elif self.server_regions and self.server_regions[-1][1] is None:
            self.server_regions[-1][1] = float(audio_ms)
        else:  # a stop without a start we saw (e.g. connected mid-speech)
            self.server_regions.append([max(0.0, audio_ms - 300.0), float(audio_ms)])

    # ------------------------------------------------------------------ painting
    def _x(self, ms: float, r: QRectF) -> float:
        return r.right() - (self.now_ms - ms) / self.window_ms * r.width()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        self.paints += 1
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QColor(90, 90, 90))
        p.setBrush(QColor(24, 26, 30))
        p.drawRect(r)
        start_ms = self.now_ms - self.window_ms
        # Speech regions: server (full height), local VAD (bottom strip).
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(156, 39, 176, 70))
        for a, b in self.server_regions:
            end = self.now_ms if b is None else b
            if end < start_ms:
                continue
            x0, x1 = self._x(max(a, start_ms), r), self._x(end, r)
            p.drawRect(QRectF(x0, r.top(), max(1.0, x1 - x0), r.height()))
        p.setBrush(QColor(76, 175, 80, 200))
        for a, b in self.local_regions:
            end = self.now_ms if b is None else b
            if end < start_ms:
                continue
            x0, x1 = self._x(max(a, start_ms), r), self._x(end, r)
            p.drawRect(QRectF(x0, r.bottom() - 5, max(1.0, x1 - x0), 5))
        # Waveform (peak envelope), newest column at the right edge.
        mid = r.center().y()
        half = r.height() / 2 - 6
        n = len(self._peaks)
        if n:
            # One filled polygon (upper envelope left→right, lower right→left): a single draw call per frame.
            col_w = r.width() * COLUMN_MS / self.window_ms
            visible = min(n, int(r.width() / col_w) + 1)
            peaks = np.fromiter(self._peaks, dtype=np.float64, count=n)[n - visible:]
            xs = r.right() - (visible - 1 - np.arange(visible)) * col_w
            hs = np.maximum(0.5, np.sqrt(np.minimum(peaks, 1.0)) * half)  # sqrt: quiet speech stays visible
            upper = [QPointF(x, mid - h) for x, h in zip(xs.tolist(), hs.tolist())]
            lower = [QPointF(x, mid + h) for x, h in zip(reversed(xs.tolist()), reversed(hs.tolist()))]
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(176, 190, 197))
            p.drawPolygon(QPolygonF(upper + lower))
        # Threshold line and the probability trace (0 bottom … 1 top).
        top, height = r.top() + 3, r.height() - 9
        y_thr = top + (1.0 - self.threshold) * height
        pen = QPen(QColor(255, 235, 59), 1, Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawLine(QPointF(r.left(), y_thr), QPointF(r.right(), y_thr))
        pts = [QPointF(self._x(end_ms, r), top + (1.0 - prob) * height) for end_ms, prob in self._probs if end_ms >= start_ms]
        if len(pts) > 1:
            # A 1 px cosmetic pen without antialiasing: wide or antialiased polylines cost 5-10× more to raster.
            p.setPen(QPen(QColor(255, 152, 0), 0))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPolyline(QPolygonF(pts))
        p.setPen(QColor(200, 200, 200))
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.8))
        p.setFont(f)
        p.drawText(QRectF(r.left() + 4, y_thr - 14, 200, 14), Qt.AlignmentFlag.AlignLeft, f"threshold {self.threshold:.2f}")
        last = self._probs[-1][1] if self._probs else 0.0
        p.drawText(QRectF(r.right() - 124, r.top() + 2, 120, 14), Qt.AlignmentFlag.AlignRight, f"speech p={last:.2f}")
        p.end()
