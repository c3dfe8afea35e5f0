"""Wake phrase "hey parley": which offline detector can find it, at which threshold, at what cost.

Positives: "Hey Parley" said by the Piper joe voice at five length/noise settings, in three sentences
(15 clips, synthesized here, nothing downloaded). Negatives: every committed speech/noise fixture in
tests/fixtures/audio except the wake clip (16 utterances, a click, 2 s of near-silence); "Hello Parley,
what is the weather like today?" among them is a hard near-miss. Audio is fed in 20 ms chunks, as the app
does. The packaged neural wake-word models (pymicro-wakeword) have no "hey parley", so pocketsphinx keyphrase
spotting is the candidate; the chosen threshold is `desktop.wake_word.DEFAULT_THRESHOLD`.

    ./dev bench wake_word      (or: .venv/bin/python -m bench wake_word)
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np

from bench._common import machine_info, summarize, write_result

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ROOT / "tests" / "fixtures" / "audio"
THRESHOLDS = (1e-30, 1e-25, 1e-20, 1e-15, 1e-10)
SENTENCES = ("Hey Parley, what time is it?", "Hey Parley. Set a timer.", "Hey Parley.")
VOICES = ((None, None, None), (0.9, 0.8, 0.9), (1.1, 0.5, 0.6), (1.2, 0.667, 0.8), (1.0, 0.9, 1.0))


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _positives() -> list[np.ndarray]:
    from desktop.engine.speech.tts import PiperSynthesizer

    clips = []
    for text in SENTENCES:
        for ls, ns, nw in VOICES:
            synth = PiperSynthesizer(length_scale=ls, noise_scale=ns, noise_w_scale=nw)
            pcm = np.concatenate([p for _s, p in synth.synthesize(text)])
            clips.append(np.concatenate([np.zeros(4800, np.int16), pcm, np.zeros(12000, np.int16)]))
    return clips


def _hits(pcm: np.ndarray, threshold: float) -> tuple[int, float]:
    from desktop.wake_word import PocketSphinxWakeWord

    spotter = PocketSphinxWakeWord("hey parley", threshold=threshold)
    hits = 0
    t0 = time.process_time()
    for i in range(0, len(pcm), 480):
        hits += len(spotter.feed(pcm[i:i + 480]))
    return hits, (time.process_time() - t0) / (len(pcm) / 24000) * 10  # CPU ms per 10 ms of audio


def run() -> dict:
    positives = _positives()
    negatives = {p.name: _read(p) for p in sorted(AUDIO.glob("*.wav")) if p.name != "hey_parley.wav"}
    rows = []
    cost: list[float] = []
    for thr in THRESHOLDS:
        caught = 0
        for pcm in positives:
            n, c = _hits(pcm, thr)
            caught += n > 0
            cost.append(c)
        false = {name: _hits(pcm, thr)[0] for name, pcm in negatives.items()}
        rows.append({"threshold": thr, "caught": caught, "positives": len(positives),
                     "false_triggers": sum(false.values()), "negatives": len(negatives),
                     "false_trigger_clips": sorted(k for k, v in false.items() if v)})
    from desktop.wake_word import DEFAULT_THRESHOLD

    results = {
        "units": {"cpu_ms_per_10ms": "milliseconds of CPU time per 10 ms of audio (one core)"},
        "detector": "pocketsphinx keyphrase spotting",
        "chosen_threshold": DEFAULT_THRESHOLD,
        "thresholds": rows,
        "cpu_ms_per_10ms": summarize(cost, 3),
    }
    lines = [
        "| kws threshold | caught (of 15) | false triggers (17 clips) | on |",
        "|---|---|---|---|",
    ]
    for r in rows:
        mark = " ← chosen" if r["threshold"] == DEFAULT_THRESHOLD else ""
        lines.append(f"| {r['threshold']:g}{mark} | {r['caught']} | {r['false_triggers']} | {', '.join(r['false_trigger_clips']) or '—'} |")
    lines.append("")
    lines.append(f"CPU: median {results['cpu_ms_per_10ms']['median']} ms per 10 ms of audio "
                 f"(p95 {results['cpu_ms_per_10ms']['p95']}).")
    report = {
        "benchmark": "wake_word",
        "title": "Wake phrase \"hey parley\": pocketsphinx keyphrase spotting",
        "module": "bench/wake_word.py",
        "command": "./dev bench wake_word",
        "machine": machine_info(),
        "results": results,
        "markdown": "\n".join(lines),
    }
    write_result("wake_word", report)
    return report


if __name__ == "__main__":
    print(run()["markdown"])
