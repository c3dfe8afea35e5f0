"""Microphone capture: device rate float32 in, 24 kHz int16 chunks out. No Qt, no asyncio.

The PortAudio callback copies each 10 ms block and holds it until `batch_ms` of audio are held, then puts
the batch into a queue: the consumer thread wakes once per batch, not once per block (on this kind of
machine a wake-up and the cold caches after it cost more than the work itself: bench/wakeup_cost.py).
`wait_ms(level_dbfs)`, when given, is asked about every block from the callback (its raw level, dBFS): how
long that block may wait in its batch. The batch goes as soon as it holds what its most hurried block
allows: 0 hands it over at once, so a block that may start a barge-in is processed within its own 10 ms;
more than `batch_ms` lets a quiet room's batches grow (`core.quiet_room`).
The consumer resamples with a streaming soxr resampler (state carried across blocks, so there are no seams),
converts to int16 and hands the batch's whole chunks to `on_chunk` in one call — from that thread; the
caller hops to its event loop (e.g. with `loop.call_soon_threadsafe`). Every sample goes out once, in order.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

import numpy as np

from desktop.audio.devices import AudioDeviceError, resolve_device, sounddevice_module
from desktop.audio.resample import live_resampler
from desktop.core.pcm import PROTOCOL_RATE, float_to_pcm16, ms_to_samples, rms_dbfs

log = logging.getLogger(__name__)

__all__ = ["MicrophoneCapture"]

_STOP = object()
_LONGEST_WAIT_MS = 500  # what a `wait_ms` answer is capped at


class MicrophoneCapture:
    def __init__(
        self,
        on_chunk: Callable[[np.ndarray], None],
        device=None,
        chunk_ms: int = 20,
        latency: str | float = "low",
        batch_ms: int = 10,
        wait_ms: Callable[[float], int] | None = None,
    ) -> None:
        self.on_chunk = on_chunk
        self.batch_ms = max(10, int(batch_ms))
        self.wait_ms = wait_ms
        self.batches = 0  # batches handed to the consumer (for benchmarks)
        self.urgent_batches = 0  # of which handed over before `batch_ms` (a block allowed less)
        self.long_batches = 0  # of which held longer than `batch_ms` (every block allowed more)
        self.device = device
        self.chunk_ms = chunk_ms
        self.latency = latency
        self.chunk_samples = ms_to_samples(chunk_ms)
        self.device_rate: int | None = None
        self.device_name: str | None = None
        self.overflows = 0  # input overflow flags reported by PortAudio
        self._stream = None
        self._thread: threading.Thread | None = None
        self._blocks: queue.SimpleQueue = queue.SimpleQueue()
        self._error: str | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._held: list[np.ndarray] = []  # blocks the callback holds for the next batch
        self._held_frames = 0
        self._held_limit = 0  # frames the held batch may reach: what its most hurried block allows
        self._rate = 0

    @property
    def running(self) -> bool:
        return self._stream is not None and self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> str | None:
        """Why capture failed or stopped on its own (None while all is well)."""
        return self._error

    def start(self) -> None:
        """Open the input stream and start delivering chunks. Raises AudioDeviceError."""
        with self._lock:
            if self._stream is not None:
                return
            sd = sounddevice_module()
            info = resolve_device(self.device, "input")
            rate = int(info["default_samplerate"]) or PROTOCOL_RATE
            self._error = None
            self._stopping = False
            self._blocks = queue.SimpleQueue()
            self._held, self._held_frames = [], 0
            self._rate = rate
            self._held_limit = self._empty_batch_limit()
            try:
                stream = sd.InputStream(
                    device=self.device,
                    channels=1,
                    samplerate=rate,
                    dtype="float32",
                    latency=self.latency,
                    # 10 ms blocks: with PortAudio's default ("any size"), the ALSA pulse plugin called back
                    # ~580 times a second with ~76 frames each, and the capture path cost several % of a core.
                    blocksize=max(1, rate // 100),
                    callback=self._callback,
                    finished_callback=self._finished,
                )
            except Exception as exc:  # PortAudioError, ValueError
                raise AudioDeviceError(f"cannot open microphone {info['name']!r}: {exc}") from exc
            self.device_rate = int(stream.samplerate)
            self.device_name = str(info["name"])
            self._thread = threading.Thread(
                target=self._consume, args=(self._blocks, self.device_rate), name="parley-mic", daemon=True
            )
            self._thread.start()
            try:
                stream.start()
            except Exception as exc:
                self._blocks.put(_STOP)
                self._thread.join()
                self._thread = None
                stream.close()
                raise AudioDeviceError(f"cannot start microphone {info['name']!r}: {exc}") from exc
            self._stream = stream
            log.info("microphone %r open at %d Hz, latency %.3f s", self.device_name, self.device_rate,
                     stream.latency)

    def stop(self) -> None:
        """Close the stream, flush and join the consumer thread. Idempotent."""
        with self._lock:
            stream, self._stream = self._stream, None
            thread, self._thread = self._thread, None
            self._stopping = True
            if stream is not None:
                try:
                    stream.stop()
                    stream.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the microphone failed: %s", exc)
            if thread is not None:
                if self._held:  # the callback has stopped: its last blocks go out too
                    self._blocks.put(self._held)
                    self._held, self._held_frames = [], 0
                self._blocks.put(_STOP)
                thread.join(timeout=5.0)

    # ------------------------------------------------------------------ audio thread: copy and hold

    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        block = indata[:, 0].copy()
        self._held.append(block)
        self._held_frames += frames
        if self.wait_ms is not None:
            self._held_limit = min(self._held_limit, self._frames_for(self._block_wait_ms(block)))
        if self._held_frames >= self._held_limit:
            self._blocks.put(self._held)
            self.batches += 1
            normal = self._frames_for(self.batch_ms)
            if self._held_frames < normal:
                self.urgent_batches += 1
            elif self._held_frames >= normal + self._rate // 100:
                self.long_batches += 1
            self._held, self._held_frames = [], 0
            self._held_limit = self._empty_batch_limit()

    def _empty_batch_limit(self) -> int:
        return self._frames_for(self.batch_ms if self.wait_ms is None else _LONGEST_WAIT_MS)

    def _frames_for(self, ms: int) -> int:
        """Frames a batch must hold to have waited `ms` (a little slack: the next block would overshoot)."""
        rate = self._rate
        return max(1, rate * ms // 1000 - rate // 400)

    def _block_wait_ms(self, block: np.ndarray) -> int:
        wait_ms = self.wait_ms
        if wait_ms is None:
            return self.batch_ms
        try:
            return max(0, min(int(wait_ms(rms_dbfs(block, full_scale=1.0))), _LONGEST_WAIT_MS))
        except Exception:  # noqa: BLE001 - a failing predicate must not stop capture: batches from now on
            log.exception("microphone batching decision failed; blocks go in %d ms batches from now on", self.batch_ms)
            self.wait_ms = None
            return 0

    def _finished(self) -> None:
        if not self._stopping:
            self._error = "the microphone stream stopped unexpectedly"
            self._blocks.put(_STOP)

    # ------------------------------------------------------------------ consumer thread

    def _consume(self, blocks: queue.SimpleQueue, rate: int) -> None:
        resampler = None if rate == PROTOCOL_RATE else live_resampler(rate, PROTOCOL_RATE)
        pending: list[np.ndarray] = []
        pending_len = 0
        n = self.chunk_samples
        while True:
            batch = blocks.get()
            if batch is _STOP:
                break
            block = np.concatenate(batch) if len(batch) > 1 else batch[0]
            out = resampler.resample_chunk(block) if resampler is not None else block
            if len(out) == 0:
                continue
            pending.append(out)
            pending_len += len(out)
            if pending_len < n:
                continue
            data = np.concatenate(pending) if len(pending) > 1 else pending[0]
            whole = (len(data) // n) * n
            self._deliver(float_to_pcm16(data[:whole]))
            rest = data[whole:]
            pending = [rest] if len(rest) else []
            pending_len = len(rest)

    def _deliver(self, chunk: np.ndarray) -> None:
        try:
            self.on_chunk(chunk)
        except Exception:  # a failing consumer must not kill capture
            log.exception("microphone chunk handler failed")
