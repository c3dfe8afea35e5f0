"""Silero VAD's network in numpy against the same model file run by ONNX Runtime (installed for Piper's voice),
on real speech, frame by frame with the recurrent state carried over."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.audio import read_wav_24k
from desktop.audio.resample import live_resampler
from desktop.audio.silero_net import ModelFormatError, SileroNet, read_branch_constants
from desktop.audio.silero_vad import SileroSpeechProbability, model_path
from tests.conftest import AUDIO


def _frames_16k(name: str) -> np.ndarray:
    pcm = read_wav_24k(AUDIO / name).astype(np.float32) / 32768.0
    x = live_resampler(24000, 16000).resample_chunk(np.concatenate([pcm, np.zeros(8000, np.float32)]))
    n = len(x) // 512
    return x[: n * 512].reshape(n, 512)


def _onnxruntime_probabilities(frames: np.ndarray) -> list[float]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    row = np.zeros((1, 576), np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    out = []
    for frame in frames:
        row[0, :64] = row[0, -64:]
        row[0, 64:] = frame
        prob, state = session.run(None, {"input": row, "state": state, "sr": np.array(16000, np.int64)})
        out.append(float(prob.reshape(-1)[0]))
    return out


@pytest.mark.parametrize("clip", ["stop_talking.wav", "cough_click.wav", "what_time.wav"])
def test_numpy_network_gives_onnxruntimes_probabilities(clip):
    frames = _frames_16k(clip)
    expected = _onnxruntime_probabilities(frames)
    net = SileroNet(read_branch_constants(model_path()))
    row = np.zeros(576, np.float32)
    state = np.zeros((2, 128), np.float32)
    got = []
    for frame in frames:
        row[:64] = row[-64:]
        row[64:] = frame
        prob, state = net(row, state)
        got.append(prob)
    assert len(got) == len(expected) > 20
    assert np.max(np.abs(np.subtract(got, expected))) < 1e-4
    if clip != "cough_click.wav":  # speech is found, and the state matters (a fresh state gives other values)
        assert max(got) > 0.9
        fresh = [net(np.concatenate([np.zeros(64, np.float32), f]), np.zeros((2, 128), np.float32))[0] for f in frames]
        assert np.max(np.abs(np.subtract(fresh, expected))) > 0.1
    else:
        assert max(got) < 0.5


def test_streaming_class_splits_blocks_the_same_however_they_arrive():
    pcm = read_wav_24k(AUDIO / "hello_weather.wav")
    whole = SileroSpeechProbability().process(pcm)
    vad = SileroSpeechProbability()
    pieces = [p for i in range(0, len(pcm), 480) for p in vad.process(pcm[i:i + 480])]
    assert len(whole) == len(pieces) > 30
    assert np.max(np.abs(np.subtract(whole, pieces))) < 1e-5
    vad.reset()
    assert np.max(np.abs(np.subtract(vad.process(pcm), whole))) < 1e-5


def test_a_model_file_that_is_not_silero_is_refused_clearly(tmp_path):
    bad = tmp_path / "silero_vad.onnx"
    bad.write_bytes(b"\x3a\x05hello" + bytes(range(40)))
    with pytest.raises(ModelFormatError):
        SileroNet(read_branch_constants(bad))
    with pytest.raises(ModelFormatError):
        SileroNet({"stft.forward_basis_buffer": np.zeros((2, 1, 2), np.float32)})
    whole = model_path().read_bytes()
    for cut in (len(whole) // 3, len(whole) * 2 // 3, len(whole) - 7):  # a download that stopped short
        (tmp_path / "cut.onnx").write_bytes(whole[:cut])
        with pytest.raises(ModelFormatError):
            SileroNet(read_branch_constants(tmp_path / "cut.onnx"))
