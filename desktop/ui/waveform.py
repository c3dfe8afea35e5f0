"""A scrolling two-sided waveform: the microphone with the live speech probability, the threshold and where
speech was found, and under it the assistant's answer as it was played, with where a barge-in cut it.

Layers over the last `window_ms` of the microphone's timeline (newest at the right):
- the microphone's waveform above the centre line (peak envelope per 10 ms column),
- the assistant's played audio mirrored below it (blue), at the time it came out of the speaker: the blocks the
  speaker callback handed the device (ducking and fades included), placed `output latency` later,
- a red line where a barge-in cut the answer, labelled with how much of it was heard and how long after the
  user's speech started it stopped (`cut 2.1 s · +0.42 s`; negative when it stopped at the loudness onset, before
  the VAD heard speech),
- the local VAD's speech probability (0 at the bottom, 1 at the top) with the turn-detection threshold
  drawn as a dashed line,
- shaded speech regions: the server's (speech_started … speech_stopped, purple band across the
  whole height) and the local VAD's (green strip along the bottom), so a user can see why a turn ended.

Data arrives on the event loop (`add_audio`, `add_probability`, `server_boundary`, `answer_cut`), or from the
speaker callback into `OutputLane.feed` (a few µs: per-column peaks appended to a bounded deque), and only goes
into small ring buffers; painting happens on a 30 fps timer, so repainting never waits on or delays audio.

The two sides run on two clocks (the microphone's samples and the speaker's): `OutputLane` maps the speaker's
timeline onto the microphone's with an offset measured at each microphone chunk. Without a speaker (none
found, or `use_speaker=False`) the session's device-less clock consumes the answer at real-time pace, and the
truncation is computed from it: the lane shows that timing, labelled "answer (no speaker)".
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..core.actions import BargeInHappened
from ..core.pcm import PROTOCOL_RATE
from ..core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter

COLUMN_MS = 10
#: The offset between the two clocks is the median of this many measurements (one per microphone chunk: 1 s).
OFFSET_WINDOW = 50
MIC_COLOR = QColor(176, 190, 197)
ANSWER_COLOR = QColor(79, 195, 247)
CUT_COLOR = QColor(239, 83, 80)


class OutputLane:
    """The assistant's played audio as 10 ms peak columns on the microphone's timeline. No Qt.

    Speaker side (the audio callback): `feed(block, start)` takes one block as it is handed to the device and its
    position on the playback buffer's timeline; it computes the peak of each 10 ms column of that timeline and
    appends them to a bounded deque (an atomic append: no lock, nothing that can wait).
    Event-loop side: `anchor(mic_ms, speaker_pos)` at each microphone chunk measures the offset between the two
    clocks; the median of the last second's measurements is used, because a busy event loop hands over several
    microphone chunks at once, late, while the speaker's position is read as it is: a burst of measurements that
    are too low, which a mean (or measuring afresh at a jump) would follow; a real jump (a device reopened) is
    followed within half a second. `drain(latency)` moves what the callback left into `columns`,
    `[mic ms of the column's start, peak, speaker column]`, each column placed `latency` samples after it was
    handed (when it was heard). Until the microphone's clock has been seen, columns wait in the deque (the oldest
    are dropped). `dropped(pos)` (the buffer's flush_tap: a barge-in cut the device's buffer) silences the columns
    handed from `pos` on: they never came out of the speaker.
    """

    def __init__(self, window_ms: int = 8000, rate: int = PROTOCOL_RATE, pending_blocks: int = 1024,
                 offset_window: int = OFFSET_WINDOW) -> None:
        self.rate = rate
        self.per_col = rate * COLUMN_MS // 1000
        self._estimates: deque[float] = deque(maxlen=offset_window)
        self._pending: deque[tuple[int, np.ndarray | None]] = deque(maxlen=pending_blocks)
        self.columns: deque[list[float]] = deque(maxlen=window_ms // COLUMN_MS + 16)
        self.offset_ms: float | None = None
        self._last_col: int | None = None

    def reset(self) -> None:
        """Another playback clock (a new session's buffer): forget the offset and where the columns were."""
        self._pending.clear()
        self.offset_ms = None
        self._estimates.clear()
        self._last_col = None

    # ---------------------------------------------------------------- the speaker callback's side
    def feed(self, block: np.ndarray, start: int) -> None:
        n = len(block)
        if n == 0:
            return
        per = self.per_col
        edges = np.arange(-(start % per), n, per)
        edges[0] = 0
        self._pending.append((start // per, np.maximum.reduceat(np.abs(block), edges)))

    def dropped(self, pos: int) -> None:
        """The device dropped what it was handed from `pos` on (in order with the blocks: it is not pulling now)."""
        self._pending.append((pos, None))

    # ---------------------------------------------------------------- the event loop's side
    def anchor(self, mic_ms: float, speaker_pos: int) -> None:
        """The microphone's timeline stands at `mic_ms` while the speaker has been handed `speaker_pos` samples."""
        self._estimates.append(mic_ms - speaker_pos * 1000.0 / self.rate)
        self.offset_ms = float(np.median(self._estimates))

    def to_mic_ms(self, speaker_pos: float) -> float | None:
        """A position on the speaker's timeline (samples) on the microphone's (ms); None before any anchor."""
        if self.offset_ms is None:
            return None
        return speaker_pos * 1000.0 / self.rate + self.offset_ms

    def drain(self, latency_samples: int = 0) -> int:
        """Move the callback's columns onto the microphone's timeline; returns how many columns were added."""
        if self.offset_ms is None:
            return 0
        added = 0
        columns = self.columns
        per, rate, offset = self.per_col, self.rate, self.offset_ms
        while self._pending:
            first, peaks = self._pending.popleft()
            if peaks is None:  # a flush: silence the columns that never came out (the one holding `first` did)
                for column in reversed(columns):
                    if column[2] * per < first:
                        break
                    column[1] = 0.0
                continue
            for i, peak in enumerate(peaks.tolist()):
                col = first + i
                last = self._last_col
                if last is not None and col <= last:
                    if col == last and columns:  # a column split between two blocks
                        columns[-1][1] = max(columns[-1][1], peak)
                    continue
                columns.append([(col * per + latency_samples) * 1000.0 / rate + offset, peak, col])
                self._last_col = col
                added += 1
        return added

    def between(self, start_ms: float, end_ms: float) -> tuple[np.ndarray, np.ndarray]:
        """(column start times in mic ms, peaks) of the columns that start within [start_ms, end_ms]."""
        if not self.columns:
            return np.zeros(0), np.zeros(0)
        cols = np.array(self.columns, dtype=np.float64)
        keep = (cols[:, 0] >= start_ms) & (cols[:, 0] <= end_ms)
        return cols[keep, 0], cols[keep, 1]


class Waveform(QWidget):
    def __init__(self, parent: QWidget | None = None, window_ms: int = 8000, fps: int = 30) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMinimumHeight(70)
        self.setAccessibleName("Microphone and answer waveforms with the speech probability")
        self.setToolTip(
            "Above the centre: the microphone (grey). Below it: the answer as it came out of the speaker (blue).\n"
            "Red line: a barge-in cut the answer there: how much of it was heard, and how long after your speech began\n"
            "(negative: before the voice detection heard speech, e.g. held at the sound's onset).\n"
            "Local speech probability (orange) and the threshold (dashed).\n"
            "Purple: speech as the server's turn detection saw it. Green strip: speech by the local VAD."
        )
        self.window_ms = window_ms
        self.threshold = 0.5
        self.prefix_padding_ms = 300  # the server's speech_started includes it
        self.now_ms = 0.0
        self._samples = 0
        self._peaks: deque[float] = deque(maxlen=window_ms // COLUMN_MS + 2)
        self._partial = np.zeros(0, dtype=np.int16)
        self._probs: deque[tuple[int, float]] = deque(maxlen=window_ms // 32 + 4)
        self.server_regions: deque[list[float | None]] = deque(maxlen=64)
        self.local_regions: deque[list[float | None]] = deque(maxlen=64)
        self._local = SpeechSegmenter(0.5, 0, 500, frame_ms=32.0)
        #: The assistant's played audio (fed by the speaker callback once `attach`ed to a session).
        self.output = OutputLane(window_ms)
        #: Where barge-ins cut the answer: (mic ms, ms of the answer heard).
        self.cuts: deque[tuple[float, int]] = deque(maxlen=32)
        self._playback = None
        self._session = None
        self.paints = 0
        self._timer = QTimer(self)
        self._timer.setInterval(max(16, 1000 // fps))
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def sizeHint(self) -> QSize:
        return QSize(480, 90)

    # ------------------------------------------------------------------ data in
    def attach(self, session) -> None:
        """Show `session`'s answers: its playback buffer feeds the output lane, its barge-ins add cut markers."""
        if self._playback is not None and self._playback.level_tap == self.output.feed:
            self._playback.level_tap = self._playback.flush_tap = None
        self.output.reset()
        self._session = session
        self._playback = session.playback
        session.playback.level_tap = self.output.feed
        session.playback.flush_tap = self.output.dropped
        session.subscribe(self._on_note)

    def _on_note(self, note) -> None:
        if isinstance(note, BargeInHappened):
            self.answer_cut(note.item_id, note.heard_ms)

    def answer_cut(self, item_id: str, heard_ms: int) -> float | None:
        """A barge-in cut `item_id` after `heard_ms`: mark where that was heard; its mic ms (None if unknown)."""
        if self._playback is None:
            return None
        pos = self._playback.heard_position(item_id, heard_ms)
        at = None if pos is None else self.output.to_mic_ms(pos)
        if at is not None:
            self.cuts.append((at, int(heard_ms)))
        return at

    def cut_markers(self) -> list[tuple[float, int, float | None]]:
        """(mic ms of the cut, ms of the answer heard, ms since the user's speech began or None), oldest first."""
        return [(at, heard, self._since_speech(at)) for at, heard in self.cuts]

    def _since_speech(self, at: float) -> float | None:
        """How long after the user's speech began the answer was cut at `at` (negative: before the VAD heard speech,
        e.g. held at the sound's loudness onset). The speech is the local VAD's region nearest to `at` (one going
        on at `at` first, else one that began or ended within 1.5 s of it); without one, the server's, whose start
        includes the prefix padding (taken off here)."""
        for regions, padding in ((self.local_regions, 0.0), (self.server_regions, float(self.prefix_padding_ms))):
            best: tuple[float, float] | None = None
            for a, b in regions:
                start, end = a + padding, self.now_ms if b is None else b
                distance = 0.0 if start <= at <= end else min(abs(start - at), abs(at - end))
                if distance <= 1500 and (best is None or (distance, start) < best):
                    best = (distance, start)
            if best is not None:
                return at - best[1]
        return None

    def _tick(self) -> None:
        if self._playback is not None:
            self.output.drain(self._playback.output_latency_ms * PROTOCOL_RATE // 1000)
        self.update()

    def set_threshold(self, threshold: float, silence_ms: int | None = None, prefix_padding_ms: int | None = None) -> None:
        self.threshold = float(threshold)
        if prefix_padding_ms is not None:
            self.prefix_padding_ms = int(prefix_padding_ms)
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
        if self._playback is not None:
            self.output.anchor(self.now_ms, self._playback.position_samples)

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
        # The microphone's waveform (peak envelope) above the centre line, newest column at the right edge.
        mid = r.center().y()
        half = r.height() / 2 - 6
        n = len(self._peaks)
        if n:
            # One filled polygon (the envelope left→right, back along the centre line): one draw call per frame.
            col_w = r.width() * COLUMN_MS / self.window_ms
            visible = min(n, int(r.width() / col_w) + 1)
            peaks = np.fromiter(self._peaks, dtype=np.float64, count=n)[n - visible:]
            xs = r.right() - (visible - 1 - np.arange(visible)) * col_w
            hs = np.maximum(0.5, np.sqrt(np.minimum(peaks, 1.0)) * half)  # sqrt: quiet speech stays visible
            upper = [QPointF(x, mid - h) for x, h in zip(xs.tolist(), hs.tolist())]
            base = [QPointF(float(xs[-1]), mid), QPointF(float(xs[0]), mid)]
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(MIC_COLOR)
            p.drawPolygon(QPolygonF(upper + base))
        # The answer as played, mirrored below the centre line (nothing where it was silent).
        times, out_peaks = self.output.between(start_ms - COLUMN_MS, self.now_ms)
        hs = np.sqrt(np.minimum(out_peaks, 1.0)) * half
        loud = hs >= 0.5
        # Silent stretches add no points (the outline runs along the centre line there): cheap while nobody speaks.
        keep = loud | np.roll(loud, 1) | np.roll(loud, -1)
        if loud.any():
            xs = (r.right() - (self.now_ms - (times + COLUMN_MS / 2)) / self.window_ms * r.width())[keep]
            hs = hs[keep]
            lower = [QPointF(x, mid + h) for x, h in zip(xs.tolist(), hs.tolist())]
            base = [QPointF(float(xs[-1]), mid), QPointF(float(xs[0]), mid)]
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(ANSWER_COLOR)
            p.drawPolygon(QPolygonF(lower + base))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(76, 175, 80, 200))
        for a, b in self.local_regions:
            end = self.now_ms if b is None else b
            if end < start_ms:
                continue
            x0, x1 = self._x(max(a, start_ms), r), self._x(end, r)
            p.drawRect(QRectF(x0, r.bottom() - 5, max(1.0, x1 - x0), 5))
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
        f = QFont(self.font())
        f.setPointSizeF(max(7.0, f.pointSizeF() * 0.8))
        p.setFont(f)
        # Where barge-ins cut the answer: a red line, with what was heard and how long after the speech began.
        for at, heard, since in self.cut_markers():
            if not start_ms <= at <= self.now_ms:
                continue
            x = self._x(at, r)
            p.setPen(QPen(CUT_COLOR, 2))
            p.drawLine(QPointF(x, r.top() + 16), QPointF(x, r.bottom() - 6))
            label = f"cut {heard / 1000:.1f} s" + ("" if since is None else f" · {since / 1000:+.2f} s")
            width = p.fontMetrics().horizontalAdvance(label) + 6
            left = x + 3 if x + 3 + width <= r.right() else x - 3 - width
            p.fillRect(QRectF(left, mid + 2, width, 14), QColor(24, 26, 30, 200))
            p.drawText(QRectF(left, mid + 2, width, 14), Qt.AlignmentFlag.AlignCenter, label)
        p.setPen(QColor(200, 200, 200))
        p.drawText(QRectF(r.left() + 48, y_thr - 14, 200, 14), Qt.AlignmentFlag.AlignLeft, f"threshold {self.threshold:.2f}")
        last = self._probs[-1][1] if self._probs else 0.0
        p.drawText(QRectF(r.right() - 124, r.top() + 2, 120, 14), Qt.AlignmentFlag.AlignRight, f"speech p={last:.2f}")
        p.setPen(MIC_COLOR)
        p.drawText(QRectF(r.left() + 4, r.top() + 2, 120, 14), Qt.AlignmentFlag.AlignLeft, "mic")
        p.setPen(ANSWER_COLOR)
        heard = self._session is None or getattr(self._session, "speaker_open", True)
        p.drawText(QRectF(r.left() + 4, r.bottom() - 20, 200, 14), Qt.AlignmentFlag.AlignLeft,
                   "answer" if heard else "answer (no speaker)")
        p.end()
