"""Output of a PlaybackBuffer to a speaker (PortAudio) or to nowhere at real-time pace. No Qt.

The audio callback does one thing: `buffer.read_into(outdata[:, 0])`. All accounting happens in
the buffer, counted in samples handed to the device.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from desktop.audio.devices import AudioDeviceError, resolve_device, sounddevice_module
from desktop.audio.playback_buffer import PlaybackBuffer, StopReport
from desktop.core.pcm import PROTOCOL_RATE, ms_to_samples

log = logging.getLogger(__name__)

__all__ = ["SpeakerOutput", "NullOutput"]


class _DeviceRateAdapter:
    """24 kHz buffer samples -> device-rate frames with soxr, pulled from the callback (fallback path only).

    Used only when a device refuses 24 kHz. The buffer is read in 24 kHz samples (so the heard-ms
    accounting stays in protocol samples); a streaming soxr resampler converts them, and a small FIFO
    hands the callback exactly the frames it asks for. What sits in the FIFO and soxr's own delay are
    added to the output latency the buffer subtracts.
    """

    def __init__(self, buffer: PlaybackBuffer, device_rate: int) -> None:
        import soxr

        self.buffer = buffer
        self.device_rate = device_rate
        self._resampler = soxr.ResampleStream(PROTOCOL_RATE, device_rate, 1, dtype="float32", quality="MQ")
        self._fifo = np.zeros(0, dtype=np.float32)
        # Read ahead in 10 ms steps: few, cheap soxr calls per callback.
        self._step = ms_to_samples(10)

        self.extra_latency_s = self._measure_delay_s(device_rate) + self._step / PROTOCOL_RATE / 2

    @staticmethod
    def _measure_delay_s(device_rate: int) -> float:
        """soxr's start-up delay for this conversion: output missing after 100 ms of input."""
        import soxr

        probe = soxr.ResampleStream(PROTOCOL_RATE, device_rate, 1, dtype="float32", quality="MQ")
        out = probe.resample_chunk(np.zeros(ms_to_samples(100), dtype=np.float32))
        missing = 0.1 * device_rate - len(out)
        return max(0.0, missing / device_rate)

    def fill(self, out: np.ndarray) -> None:
        frames = len(out)
        while len(self._fifo) < frames:
            converted = self._resampler.resample_chunk(self.buffer.read(self._step))
            self._fifo = np.concatenate([self._fifo, converted.astype(np.float32, copy=False)])
        out[:] = self._fifo[:frames]
        self._fifo = self._fifo[frames:]


