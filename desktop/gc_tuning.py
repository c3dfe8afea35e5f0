"""Keeping the garbage collector's pauses away from the audio. No Qt, no audio: process-wide tuning.

A full (generation 2) collection walks every object the collector tracks, with the GIL held. After start-up
that is Qt's wrappers, numpy, the models' arrays and Parley's own modules: ~60,000 objects, and a full
collection took 39 ms in the started app (16-22 ms in a LiveSession without the window). The PortAudio
callbacks and the capture thread need the GIL: a speaker that waits longer than its buffer (40 ms) underruns,
and an underrun shifts the echo path the canceller has learnt. `gc.freeze()` moves everything alive at that
moment into a permanent generation that collections skip; later full collections walk only what was made
since (under 0.01 ms right after). Memory is unchanged: frozen objects are still freed by reference counting
when released; only cycles among them wait.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_startup_objects() -> tuple[int, float]:
    """Collect once, then freeze what is left. Call when start-up is over (session started, window shown).
    Returns (objects frozen, ms the collection took)."""
    t0 = time.perf_counter()
    gc.collect()
    took_ms = (time.perf_counter() - t0) * 1000
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up objects frozen out of the garbage collector: %d (a full collection took %.1f ms)",
             frozen, took_ms)
    return frozen, took_ms
