"""Wake-phrase detection from the microphone audio with pocketsphinx keyphrase spotting (offline).

Why this detector: the packaged neural wake-word models (pymicro-wakeword) know only "alexa",
"hey jarvis", "hey mycroft" and "okay nabu"; Parley's default phrase is "hey parley". Pocketsphinx spots
any phrase whose words are in its bundled CMU dictionary, with no download. Measured on Piper-voiced
clips (`./dev bench wake_word`, bench/results/wake_word.json): at threshold 1e-20 it caught 15 of 15
"hey parley" clips (12 of 15 when a clip starts right at the phrase) with 0 false triggers on the 17 other
speech/noise fixtures (1e-25 fires on "Hello Parley"), costing ~0.34 ms of CPU per 10 ms of audio.

Audio arrives as int16 at 24 kHz; it is resampled to 16 kHz with a streaming soxr resampler.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .audio.resample import live_resampler
from .core.pcm import PROTOCOL_RATE

log = logging.getLogger(__name__)

DETECTOR_NAME = "pocketsphinx keyphrase spotting (offline)"
DEFAULT_THRESHOLD = 1e-20
_RATE = 16000
_FRAMES_PER_S = 100  # pocketsphinx frame rate


class WakeWordUnavailable(RuntimeError):
    pass


def _dictionary_words() -> set[str]:
    from pocketsphinx import get_model_path

    path = os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict")
    with open(path, encoding="utf-8") as f:
        return {line.split(" ", 1)[0].split("(")[0] for line in f if line.strip()}


def unknown_words(phrase: str) -> list[str]:
    """Words of `phrase` pocketsphinx cannot spot (not in its dictionary)."""
    words = _dictionary_words()
    return [w for w in phrase.lower().split() if w not in words]


class PocketSphinxWakeWord:
    """Streaming keyphrase spotter. `feed(pcm24)` returns the input-clock ms where each detected phrase ended."""

    name = DETECTOR_NAME

    def __init__(self, phrase: str = "hey parley", threshold: float = DEFAULT_THRESHOLD) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise WakeWordUnavailable(f"pocketsphinx is not installed ({exc})") from None
        phrase = " ".join(phrase.lower().split())
        missing = unknown_words(phrase)
        if missing:
            raise WakeWordUnavailable(
                f'The wake phrase "{phrase}" has words the offline spotter does not know: {", ".join(missing)}.'
            )
        self.phrase = phrase
        self._decoder = Decoder(keyphrase=phrase, kws_threshold=threshold, lm=None, loglevel="FATAL")
        self._resampler = live_resampler(PROTOCOL_RATE, _RATE)
        self._decoder.start_utt()
        self._utt_start_ms = 0.0  # input-clock ms at which the current utterance began
        self._samples16 = 0

    def feed(self, pcm16: np.ndarray) -> list[float]:
        x = self._resampler.resample_chunk(np.asarray(pcm16, dtype=np.float32) * np.float32(1 / 32768))
        if not x.size:
            return []
        raw = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
        hits: list[float] = []
        step = _RATE // 100
        for i in range(0, len(raw), step):
            block = raw[i:i + step]
            self._decoder.process_raw(block.tobytes(), False, False)
            self._samples16 += len(block)
            if self._decoder.hyp() is not None:
                end_ms = self._samples16 * 1000.0 / _RATE
                for seg in self._decoder.seg():
                    end_ms = self._utt_start_ms + (seg.end_frame + 1) * 1000.0 / _FRAMES_PER_S
                hits.append(end_ms)
                log.info('wake phrase "%s" ended at %.0f ms (heard at %.0f ms)', self.phrase, end_ms,
                         self._samples16 * 1000.0 / _RATE)
                self._decoder.end_utt()
                self._decoder.start_utt()
                self._utt_start_ms = self._samples16 * 1000.0 / _RATE
        return hits