class SpeakerOutput:
    """Plays a PlaybackBuffer on an output device: 24 kHz mono float32, PortAudio/PulseAudio resample.

    If the device refuses 24 kHz, the stream opens at the device's default rate and the callback
    resamples with soxr (accounting unchanged, a few ms more latency accounted for).

    latency: PortAudio's suggested latency. 0.04 s by default: through the ALSA pulse plugin,
    'low' (≈9 ms) underflowed a few times a second, 0.02–0.04 s and 'high' (≈35 ms) did not.
    """

    def __init__(self, buffer: PlaybackBuffer, device=None, latency: str | float = 0.04,
                 blocksize: int = 0) -> None:
        self.buffer = buffer
        self.device = device
        self.latency = latency
        self.blocksize = blocksize
        self.samplerate: int | None = None
        self.device_name: str | None = None
        self.underflows = 0
        self._stream = None
        self._resampler: _DeviceRateAdapter | None = None
        #: Interruptions that cut the device's buffer (see `interrupt`).
        self.flushes = 0
        self._error: str | None = None
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def running(self) -> bool:
        return self._stream is not None and self._stream.active

    @property
    def output_latency(self) -> float:
        """Seconds reported by the stream (0 when not open)."""
        return float(self._stream.latency) if self._stream is not None else 0.0

    def start(self) -> None:
        """Open and start the output stream. Raises AudioDeviceError."""
        with self._lock:
            if self._stream is not None:
                return
            sd = sounddevice_module()
            info = resolve_device(self.device, "output")
            self._error = None
            self._stopping = False
            self._resampler = None
            try:
                stream = self._open(sd, PROTOCOL_RATE)
            except Exception as first:  # noqa: BLE001 - the device may refuse 24 kHz
                rate = int(info["default_samplerate"])
                if rate == PROTOCOL_RATE or rate <= 0:
                    raise AudioDeviceError(f"cannot open speaker {info['name']!r}: {first}") from first
                log.info("speaker refuses %d Hz (%s); opening at %d Hz", PROTOCOL_RATE, first, rate)
                self._resampler = _DeviceRateAdapter(self.buffer, rate)
                try:
                    stream = self._open(sd, rate)
                except Exception as exc:
                    raise AudioDeviceError(f"cannot open speaker {info['name']!r}: {exc}") from exc
            self.samplerate = int(stream.samplerate)
            self.device_name = str(info["name"])
            extra = self._resampler.extra_latency_s if self._resampler is not None else 0.0
            self.buffer.set_output_latency(float(stream.latency) + extra)
            try:
                stream.start()
            except Exception as exc:
                stream.close()
                raise AudioDeviceError(f"cannot start speaker {info['name']!r}: {exc}") from exc
            self._stream = stream
            log.info("speaker %r open at %d Hz, latency %.3f s", self.device_name, self.samplerate,
                     stream.latency)

    def _open(self, sd, rate: int):
        return sd.OutputStream(
            device=self.device,
            samplerate=rate,
            channels=1,
            dtype="float32",
            latency=self.latency,
            blocksize=self.blocksize,
            callback=self._callback,
            finished_callback=self._finished,
        )

    def stop(self) -> None:
        """Stop and close the stream. Idempotent. Queued audio stays in the buffer."""
        with self._lock:
            stream, self._stream = self._stream, None
            self._stopping = True
            if stream is not None:
                try:
                    stream.stop()
                    stream.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the speaker failed: %s", exc)

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.underflows += 1
            tap = self.buffer.underflow_tap
            if tap is not None:
                try:
                    tap()
                except Exception:  # noqa: BLE001 - never into PortAudio
                    log.exception("underflow handler failed")
        try:
            if self._resampler is not None:
                self._resampler.fill(outdata[:, 0])
            else:
                self.buffer.read_into(outdata[:, 0])
        except Exception:  # never let an exception escape into PortAudio
            outdata.fill(0)
            log.exception("playback callback failed")

    def _finished(self) -> None:
        if not self._stopping:
            self._error = "the speaker stream stopped unexpectedly"

    def interrupt(self, act: Callable[[float], StopReport]) -> tuple[StopReport, bool]:
        """Silence the speaker now for a pause or stop of the buffer (`act(fade_ms)`), cutting what the device
        has queued.

        Changing what the callback hands over silences the output only after the device's buffer has
        drained (the stream's latency: ~40 ms here, plus the sound server's). Aborting the stream drops that
        buffer (through the ALSA pulse plugin it also flushes PulseAudio's), so the voice stops within a
        few ms. The buffer takes the dropped audio back (`PlaybackBuffer.flush_unheard`): the report says
        exactly what was heard, and a resumed pause continues from there. The stream is started again at
        once (abort + start took 1-4 ms here). The cut is not faded (what the device had queued is gone);
        no fade is played afterwards either, it would come after a gap.

        Returns the report and whether the device's buffer was cut (False: no stream, or nothing audible
        queued in it; then `act` ran with the usual 5 ms fade)."""
        with self._lock:
            stream = self._stream
            if stream is None or not stream.active or self.buffer.unheard_ms() <= 0:
                return act(5.0), False
            self._stopping = True  # the abort calls the finished callback: not an error
            try:
                stream.abort()
            except Exception as exc:  # noqa: BLE001
                self._stopping = False
                log.warning("cutting the speaker's buffer failed: %s", exc)
                return act(5.0), False
            self.buffer.flush_unheard()
            if self._resampler is not None:
                self._resampler = _DeviceRateAdapter(self.buffer, self._resampler.device_rate)
            report = act(0.0)
            try:
                stream.start()
            except Exception as exc:  # noqa: BLE001
                self._error = f"the speaker could not be restarted: {exc}"
                self._stream = None
                log.warning("%s", self._error)
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the failed speaker stream", exc_info=True)
            else:
                self._stopping = False
            self.flushes += 1
            return report, True


class NullOutput:
    """No device: consumes the buffer in 20 ms blocks at real-time pace so the accounting advances."""

    def __init__(self, buffer: PlaybackBuffer, block_ms: int = 20) -> None:
        self.buffer = buffer
        self.block_ms = block_ms
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            return
        self.buffer.set_output_latency(0.0)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="parley-null-output", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        n = ms_to_samples(self.block_ms)
        period = n / PROTOCOL_RATE
        block = np.zeros(n, dtype=np.float32)
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            # block k is consumed at t0 + k*period (deadline based: no drift)
            delay = t0 + k * period - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            if delay < -1.0:  # fell far behind (machine suspended): skip ahead, don't burst
                t0 = time.monotonic()
                k = 0
            self.buffer.read_into(block)
            k += 1
