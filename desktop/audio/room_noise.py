"""Simulated background noise mixed into the microphone: try turn detection in a noisy room without one.

A "noisy room" profile is only tuned when there is noise. `RoomNoise` loops a few seconds of noise at a chosen
level (RMS, dBFS) and adds it to each microphone block, before echo cancellation, onsets and VAD, so every part
of Parley and the server hears it as they would hear a real room. Kinds: a fan's rumble (brown noise, energy
falling 6 dB per octave), hiss (pink noise, 3 dB per octave), or a recording of your own (a WAV, looped).
The noise is generated once (seeded, so a run can be repeated) and the loop is crossfaded so it has no click.
"""

from __future__ import annotations

import threading

import numpy as np

from desktop.core.pcm import PROTOCOL_RATE

KINDS = {"fan": "Fan (low rumble)", "hiss": "Hiss (pink noise)", "file": "A recording of your own"}
LOOP_S = 8.0
FADE_S = 0.25


def _shaped_noise(kind: str, seconds: float, seed: int = 11) -> np.ndarray:
    """Gaussian noise whose power falls as 1/f (hiss) or 1/f² (fan), unit RMS, float32."""
    n = int(seconds * PROTOCOL_RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / PROTOCOL_RATE)
    f[0] = f[1]
    spectrum *= (1.0 / np.sqrt(f)) if kind == "hiss" else (1.0 / f)
    spectrum[f < 30.0] = 0.0  # no DC or sub-audible drift
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x * x))).astype(np.float32)


def _seamless(x: np.ndarray) -> np.ndarray:
    """Crossfade the end into the start so that looping it has no click."""
    fade = min(int(FADE_S * PROTOCOL_RATE), len(x) // 4)
    if fade < 2:
        return x
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    head = x[:fade] * ramp + x[-fade:] * (1.0 - ramp)
    return np.concatenate([head, x[fade:-fade]]).astype(np.float32)


class RoomNoise:
    """Adds looped noise at `level_dbfs` (RMS) to int16 blocks. `mix` is called from one thread at a time."""

    def __init__(self, kind: str, level_dbfs: float, path: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown noise {kind!r}; one of {', '.join(KINDS)}")
        if kind == "file":
            from .file_source import read_audio_24k

            if not path:
                raise ValueError("no noise file chosen")
            pcm = read_audio_24k(path, max_seconds=600).astype(np.float32)
            rms = float(np.sqrt(np.mean(pcm * pcm))) if len(pcm) else 0.0
            if len(pcm) < PROTOCOL_RATE or rms < 10.0:  # below -70 dBFS: nothing to loop
                raise ValueError("the noise file is shorter than a second, or silent")
            loop = pcm / rms
        else:
            loop = _shaped_noise(kind, LOOP_S)
        self.kind = kind
        self.path = path
        self.level_dbfs = float(level_dbfs)
        self._loop = _seamless(loop)
        self._gain = np.float32(32768.0 * 10.0 ** (self.level_dbfs / 20.0))
        self._at = 0
        self._lock = threading.Lock()

    def describe(self) -> str:
        name = "your noise" if self.kind == "file" else self.kind
        return f"{name} {self.level_dbfs:.0f} dBFS"

    def mix(self, block: np.ndarray) -> np.ndarray:
        n = len(block)
        with self._lock:
            at = self._at
            idx = (at + np.arange(n)) % len(self._loop)
            self._at = (at + n) % len(self._loop)
        noisy = block.astype(np.float32) + self._loop[idx] * self._gain
        return np.clip(noisy, -32768.0, 32767.0).astype(np.int16)
