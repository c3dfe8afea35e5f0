"""Measurement probes for bench/barge_in.py, attached from outside the app's code.

* `ThreadCpu`: CPU time of one thread, read from another (POSIX per-thread CPU clock, ns resolution).
* `instrument_capture()`: a MicrophoneCapture / SpeakerOutput subclass pair that notes which OS threads run
  their PortAudio callbacks, installed into desktop.session for the duration of a `with` block.
* `LoopShare`: wraps a LiveSession's per-chunk handler and the transport's socket send with
  `time.thread_time()` so the event loop's share of the capture path is counted apart from the rest of
  what the loop does.
* `ActionLog`: every action a LiveSession carries out (DuckPlayback, PausePlayback, StopPlayback, …),
  with its time, by wrapping the session's `_apply`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import numpy as np


class ThreadCpu:
    """CPU seconds of a thread given its pthread id (threading.get_ident() inside that thread)."""

    def __init__(self, ident: int) -> None:
        self.clock = time.pthread_getcpuclockid(ident)

    def seconds(self) -> float:
        return time.clock_gettime(self.clock)


def task_cpu_seconds(tid: int) -> float | None:
    """utime + stime of an OS thread of this process from /proc (10 ms ticks); None when it is gone."""
    try:
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def task_names() -> dict[int, str]:
    names = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as f:
                names[int(tid)] = f.read().strip()
        except OSError:
            continue
    return names


class CallbackThreads:
    """Which threads ran the capture and playback callbacks (pthread ident and OS thread id)."""

    def __init__(self) -> None:
        self.capture: tuple[int, int] | None = None
        self.playback: tuple[int, int] | None = None
        self.capture_blocks = 0
        self.capture_frames = 0


@contextlib.contextmanager
def instrument_capture():
    """Within the block, LiveSession opens instrumented microphone/speaker classes. Yields CallbackThreads."""
    import desktop.session as session_module
    from desktop.audio import MicrophoneCapture, SpeakerOutput

    seen = CallbackThreads()

    class ProbedCapture(MicrophoneCapture):
        def _callback(self, indata, frames, time_info, status) -> None:
            if seen.capture is None:
                seen.capture = (threading.get_ident(), threading.get_native_id())
            seen.capture_blocks += 1
            seen.capture_frames += frames
            super()._callback(indata, frames, time_info, status)

    class ProbedSpeaker(SpeakerOutput):
        def _callback(self, outdata, frames, time_info, status) -> None:
            if seen.playback is None:
                seen.playback = (threading.get_ident(), threading.get_native_id())
            super()._callback(outdata, frames, time_info, status)

    saved = session_module.MicrophoneCapture, session_module.SpeakerOutput
    session_module.MicrophoneCapture, session_module.SpeakerOutput = ProbedCapture, ProbedSpeaker
    try:
        yield seen
    finally:
        session_module.MicrophoneCapture, session_module.SpeakerOutput = saved


class LoopShare:
    """Event-loop CPU spent on microphone chunks (level, local VAD, encode, JSON) and on sending them."""

    def __init__(self, session) -> None:
        self.session = session
        self.chunk_cpu = 0.0
        self.chunks = 0
        self.send_cpu = 0.0
        self.sends = 0
        self.active = False
        handler = session._on_input_chunk

        def timed_chunk(chunk: np.ndarray, *rest) -> None:
            t0 = time.thread_time()
            handler(chunk, *rest)
            if self.active:
                self.chunk_cpu += time.thread_time() - t0
                self.chunks += 1

        session._on_input_chunk = timed_chunk  # looked up per chunk by the capture's delivery closure
        self._wrapped_transport = None

    def wrap_transport(self) -> None:
        transport = self.session.transport
        if transport is None or transport is self._wrapped_transport:
            return
        send = transport._send

        async def timed_send(ws, text: str) -> None:
            t0 = time.thread_time()
            await send(ws, text)
            if self.active:
                self.send_cpu += time.thread_time() - t0
                self.sends += 1

        transport._send = timed_send
        self._wrapped_transport = transport


class ActionLog:
    """(time.monotonic(), action) for every action the session carries out."""

    def __init__(self, session) -> None:
        self.entries: list[tuple[float, Any]] = []
        apply = session._apply

        def logged(actions) -> None:
            now = time.monotonic()
            for action in actions:
                self.entries.append((now, action))
            apply(actions)

        session._apply = logged  # the session calls self._apply, so this sees nested calls too

    def since(self, t0: float, kind: type) -> list[Any]:
        return [a for t, a in self.entries if t >= t0 and isinstance(a, kind)]
