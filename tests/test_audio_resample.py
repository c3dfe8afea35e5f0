"""The capture path's streaming resampler hands every block on at once (soxr's default mode held ~34 ms back)."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.audio.resample import live_resampler


@pytest.mark.parametrize("in_rate,out_rate,block", [(44100, 24000, 441), (48000, 24000, 480), (24000, 16000, 480)])
def test_every_block_comes_out_at_once(in_rate: int, out_rate: int, block: int) -> None:
    rs = live_resampler(in_rate, out_rate)
    lengths = [len(rs.resample_chunk(np.zeros(block, dtype=np.float32))) for _ in range(20)]
    expected = block * out_rate / in_rate
    assert all(abs(n - expected) <= 1 for n in lengths[1:]), lengths  # after the first block's ~5 ms
    assert lengths[0] > 0


def test_it_keeps_speech_frequencies_and_removes_what_would_alias() -> None:
    t = np.arange(44100) / 44100

    def level_db(freq: float) -> float:
        rs = live_resampler(44100, 24000)
        x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        y = np.concatenate([rs.resample_chunk(x[i:i + 441]) for i in range(0, len(x), 441)])[2400:-2400]
        return 20 * np.log10(np.sqrt(np.mean(y ** 2)) / (0.5 / np.sqrt(2)))

    assert abs(level_db(1000)) < 0.1 and abs(level_db(8000)) < 0.1
    assert level_db(15000) < -80  # above the 12 kHz Nyquist of 24 kHz: filtered out, not folded to 9 kHz
