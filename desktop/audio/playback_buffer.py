"""Assistant audio waiting to be played, with sample-exact accounting of what the listener heard.

Pure Python + numpy, no sound-device import: the same buffer feeds a real speaker
(`SpeakerOutput`), a device-less clock (`NullOutput`) or a test that calls `read()` itself.

Timeline model. Every sample ever handed out by `read()` — audio or silence — has a position on
one global timeline (`_pos`, counted in 24 kHz samples). Each item remembers the spans of that
timeline that carried its samples. A sample at position p has been *heard* once
`p < _pos - latency`, where latency is the output latency of the device (`set_output_latency`).
So `played_ms(item)` keeps advancing while the device drains its buffer after the last sample of
an item was handed over, and it never exceeds what was handed over, which never exceeds what was
received. Nothing here uses a wall clock: the accounting advances only inside `read()`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from desktop.core.pcm import PROTOCOL_RATE, ms_to_samples, samples_to_ms

__all__ = ["PlaybackBuffer", "StopReport"]

# Items whose accounting is kept (oldest forgotten first): a long conversation must not grow forever.
_MAX_TRACKED_ITEMS = 512
_DUCK_RAMP_MS = 10.0
_RESUME_FADE_MS = 5.0


@dataclass(frozen=True)
class StopReport:
    """What `stop()` / `pause()` found: the item being heard, how much of it was heard, what was dropped
    (for `pause()`: what is kept for `resume()`)."""

    item_id: str | None
    played_ms: int
    discarded_ms: int


class _Ramp:
    """A gain that moves linearly towards a target at a fixed step per sample."""

    __slots__ = ("current", "target", "step")

    def __init__(self, value: float, step: float) -> None:
        self.current = value
        self.target = value
        self.step = step

    def apply(self, block: np.ndarray) -> None:
        n = len(block)
        if n == 0:
            return
        if self.current == self.target:
            if self.current != 1.0:
                block *= self.current
            return
        direction = 1.0 if self.target > self.current else -1.0
        gains = self.current + direction * self.step * np.arange(1, n + 1, dtype=np.float32)
        if direction > 0:
            np.minimum(gains, self.target, out=gains)
        else:
            np.maximum(gains, self.target, out=gains)
        block *= gains
        self.current = float(gains[-1])
        if abs(self.current - self.target) < 1e-6:
            self.current = self.target


class _Item:
    __slots__ = ("received", "spans", "blocked")

    def __init__(self) -> None:
        self.received = 0  # samples received by enqueue()
        self.spans: list[list[int]] = []  # [timeline start, count] of samples handed to the device
        self.blocked = False  # stopped / discarded: later deltas are ignored

    def handed(self) -> int:
        return sum(count for _, count in self.spans)

    def heard(self, audible_pos: int) -> int:
        total = 0
        for start, count in self.spans:
            if audible_pos > start:
                total += min(count, audible_pos - start)
        return total


class PlaybackBuffer:
    """Thread-safe queue of assistant audio (int16, 24 kHz, mono) per assistant item.

    `read()` / `read_into()` are called from the audio callback; everything else from any thread.
    """

    def __init__(self, rate: int = PROTOCOL_RATE) -> None:
        #: Called with every block handed to the device (float32), e.g. the echo canceller's far-end feed.
        self.far_end_tap = None
        #: Called with every block handed to the device, like far_end_tap: the conversation recorder.
        self.record_tap = None
        #: Called (from the audio callback) when the device reports an underflow: it played silence nobody
        #: handed it, so the echo path's delay just moved.
        self.underflow_tap = None
        #: Called with (block, timeline position of its first sample) for every block handed to the device, like
        #: far_end_tap: the waveform's output lane (it must be cheap too).
        self.level_tap = None
        #: Called with the timeline position from which the device dropped what it had been handed (`flush_unheard`).
        self.flush_tap = None
        self.rate = rate
        self._lock = threading.Lock()
        self._queue: deque[list] = deque()  # [item_id, float32 samples, offset]
        self._queued = 0  # unplayed samples in _queue
        self._tail: np.ndarray | None = None  # fade-out being played after stop/pause/discard
        self._tail_off = 0
        self._paused = False
        self._pos = 0  # timeline: samples handed to the device so far (audio and silence)
        self._latency = 0  # samples
        self._items: OrderedDict[str, _Item] = OrderedDict()
        self._timeline: deque[list] = deque()  # [start, count, item_id], recent spans for current_item()
        self._pruned_item: str | None = None
        # Audio handed to the device and maybe not heard yet: [timeline start, item_id, samples view]
        # (views of the queued arrays, no copies), so that `flush_unheard()` can take it back.
        self._handed: deque[list] = deque()
        self._duck = _Ramp(1.0, 1.0 / max(1, ms_to_samples(_DUCK_RAMP_MS, rate)))
        self._resume = _Ramp(1.0, 1.0 / max(1, ms_to_samples(_RESUME_FADE_MS, rate)))

    # ------------------------------------------------------------------ producer side

    def enqueue(self, item_id: str, pcm16: np.ndarray) -> None:
        """Queue int16 samples of an item. Deltas of a stopped or discarded item are dropped."""
        samples = np.asarray(pcm16)
        if samples.ndim != 1:
            samples = samples.reshape(-1)
        if samples.dtype.kind == "f":
            data = samples.astype(np.float32, copy=True)
        else:
            data = samples.astype(np.float32) * np.float32(1.0 / 32768.0)
        with self._lock:
            item = self._item(item_id)
            item.received += len(data)
            if item.blocked or len(data) == 0:
                return
            self._queue.append([item_id, data, 0])
            self._queued += len(data)

    def set_output_latency(self, seconds: float) -> None:
        """How long a sample handed to the device takes to be heard (the stream's reported latency)."""
        with self._lock:
            self._latency = max(0, int(round(float(seconds or 0.0) * self.rate)))

    @property
    def output_latency_ms(self) -> int:
        with self._lock:
            return samples_to_ms(self._latency, self.rate)

    # ------------------------------------------------------------------ audio callback side

    def read(self, frames: int) -> np.ndarray:
        """Exactly `frames` float32 samples (silence where nothing is queued)."""
        out = np.zeros(frames, dtype=np.float32)
        self.read_into(out)
        return out

    def read_into(self, out: np.ndarray) -> None:
        """Fill a float32 array (e.g. `outdata[:, 0]`) in place; no allocation beyond small temporaries."""
        frames = len(out)
        out[:] = 0.0
        with self._lock:
            filled = 0
            # 1. a fade-out in progress (after stop / pause / discard of the playing item)
            if self._tail is not None:
                n = min(frames, len(self._tail) - self._tail_off)
                out[:n] = self._tail[self._tail_off:self._tail_off + n]
                self._tail_off += n
                filled = n
                if self._tail_off >= len(self._tail):
                    self._tail = None
                    self._tail_off = 0
            # 2. queued audio
            if not self._paused:
                audio_start = filled
                while filled < frames and self._queue:
                    seg = self._queue[0]
                    item_id, data, off = seg
                    n = min(frames - filled, len(data) - off)
                    out[filled:filled + n] = data[off:off + n]
                    self._account(item_id, self._pos + filled, n)
                    self._handed.append([self._pos + filled, item_id, data[off:off + n]])
                    filled += n
                    self._queued -= n
                    if off + n >= len(data):
                        self._queue.popleft()
                    else:
                        seg[2] = off + n
                if filled > audio_start:
                    self._resume.apply(out[audio_start:filled])
            self._duck.apply(out)
            start = self._pos
            self._pos += frames
            self._prune_timeline()
        tap = self.far_end_tap
        if tap is not None:
            # What goes to the speaker is the echo canceller's reference (it must be cheap: it runs here,
            # in the audio callback).
            tap(out)
        record = self.record_tap
        if record is not None:
            record(out)
        level = self.level_tap
        if level is not None:
            level(out, start)

    # ------------------------------------------------------------------ control

    def stop(self, fade_ms: float = 5.0) -> StopReport:
        """Fade out what is about to play (≤ fade_ms), then silence; all queued audio is dropped.

        Items that lose audio are blocked: later `enqueue()` of them is ignored (late deltas of a
        response being cancelled). `played_ms` is what had been heard at this instant.
        """
        with self._lock:
            report = self._report()
            discarded = self._queued
            self._start_fade(fade_ms)
            for item_id, _, _ in self._queue:
                self._item(item_id).blocked = True
            self._queue.clear()
            self._queued = 0
            self._paused = False
            return StopReport(report[0], report[1], samples_to_ms(discarded, self.rate))

    def pause(self, fade_ms: float = 5.0) -> StopReport:
        """Like `stop()` but the unplayed audio stays queued; `resume()` continues where it stopped.

        The few milliseconds used for the fade-out are played again (faded in) on resume, so nothing
        is skipped. `discarded_ms` reports how much audio is held back.
        """
        with self._lock:
            report = self._report()
            if not self._paused:
                self._start_fade(fade_ms)
                self._paused = True
            return StopReport(report[0], report[1], samples_to_ms(self._queued, self.rate))

    def resume(self) -> None:
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            self._resume.current = 0.0
            self._resume.target = 1.0

    def duck(self, gain: float) -> None:
        """Scale the output to `gain` (0..1) over ~10 ms."""
        with self._lock:
            self._duck.target = float(min(1.0, max(0.0, gain)))

    def unduck(self) -> None:
        self.duck(1.0)

    def discard_item(self, item_id: str) -> int:
        """Drop the queued samples of one item (and ignore its later deltas). Returns the ms dropped.

        If the item is the one playing, its remaining audio fades out over 5 ms instead of clicking.
        """
        with self._lock:
            item = self._item(item_id)
            item.blocked = True
            if not self._queue:
                return 0
            playing = self._queue[0][0] == item_id and not self._paused
            if playing:
                self._start_fade(5.0, only_item=item_id)
            dropped = 0
            kept: deque[list] = deque()
            for seg in self._queue:
                if seg[0] == item_id:
                    dropped += len(seg[1]) - seg[2]
                else:
                    kept.append(seg)
            self._queue = kept
            self._queued -= dropped
            return samples_to_ms(dropped, self.rate)

    def clear(self) -> None:
        """Forget everything (queue, accounting, blocked items); output fades to silence."""
        with self._lock:
            self._start_fade(5.0)
            self._queue.clear()
            self._queued = 0
            self._paused = False
            self._items.clear()
            self._timeline.clear()
            self._handed.clear()
            self._pruned_item = None
            self._resume.current = self._resume.target = 1.0

    def unheard_ms(self) -> int:
        """Assistant audio handed to the device but not heard yet (at most the output latency)."""
        with self._lock:
            return samples_to_ms(sum(len(data) for _, data in self._unheard_segments()), self.rate)

    def flush_unheard(self) -> int:
        """The device has just dropped everything it had not played yet (its stream was aborted, which
        flushes PortAudio's and the sound server's buffers). Take that audio back: nothing handed at or
        after the audible position was heard, so the accounting ends there, and the samples go back to
        the front of the queue (unless their item is blocked), where `pause()` keeps them for `resume()`
        and `stop()` drops them. A fade-out in progress is dropped too: it was cut with the rest.

        Call it while the device is not pulling (between aborting and restarting the stream). Returns the
        samples taken back."""
        with self._lock:
            cut = self._pos - self._latency
            back = self._unheard_segments()
            self._handed.clear()
            self._tail = None
            self._tail_off = 0
            for item_id in {item_id for item_id, _ in back}:
                item = self._items.get(item_id)
                if item is not None:
                    item.spans = [[start, min(count, cut - start)] for start, count in item.spans if start < cut]
            self._timeline = deque([start, min(count, cut - start), item_id]
                                   for start, count, item_id in self._timeline if start < cut)
            taken = 0
            for item_id, data in reversed(back):
                taken += len(data)
                if not self._item(item_id).blocked:
                    self._queue.appendleft([item_id, data, 0])
                    self._queued += len(data)
        dropped = self.flush_tap
        if dropped is not None:
            dropped(cut)
        return taken

    # ------------------------------------------------------------------ accounting

    def played_ms(self, item_id: str) -> int:
        """ms of the item handed to the device minus the output latency (0 ≤ played ≤ received)."""
        with self._lock:
            return samples_to_ms(self._played_samples(item_id), self.rate)

    def played_samples(self, item_id: str) -> int:
        with self._lock:
            return self._played_samples(item_id)

    def handed_ms(self, item_id: str) -> int:
        """ms of the item already handed to the device (heard now or within the output latency)."""
        with self._lock:
            item = self._items.get(item_id)
            return samples_to_ms(item.handed(), self.rate) if item else 0

    def heard_position(self, item_id: str, ms: int) -> int | None:
        """The timeline position (samples, output latency included) at which the item's audio at `ms` was heard
        or will be: where a truncation at `ms` cut it. None for an unknown item or audio not handed yet."""
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return None
            left = ms_to_samples(max(0, ms), self.rate)
            for start, count in item.spans:
                if left <= count:
                    return start + left + self._latency
                left -= count
            return None

    def received_ms(self, item_id: str) -> int:
        with self._lock:
            item = self._items.get(item_id)
            return samples_to_ms(item.received, self.rate) if item else 0

    def current_item(self) -> str | None:
        """The item being heard now, else the last one heard (None before any)."""
        with self._lock:
            return self._current_item()

    def is_playing(self) -> bool:
        """True while unplayed samples are queued and not paused."""
        with self._lock:
            return self._queued > 0 and not self._paused

    def is_paused(self) -> bool:
        with self._lock:
            return self._paused

    def queued_ms(self) -> int:
        with self._lock:
            return samples_to_ms(self._queued, self.rate)

    @property
    def position_samples(self) -> int:
        """Samples handed to the device since creation (audio and silence)."""
        with self._lock:
            return self._pos

    # ------------------------------------------------------------------ internals (lock held)

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = _Item()
            while len(self._items) > _MAX_TRACKED_ITEMS:
                self._items.popitem(last=False)
        return item

    def _account(self, item_id: str, start: int, count: int) -> None:
        item = self._items.get(item_id)
        if item is None:  # forgotten by the size cap while still queued: track it again
            item = self._item(item_id)
            item.received = count
        spans = item.spans
        if spans and spans[-1][0] + spans[-1][1] == start:
            spans[-1][1] += count
        else:
            spans.append([start, count])
        tl = self._timeline
        if tl and tl[-1][2] == item_id and tl[-1][0] + tl[-1][1] == start:
            tl[-1][1] += count
        else:
            tl.append([start, count, item_id])

    def _played_samples(self, item_id: str) -> int:
        item = self._items.get(item_id)
        if item is None:
            return 0
        heard = item.heard(self._pos - self._latency)
        return max(0, min(heard, item.received))

    def _current_item(self) -> str | None:
        audible = self._pos - self._latency
        for start, _count, item_id in reversed(self._timeline):
            if start < audible:
                return item_id
        return self._pruned_item  # the last item heard before the recent timeline (or None)

    def _prune_timeline(self) -> None:
        audible = self._pos - self._latency
        handed = self._handed
        while handed and handed[0][0] + len(handed[0][2]) <= audible:
            handed.popleft()
        tl = self._timeline
        # keep the newest span that started being heard, and everything after it
        while len(tl) >= 2 and tl[1][0] < audible:
            self._pruned_item = tl.popleft()[2]

    def _unheard_segments(self) -> list[tuple[str, np.ndarray]]:
        """(item_id, samples) handed to the device at or after the audible position, in order."""
        cut = self._pos - self._latency
        return [(item_id, data[max(0, cut - start):]) for start, item_id, data in self._handed
                if start + len(data) > cut]

    def _report(self) -> tuple[str | None, int]:
        item_id = self._current_item()
        if item_id is None:
            return None, 0
        return item_id, samples_to_ms(self._played_samples(item_id), self.rate)

    def _start_fade(self, fade_ms: float, only_item: str | None = None) -> None:
        """Turn the next ≤ fade_ms of pending audio into a linear fade-out played before anything else.

        The queue itself is left alone: stop / discard drop the faded samples from it afterwards, pause
        keeps them so they play again (faded in) on resume.
        only_item: fade just the leading run of that item (discard of the playing item).
        """
        n_fade = max(0, ms_to_samples(fade_ms, self.rate))
        if self._tail is not None:
            # already fading out: keep that fade, it ends in silence anyway
            return
        if n_fade == 0 or self._paused or not self._queue:
            return
        pieces = []
        need = n_fade
        for item_id, data, off in self._queue:
            if need <= 0 or (only_item is not None and item_id != only_item):
                break
            take = data[off:off + need]
            pieces.append(take)
            need -= len(take)
        if not pieces:
            return
        tail = np.concatenate(pieces).astype(np.float32, copy=True)
        n = len(tail)
        # ramp from just under the current level to exactly zero; the resume ramp (if fading in) carries on
        ramp = np.linspace(1.0, 0.0, n + 1, dtype=np.float32)[1:]
        if self._resume.current != 1.0 or self._resume.target != 1.0:
            self._resume.apply(tail)
        tail *= ramp
        self._tail = tail
        self._tail_off = 0
