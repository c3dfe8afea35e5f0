"""Acoustic echo cancellation on the capture path. No Qt, no event loop: runs on the capture consumer thread.

With loudspeakers the assistant's voice comes back through the microphone and would trigger a false
barge-in. `EchoCanceller` removes it with WebRTC's AEC3 (the `AudioProcessingModule` of the `livekit`
package: echo canceller plus the high-pass filter it expects). `bench/aec_compare.py` chose it by
measurement (results in bench/results/aec.json): on a synthetic room echo path at 24 kHz it gave 36-43 dB
of echo return loss enhancement from the first 100 ms, for about 0.13 ms of CPU per 10 ms frame (~1.3 %
of one core).

How the two sides meet:

* `feed_far_end(pcm16)` gets what playback hands to the device (it may be the PortAudio callback thread):
  it only appends to a bounded FIFO under a lock, so it is cheap and never calls into the library.
* `process_near_end(pcm16)` gets the microphone signal on the capture thread. It cuts it into 10 ms
  frames (keeping a partial frame for the next call), and before each frame hands the library every
  complete far-end frame fed so far, then the microphone frame. The library estimates the echo path
  delay itself; `set_delay_ms` gives it a hint. The output has as many samples as whole frames were
  processed, so it lags the input by less than one frame; WebRTC's filters add about 9 ms of delay to the
  content.
* Idling (`idle_after_ms`, by default `IDLE_AFTER_MS` = 1 s; None: never): while the speaker has been
  handed digital silence that long, the library is not called. The far-end frames are dropped as they come
  and each microphone frame passes on delayed by the library's own lag, so the output's timeline runs on
  unbroken. The library pairs the k-th far-end frame with the k-th microphone frame, so on waking the side
  that dropped more frames is given back as silence: both have skipped the same stretch, and the library
  resumes in step, with its echo path as it left it. (Without that evening-out, the far end's bursts
  against the microphone's batches left each answer's echo a few frames off: 7-14 dB of echo removed
  instead of 56 at the start of the next answer, and 51 of 60 answers self-interrupted in the benchmark.)
  It takes the idle capture path from about 6.3 to 4.4-4.7 % of a core (bench/barge_in.py).

`EchoGate` is the fallback when no AEC library can be loaded: a half-duplex gate, see its docstring.
`make_echo_canceller(mode)` picks one of them from the settings' mode.

Rates: the WebRTC module works at 16, 24, 32 or 48 kHz here; any other rate is resampled to 48 kHz and
back with streaming soxr resamplers.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import deque

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["ConvergingEchoCanceller", "EchoCanceller", "EchoGate", "available", "make_echo_canceller"]

_NATIVE_RATES = (16000, 24000, 32000, 48000)
_FALLBACK_RATE = 48000
#: How many samples the library's filters delay the microphone signal by, per rate (measured by
#: tests/test_capture_path.py::test_library_lag_is_known); idling needs it to keep the timeline unbroken.
_LIBRARY_LAG_SAMPLES = {24000: 224}
#: The capture path's canceller rests after this much digital silence to the speaker (ms; None: never).
IDLE_AFTER_MS: int | None = 1000


def _as_pcm16(pcm16: np.ndarray) -> np.ndarray:
    a = np.asarray(pcm16)
    if a.dtype != np.int16:
        a = a.astype(np.int16)
    return a.reshape(-1)


class _FarFifo:
    """Far-end samples waiting for the capture thread, bounded: the oldest are dropped past `max_samples`."""

    def __init__(self, max_samples: int) -> None:
        self._lock = threading.Lock()
        self._chunks: deque[np.ndarray] = deque()
        self._size = 0
        self.max_samples = max_samples
        self.dropped = 0

    def push(self, a: np.ndarray) -> None:
        if a.size == 0:
            return
        with self._lock:
            self._chunks.append(a.copy())
            self._size += a.size
            while self._size > self.max_samples and self._chunks:
                excess = self._size - self.max_samples
                head = self._chunks[0]
                if head.size <= excess:
                    self._chunks.popleft()
                    self._size -= head.size
                    self.dropped += head.size
                else:
                    self._chunks[0] = head[excess:]
                    self._size -= excess
                    self.dropped += excess

    def take_frames(self, frame: int) -> np.ndarray:
        """All complete frames as a (n, frame) array; the remainder stays."""
        with self._lock:
            n = self._size // frame
            if n == 0:
                return np.zeros((0, frame), dtype=np.int16)
            data = np.concatenate(list(self._chunks)) if len(self._chunks) > 1 else self._chunks[0]
            rest = data[n * frame:]
            self._chunks.clear()
            if rest.size:
                self._chunks.append(rest)
            self._size = rest.size
        return data[: n * frame].reshape(n, frame)

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._size = 0


class _Framer:
    """Cuts a stream into whole frames, keeping the partial one for the next call."""

    def __init__(self, frame: int) -> None:
        self.frame = frame
        self._pending = np.zeros(0, dtype=np.int16)

    def frames(self, a: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._pending, a]) if self._pending.size else a
        n = data.size // self.frame
        self._pending = data[n * self.frame:].copy()
        return data[: n * self.frame].reshape(n, self.frame)

    def clear(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)


class _ApmCalls:
    """One 10 ms frame into livekit's AudioProcessingModule, far end (`reverse`) or microphone (`capture`).

    livekit's public calls build a protobuf request per frame, serialize it, call the FFI library, parse the
    reply and free its handle: about 45 us of Python per 10 ms (far + near) on top of the ~85 us AEC3 itself
    takes (bench/barge_in.py's micro-benchmark; measured 136 against 90 us per 10 ms). Here the two requests
    are serialized once, for two fixed frame buffers the frames are copied into, and sent as they are; a
    reply other than the empty success message is parsed and raised. If livekit's internals are not what this
    expects (another version), the public calls are used instead: slower, same result."""

    def __init__(self, rtc, apm, rate: int, frame: int) -> None:
        self._rtc, self._apm, self._rate, self._frame = rtc, apm, rate, frame
        self._fast = False
        try:
            self._prepare_fast_path()
            self._fast = True
            # One silent frame each way, so a mismatch shows here and not mid-stream.
            silence = np.zeros(frame, dtype=np.int16)
            self.reverse(silence)
            self.capture(silence)
        except Exception as exc:  # noqa: BLE001 - any mismatch with livekit's internals: use the public calls
            self._fast = False
            log.info("echo cancellation: livekit's FFI fast path unavailable (%s: %s); using its public calls",
                     type(exc).__name__, exc)

    def _prepare_fast_path(self) -> None:
        import ctypes

        from livekit.rtc._ffi_client import FfiClient
        from livekit.rtc._proto import ffi_pb2
        from livekit.rtc._utils import get_address

        self._ctypes = ctypes
        self._ffi_pb2 = ffi_pb2
        lib = FfiClient.instance._ffi_lib
        self._request, self._drop = lib.livekit_ffi_request, lib.livekit_ffi_drop_handle
        handle = self._apm._ffi_handle.handle
        self._bufs, self._arrays, self._requests = {}, {}, {}
        for kind in ("apm_process_reverse_stream", "apm_process_stream"):
            buf = bytearray(self._frame * 2)
            req = ffi_pb2.FfiRequest()
            body = getattr(req, kind)
            body.apm_handle = handle
            body.data_ptr = get_address(buf)
            body.size = len(buf)
            body.sample_rate = self._rate
            body.num_channels = 1
            data = req.SerializeToString()
            cbuf = ctypes.create_string_buffer(data, len(data))
            self._bufs[kind] = (buf, cbuf)  # kept alive: the request points at buf, the library reads cbuf
            self._arrays[kind] = np.frombuffer(buf, dtype=np.int16)
            self._requests[kind] = (ctypes.cast(cbuf, ctypes.POINTER(ctypes.c_ubyte)), len(data))
        self._resp_ptr = ctypes.POINTER(ctypes.c_ubyte)()
        self._resp_len = ctypes.c_size_t()
        # The replies to a successful call: the response's field for this request, empty (no error).
        self._ok = {}
        for kind in ("apm_process_reverse_stream", "apm_process_stream"):
            resp = ffi_pb2.FfiResponse()
            getattr(resp, kind).SetInParent()
            self._ok[kind] = resp.SerializeToString()

    def _call(self, kind: str, frame: np.ndarray) -> None:
        self._arrays[kind][:] = frame
        ctypes = self._ctypes
        ptr, size = self._requests[kind]
        handle = self._request(ptr, size, ctypes.byref(self._resp_ptr), ctypes.byref(self._resp_len))
        reply = ctypes.string_at(self._resp_ptr, self._resp_len.value)
        self._drop(handle)
        if reply != self._ok[kind]:
            resp = self._ffi_pb2.FfiResponse()
            resp.ParseFromString(reply)
            error = getattr(resp, kind).error if resp.HasField(kind) else f"unexpected reply {reply[:40]!r}"
            if error:
                raise RuntimeError(error)

    def reverse(self, frame: np.ndarray) -> None:
        if self._fast:
            self._call("apm_process_reverse_stream", frame)
        else:
            self._apm.process_reverse_stream(self._rtc.AudioFrame(frame.tobytes(), self._rate, 1, self._frame))

    def capture(self, frame: np.ndarray) -> np.ndarray:
        """The frame with the echo removed (a new array)."""
        if self._fast:
            self._call("apm_process_stream", frame)
            return self._arrays["apm_process_stream"].copy()
        audio = self._rtc.AudioFrame(frame.tobytes(), self._rate, 1, self._frame)
        self._apm.process_stream(audio)
        return np.frombuffer(audio.data, dtype=np.int16).copy()

    def set_stream_delay_ms(self, ms: int) -> None:
        self._apm.set_stream_delay_ms(ms)


class EchoCanceller:
    """WebRTC AEC3 (through `livekit.rtc.AudioProcessingModule`) with a streaming, thread-safe front end.

    `feed_far_end` may be called from any thread; `process_near_end`, `set_delay_ms` and `reset` belong
    to the capture thread (set_delay_ms from elsewhere is harmless: it only stores a number).
    """

    name = "livekit WebRTC AEC3"

    def __init__(self, rate: int = 24000, frame_ms: int = 10, *, noise_suppression: bool = False,
                 max_far_ms: int = 1000, idle_after_ms: int | None = IDLE_AFTER_MS) -> None:
        if frame_ms != 10:
            raise ValueError("WebRTC audio processing works on 10 ms frames only")
        from livekit import rtc  # the import fails when the library is missing: see available()

        self._rtc = rtc
        self.rate = int(rate)
        self.frame_ms = frame_ms
        self.noise_suppression = noise_suppression
        self._lib_rate = self.rate if self.rate in _NATIVE_RATES else _FALLBACK_RATE
        self._frame = self._lib_rate // 100
        self._far = _FarFifo(max_samples=self._lib_rate * max_far_ms // 1000)
        self._near = _Framer(self._frame)
        self._delay_ms: int | None = None
        self._lag = _LIBRARY_LAG_SAMPLES.get(self._lib_rate)
        #: Idling (see the module doc): after this many far-end frames of digital silence (None: never).
        self._idle_after = (None if idle_after_ms is None or self._lag is None or self._lib_rate != self.rate
                            else max(1, int(idle_after_ms) // frame_ms))
        self._last_near = np.zeros(self._frame, dtype=np.int16)  # the last microphone frame (see idling)
        self._delayed: np.ndarray | None = None  # while idling: the input the output still owes (the lag)
        self._silent_far = 0  # far-end frames in a row that were digital silence (|sample| <= 2)
        self._idle_skew = 0  # while idling: far-end frames dropped minus microphone frames passed on
        self.idle_frames = 0  # microphone frames passed on without the library (for benchmarks and tests)
        self._make_resamplers()
        self._apm = self._new_apm()
        self._calls = _ApmCalls(rtc, self._apm, self._lib_rate, self._frame)

    @property
    def fast_path(self) -> bool:
        """Whether frames go to livekit's library through the prepared requests (see `_ApmCalls`)."""
        return self._calls._fast

    @classmethod
    def available(cls) -> bool:
        """Whether the `livekit` package (with its native library) is installed. Does not import it."""
        try:
            return importlib.util.find_spec("livekit.rtc") is not None
        except (ImportError, ValueError):
            return False

    def _new_apm(self):
        return self._rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=self.noise_suppression,
                                               high_pass_filter=True, auto_gain_control=False)

    def _make_resamplers(self) -> None:
        self._far_in = self._near_in = self._near_out = None
        if self._lib_rate != self.rate:
            import soxr

            def stream(a: int, b: int):
                return soxr.ResampleStream(a, b, 1, dtype="int16", quality="HQ")

            self._far_in = stream(self.rate, self._lib_rate)
            self._near_in = stream(self.rate, self._lib_rate)
            self._near_out = stream(self._lib_rate, self.rate)
        self._far_lock = threading.Lock()  # the far resampler is used from the feeding thread

    def set_delay_ms(self, ms: int | None) -> None:
        """Hint: delay between a far-end sample being fed and its echo reaching `process_near_end`.

        None removes the hint (AEC3 estimates the delay itself either way)."""
        self._delay_ms = None if ms is None else max(0, int(ms))

    def feed_far_end(self, pcm16: np.ndarray) -> None:
        """The audio handed to the speaker, as PCM16 mono at `rate`. Cheap, thread-safe."""
        a = _as_pcm16(pcm16)
        if self._far_in is not None:
            with self._far_lock:
                a = self._far_in.resample_chunk(a)
        self._far.push(a)

    def process_near_end(self, pcm16: np.ndarray) -> np.ndarray:
        """The microphone signal (PCM16 mono at `rate`, any length) with the echo removed.

        Returns the whole frames processed so far (possibly none): up to one frame stays buffered."""
        a = _as_pcm16(pcm16)
        if self._near_in is not None:
            a = self._near_in.resample_chunk(a)
        calls, n = self._calls, self._frame
        frames = self._near.frames(a)
        out = np.empty(frames.size, dtype=np.int16)
        idle_after = self._idle_after
        for i, near in enumerate(frames):
            fars = self._far.take_frames(n)
            if idle_after is not None:
                for far in fars:
                    self._silent_far = self._silent_far + 1 if int(np.abs(far).max()) <= 2 else 0
                if self._silent_far >= idle_after + len(fars):  # these frames, and a second before them
                    # Passed on delayed by the library's own lag, so the output's timeline runs on unbroken.
                    if self._delayed is None:
                        self._delayed = self._last_near[n - self._lag:].copy()
                    line = np.concatenate((self._delayed, near))
                    out[i * n:(i + 1) * n] = line[:n]
                    self._delayed = line[n:]
                    self._last_near = near
                    self._idle_skew += len(fars) - 1
                    self.idle_frames += 1
                    continue
                if self._delayed is not None:
                    # Resuming: one frame pair (silence to the speaker side, the last microphone frame) fills the
                    # library's delay line with what the passed-on signal still owes, so nothing repeats or
                    # goes missing; the pair keeps the two streams' frame counts together.
                    self._delayed = None
                    # The library pairs the k-th far-end frame with the k-th microphone frame (it buffers far
                    # frames that come early): the frames dropped on each side while idle must be as many, or
                    # every echo after waking arrives shifted by the difference. The far end is handed over
                    # in its own bursts and the microphone in batches, so while idle they rarely are: the
                    # side that dropped more is given back as silence.
                    skew, self._idle_skew = self._idle_skew, 0
                    silence = np.zeros(n, dtype=np.int16)
                    for _ in range(skew):
                        calls.reverse(silence)
                    for _ in range(-skew):
                        calls.capture(silence)
                    calls.reverse(silence)
                    calls.capture(self._last_near)
            self._last_near = near
            for far in fars:
                calls.reverse(far)
            if self._delay_ms is not None:
                calls.set_stream_delay_ms(self._delay_ms)
            out[i * n:(i + 1) * n] = calls.capture(near)
        if self._near_out is not None:
            out = self._near_out.resample_chunk(out)
        return out

    def reset(self) -> None:
        """Forget the learnt echo path and all buffered audio (e.g. after a device change)."""
        self._far.clear()
        self._near.clear()
        self._silent_far = 0
        self._idle_skew = 0
        self._delayed = None
        self._last_near = np.zeros(self._frame, dtype=np.int16)
        self._make_resamplers()
        self._apm = self._new_apm()
        self._calls = _ApmCalls(self._rtc, self._apm, self._lib_rate, self._frame)


