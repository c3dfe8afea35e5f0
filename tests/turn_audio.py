"""Helpers for the turn-taking tests: build test utterances from the committed fixtures, run a window on qasync."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from desktop.core.pcm import rms_dbfs
from tests.conftest import AUDIO

RATE = 24000


def load(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def speech(name: str, floor_dbfs: float = -45.0) -> np.ndarray:
    """Only the spoken part of a fixture (first to last 10 ms window above the floor)."""
    pcm = load(name)
    win = RATE // 100
    loud = [i for i in range(0, len(pcm) - win + 1, win) if rms_dbfs(pcm[i:i + win]) > floor_dbfs]
    return pcm[loud[0]:loud[-1] + win]


def quiet(ms: int, seed: int = 0) -> np.ndarray:
    """A faint noise floor (about -70 dBFS), like a real microphone between words."""
    return np.random.default_rng(seed + ms).normal(0, 10, ms * RATE // 1000).astype("<i2")


def ms(pcm: np.ndarray) -> float:
    return len(pcm) * 1000.0 / RATE


def write(path: Path, pcm: np.ndarray) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return str(path)


from tests.waiting import wait_until  # noqa: E402,F401 (re-exported for the turn tests)
