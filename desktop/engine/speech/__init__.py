"""Speech components of the embedded offline engine: VAD, recognition and synthesis.

Nothing here loads a model at import time or in a constructor; call `load()` (e.g. in a background
thread) or let the first use load it.
"""

from desktop.engine.speech.asr import WhisperRecognizer
from desktop.engine.speech.tts import EspeakSynthesizer, PiperSynthesizer, best_synthesizer, split_sentences
from desktop.audio.silero_vad import SileroSpeechProbability

__all__ = [
    "SileroSpeechProbability",
    "WhisperRecognizer",
    "PiperSynthesizer",
    "EspeakSynthesizer",
    "best_synthesizer",
    "split_sentences",
]