class EchoGate:
    """Fallback without an AEC library: a half-duplex gate, not an echo canceller.

    Per 10 ms frame it compares the microphone level with the loudest far-end frame fed during the last
    `hold_ms` (measured on the microphone's sample clock, so it also covers the device round trip and the
    room's reverberation tail). The frame passes unchanged only when the microphone is at least
    `margin_db` louder than that, or when the far end has been quieter than `far_floor_dbfs` (nothing is
    playing); otherwise it is replaced by silence. After an open frame the gate stays open for `hangover_ms`
    so word endings are not clipped.

    So while the assistant speaks, the user gets through only by being clearly louder at the microphone
    than the assistant's signal is digitally, and quiet speech over the assistant is lost. The gate
    removes echo without harming speech when only one side talks; it cannot do double talk. Use a headset
    (mode "headset") or install the AEC library for real full duplex.
    """

    name = "echo gate (no AEC library)"

    def __init__(self, rate: int = 24000, frame_ms: int = 10, *, margin_db: float = 10.0, hold_ms: int = 400,
                 hangover_ms: int = 60, far_floor_dbfs: float = -55.0) -> None:
        self.rate = int(rate)
        self.frame_ms = int(frame_ms)
        self.margin_db = float(margin_db)
        self.far_floor_dbfs = float(far_floor_dbfs)
        self._frame = self.rate * self.frame_ms // 1000
        self._hold = self.rate * hold_ms // 1000
        self._hangover = max(0, hangover_ms // self.frame_ms)
        self._lock = threading.Lock()
        self._far_levels: deque[tuple[int, float]] = deque()  # (near clock when fed, level dBFS)
        self._far_framer = _Framer(self._frame)
        self._near = _Framer(self._frame)
        self._clock = 0  # microphone samples processed
        self._open_for = 0

    @classmethod
    def available(cls) -> bool:
        return True

    def set_delay_ms(self, ms: int | None) -> None:
        """Accepted for interface compatibility; the hold window already covers the delay."""

    @staticmethod
    def _dbfs(frames: np.ndarray) -> np.ndarray:
        x = frames.astype(np.float64)
        p = np.mean(x * x, axis=-1)
        return 10 * np.log10(np.maximum(p, 1e-3) / (32768.0 ** 2))

    def feed_far_end(self, pcm16: np.ndarray) -> None:
        a = _as_pcm16(pcm16)
        with self._lock:
            frames = self._far_framer.frames(a)
            if frames.size:
                # Only levels that can shut the gate are kept: below the floor a frame decides nothing (with
                # none kept, every microphone frame passes, as with only quiet ones), and silence to the
                # speaker then costs the microphone side no scan.
                floor = self.far_floor_dbfs
                for lvl in self._dbfs(frames):
                    if lvl >= floor:
                        self._far_levels.append((self._clock, float(lvl)))

    def _recent_far_dbfs(self) -> float:
        with self._lock:
            horizon = self._clock - self._hold
            while self._far_levels and self._far_levels[0][0] < horizon:
                self._far_levels.popleft()
            return max((lvl for _, lvl in self._far_levels), default=-200.0)

    def process_near_end(self, pcm16: np.ndarray) -> np.ndarray:
        frames = self._near.frames(_as_pcm16(pcm16))
        if frames.size and self._recent_far_dbfs() < self.far_floor_dbfs:
            # Nothing played within the hold window of any of these frames (the window only moves
            # forward): every frame passes, as the loop below would decide one by one.
            self._clock += frames.size
            self._open_for = self._hangover
            return frames.reshape(-1).copy()
        out = np.zeros(frames.size, dtype=np.int16)
        for i, (frame, lvl) in enumerate(zip(frames, self._dbfs(frames))):
            far = self._recent_far_dbfs()
            if far < self.far_floor_dbfs or lvl >= far + self.margin_db:
                self._open_for = self._hangover + 1
            if self._open_for > 0:
                out[i * self._frame:(i + 1) * self._frame] = frame
                self._open_for -= 1
            self._clock += self._frame
        return out

    def forget_far_end(self) -> None:
        """Drop the far-end levels seen so far (the gate then judges the microphone only against what plays next)."""
        with self._lock:
            self._far_levels.clear()

    def reset(self) -> None:
        with self._lock:
            self._far_levels.clear()
            self._far_framer.clear()
        self._near.clear()
        self._open_for = 0


class ConvergingEchoCanceller:
    """The AEC, with the gate behind it until the AEC has converged.

    Measured through PulseAudio with a real device round trip, AEC3 removes only ~4-13 dB of echo during
    its first second of far-end speech (it is still estimating the echo path), then 30-60 dB. That first
    second is enough for a server VAD to hear the assistant and cut it off. So until `warmup_ms` of
    far-end speech has been fed, the AEC's output also passes the echo gate (the user gets through only by
    being clearly louder than the assistant); after that the AEC works alone, full duplex.
    """

    def __init__(self, aec: EchoCanceller, gate: EchoGate, warmup_ms: int = 1500, active_dbfs: float = -50.0) -> None:
        self.aec = aec
        self.gate = gate
        self.warmup_ms = int(warmup_ms)
        self.active_dbfs = float(active_dbfs)
        self._active_samples = 0
        self._rate = aec.rate if hasattr(aec, "rate") else 24000

    @property
    def name(self) -> str:
        return f"{self.aec.name} (gated while converging)"

    @property
    def converged(self) -> bool:
        return self._active_samples * 1000 >= self.warmup_ms * self._rate

    def feed_far_end(self, pcm16: np.ndarray) -> None:
        self.aec.feed_far_end(pcm16)
        if not self.converged:
            self.gate.feed_far_end(pcm16)
            a = _as_pcm16(pcm16).astype(np.float64)
            if a.size and 10 * np.log10(max(float(np.mean(a * a)), 1e-3) / 32768.0**2) > self.active_dbfs:
                self._active_samples += a.size

    def process_near_end(self, pcm16: np.ndarray) -> np.ndarray:
        out = self.aec.process_near_end(pcm16)
        if not self.converged:
            out = self.gate.process_near_end(out)
        return out

    def set_delay_ms(self, ms: int | None) -> None:
        self.aec.set_delay_ms(ms)

    def rearm(self, ms: int | None = None, *, forget_played: bool = False) -> None:
        """Gate again for `ms` of far-end speech (default: the whole warm-up): after a speaker underrun the
        device inserted silence the far-end reference never saw, the echo path delay shifted, and the AEC
        needs a moment to find it again.

        forget_played: also forget what the gate knows of the audio played so far, so it gates only what
        plays from now on. For a barge-in that cut the speaker: the user is speaking, nothing plays while
        the answer is paused or after it stopped, and the assistant's last words must not keep the gate
        shut against the user's voice for its hold window."""
        ms = self.warmup_ms if ms is None else max(0, min(int(ms), self.warmup_ms))
        target = (self.warmup_ms - ms) * self._rate // 1000
        self._active_samples = min(self._active_samples, target)
        if forget_played:
            self.gate.forget_far_end()

    def reset(self) -> None:
        self.aec.reset()
        self.gate.reset()
        self._active_samples = 0


def available() -> bool:
    """Whether the AEC library is installed (otherwise mode "aec" falls back to the gate)."""
    return EchoCanceller.available()


def make_echo_canceller(mode: str = "aec", rate: int = 24000) -> EchoCanceller | EchoGate | None:
    """The capture path's echo handling for a settings mode.

    "aec": WebRTC AEC3, or the gate (logging why) when the library is missing or fails to start;
    "gate": the gate; "off" / "headset": None (no processing: a headset has no acoustic echo)."""
    mode = (mode or "off").strip().lower()
    if mode in ("off", "headset", "none"):
        return None
    if mode == "gate":
        return EchoGate(rate=rate)
    if mode != "aec":
        raise ValueError(f"unknown echo mode {mode!r}: expected 'aec', 'gate', 'off' or 'headset'")
    if not EchoCanceller.available():
        log.warning("echo cancellation: the 'livekit' package is not installed; using the echo gate "
                    "(half duplex: speak louder than the assistant to interrupt it)")
        return EchoGate(rate=rate)
    try:
        return ConvergingEchoCanceller(EchoCanceller(rate=rate, idle_after_ms=IDLE_AFTER_MS), EchoGate(rate=rate))
    except Exception as exc:  # a broken native library must not stop the microphone
        log.warning("echo cancellation: %s could not start (%s: %s); using the echo gate",
                    EchoCanceller.name, type(exc).__name__, exc)
        return EchoGate(rate=rate)
