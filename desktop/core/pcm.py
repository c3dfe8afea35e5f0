"""PCM16 audio as the Realtime protocol carries it: little-endian, mono, 24 kHz, base64 on the wire."""

from __future__ import annotations

import base64
import binascii
import math

import numpy as np

PROTOCOL_RATE = 24000
BYTES_PER_SAMPLE = 2


def samples_to_ms(samples: int, rate: int = PROTOCOL_RATE) -> int:
    return int(samples * 1000 // rate)


def ms_to_samples(ms: float, rate: int = PROTOCOL_RATE) -> int:
    return int(round(ms * rate / 1000))


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16, clipping what lies outside."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def encode_pcm16(pcm: np.ndarray | bytes) -> str:
    """int16 samples (or their bytes) to the base64 text of an `audio` / `delta` field."""
    raw = pcm if isinstance(pcm, (bytes, bytearray)) else np.asarray(pcm, dtype="<i2").tobytes()
    return base64.b64encode(raw).decode("ascii")


class InvalidAudio(ValueError):
    """A base64 audio payload that is not valid base64 PCM16."""


def decode_pcm16(text: str) -> np.ndarray:
    """Base64 text to int16 samples. Raises InvalidAudio on bad base64 or an odd byte count."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidAudio(f"audio is not valid base64: {exc}") from None
    if len(raw) % BYTES_PER_SAMPLE:
        raise InvalidAudio("PCM16 audio must have an even number of bytes")
    return np.frombuffer(raw, dtype="<i2")


def block_levels_dbfs(pcm: np.ndarray, block: int) -> list[float]:
    """`rms_dbfs` of each `block` samples of int16 `pcm` (the last one may be shorter), the whole blocks in one
    numpy pass: a batch of 10 ms blocks costs about what one block does."""
    k = len(pcm) // block
    levels = []
    if k:
        x = pcm[:k * block].astype(np.float64).reshape(k, block)
        power = np.einsum("ij,ij->i", x, x) / (block * 32768.0 * 32768.0)
        levels = [max(-120.0, 10.0 * math.log10(p)) if p > 0 else -120.0 for p in power.tolist()]
    if len(pcm) > k * block:
        levels.append(rms_dbfs(pcm[k * block:]))
    return levels


def rms_dbfs(pcm: np.ndarray, full_scale: float = 32768.0) -> float:
    """Level of a block of samples in dB relative to full scale (-120 for silence): int16 by default, or
    float samples with `full_scale=1.0`."""
    if len(pcm) == 0:
        return -120.0
    x = pcm.astype(np.float64)
    power = float(np.dot(x, x)) / (len(x) * full_scale * full_scale)  # np.dot: a third of np.mean's cost per block
    return max(-120.0, 10.0 * math.log10(power)) if power > 0 else -120.0
