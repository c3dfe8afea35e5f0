"""Acoustic echo cancellation: which library, measured on a synthetic loudspeaker echo path.

    python -m bench.aec_compare          (or ./dev bench aec_compare)

With loudspeakers the assistant's voice comes back through the microphone and would trigger a false
barge-in. This benchmark feeds every installed AEC candidate the same 24 kHz PCM16 signals, 10 ms at a
time, as the capture path would:

* far end: the assistant's speech (Piper fixtures from tests/fixtures/audio/, concatenated to 12 s,
  scaled to -20 dBFS RMS);
* echo: the far end convolved with a synthetic room impulse response (exponentially decaying Gaussian
  noise, RT60 0.3 s) behind a bulk delay of 20, 40 or 60 ms (a device round trip), at -10 dB or 0 dB
  relative to the far end, plus white noise at -65 dBFS;
* near end: the user's speech (espeak-ng fixtures, a different voice) at -20 dBFS RMS, in two
  double-talk sections, and alone (no far end) to see that it passes through.

Per candidate it reports ERLE (echo return loss enhancement: microphone power / output power on
echo-only input, after the first 2 s), the convergence time (the earliest time from which 90 % of the
active 100 ms windows have an ERLE of at least 10 dB), near-end preservation in double talk and alone
(scale-invariant SDR of the output against the clean near-end speech, its gain, and correlation), and CPU
cost per 10 ms frame (far + near processing, including the binding's own conversions) as µs and as % of
one core in real time. Writes bench/results/aec.json and prints a markdown table.

Candidates that are not installed are listed as such; `./dev bench` runs with what .venv has. The
figures in the committed results were measured with every candidate installed in a scratch venv.
"""

from __future__ import annotations

import sys
import time
import wave
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

try:  # shared helpers (bench/_common.py); fall back to local ones when it is not there
    from bench._common import machine_info, summarize, write_result
except ImportError:  # pragma: no cover - only while bench/_common.py does not exist
    import json
    import os
    import platform

    def machine_info() -> dict[str, Any]:
        return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}

    def summarize(samples: list[float], digits: int = 1) -> dict[str, Any]:
        a = np.asarray(samples, dtype=float)
        if a.size == 0:
            return {"median": None, "p95": None, "min": None, "max": None, "n": 0}
        return {"median": round(float(np.median(a)), digits), "p95": round(float(np.percentile(a, 95)), digits),
                "min": round(float(a.min()), digits), "max": round(float(a.max()), digits), "n": int(a.size)}

    def write_result(name: str, report: dict[str, Any]) -> Path:
        report.setdefault("benchmark", name)
        report.setdefault("machine", machine_info())
        path = Path(__file__).resolve().parent / "results" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

RATE = 24000
FRAME = RATE // 100  # 10 ms
AUDIO = ROOT / "tests" / "fixtures" / "audio"
FAR_CLIPS = ["hello_weather.wav", "repeat_after_me.wav", "tell_story.wav", "summarize_page.wav",
             "read_message.wav", "thank_you.wav"]  # Piper voice: the assistant
NEAR_CLIPS = ["stop_talking.wav", "moon_distance.wav"]  # espeak-ng voice: the user
DURATION_S = 12.0
SKIP_S = 2.0  # ERLE is measured after convergence
LEVEL_DBFS = -20.0
NOISE_DBFS = -65.0
RT60_S = 0.3
DOUBLE_TALK_AT_S = (5.0, 9.0)
SPEEX_TAIL_MS = 200  # speex filter length: bulk delay + most of the RT60 tail


# ---------------------------------------------------------------------------------------------------------
# signals

def _load(name: str) -> np.ndarray:
    with wave.open(str(AUDIO / name), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE), name
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * (32768.0 * 10 ** (dbfs / 20) / max(_rms(x), 1e-9))


def far_end() -> np.ndarray:
    x = np.concatenate([_load(n) for n in FAR_CLIPS])
    n = int(DURATION_S * RATE)
    x = np.pad(x, (0, max(0, n - x.size)))[:n]
    return _at_dbfs(x, LEVEL_DBFS)


def near_end_clips() -> list[np.ndarray]:
    return [_at_dbfs(_load(n), LEVEL_DBFS) for n in NEAR_CLIPS]


def room_impulse_response(delay_ms: float, rt60_s: float = RT60_S, seed: int = 7) -> np.ndarray:
    """Bulk delay, then exponentially decaying Gaussian noise (amplitude -60 dB at rt60), unit energy."""
    rng = np.random.default_rng(seed)
    d = int(round(delay_ms * RATE / 1000))
    n = int(rt60_s * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-np.log(1000.0) * t / rt60_s)
    h = np.concatenate([np.zeros(d), tail])
    return h / np.sqrt(np.sum(h * h))


def echo_of(far: np.ndarray, delay_ms: float, level_db: float) -> np.ndarray:
    e = np.convolve(far, room_impulse_response(delay_ms))[: far.size]
    return e * (10 ** (level_db / 20) * _rms(far) / max(_rms(e), 1e-9))


def noise(n: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * 32768.0 * 10 ** (NOISE_DBFS / 20)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------------------
# candidates: each makes a `process(near_frame, far_frame) -> out_frame` for 10 ms int16 frames at 24 kHz

def _livekit(noise_suppression: bool = False) -> Callable[[], Callable]:
    def make():
        from livekit import rtc

        apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=noise_suppression,
                                        high_pass_filter=True, auto_gain_control=False)

        def process(near: np.ndarray, far: np.ndarray) -> np.ndarray:
            apm.process_reverse_stream(rtc.AudioFrame(far.tobytes(), RATE, 1, far.size))
            frame = rtc.AudioFrame(near.tobytes(), RATE, 1, near.size)
            apm.process_stream(frame)
            return np.frombuffer(frame.data, dtype=np.int16).copy()

        return process
    return make


def _pywebrtc():
    import pywebrtc_audio

    ap = pywebrtc_audio.AudioProcessor(sample_rate=RATE, num_channels=1, echo_cancellation=True,
                                       high_pass_filter=True)
    return lambda near, far: ap.process(near, far)


def _speexdsp():
    from speexdsp import EchoCanceller

    ec = EchoCanceller.create(FRAME, SPEEX_TAIL_MS * RATE // 1000, RATE)
    return lambda near, far: np.frombuffer(ec.process(near.tobytes(), far.tobytes()), dtype=np.int16)


def _pyaec():
    import pyaec

    ec = pyaec.Aec(FRAME, SPEEX_TAIL_MS * RATE // 1000, RATE, False)
    return lambda near, far: np.asarray(ec.cancel_echo(near.tolist(), far.tolist()), dtype=np.int16)


def _parley(kind: str):
    def make():
        from desktop.audio import echo_canceller as m

        obj = m.EchoCanceller(rate=RATE) if kind == "aec" else m.EchoGate(rate=RATE)

        def process(near: np.ndarray, far: np.ndarray) -> np.ndarray:
            obj.feed_far_end(far)
            return obj.process_near_end(near)

        return process
    return make


CANDIDATES: list[dict[str, Any]] = [
    {"name": "livekit (WebRTC AEC3)", "package": "livekit", "make": _livekit(False),
     "licence": "Apache-2.0 (bundled WebRTC: BSD-3-Clause)", "install": "wheel (manylinux_2_28, py3-none)",
     "config": "AudioProcessingModule(echo_cancellation, high_pass_filter), 24 kHz native, no delay hint"},
    {"name": "livekit (WebRTC AEC3 + NS)", "package": "livekit", "make": _livekit(True),
     "licence": "Apache-2.0 (bundled WebRTC: BSD-3-Clause)", "install": "wheel (manylinux_2_28, py3-none)",
     "config": "as above plus noise_suppression"},
    {"name": "pywebrtc-audio (WebRTC AEC3)", "package": "pywebrtc_audio", "make": _pywebrtc,
     "licence": "Apache-2.0", "install": "wheel (cp311 manylinux_2_28)",
     "config": "AudioProcessor(echo_cancellation, high_pass_filter), 24 kHz, no delay hint"},
    {"name": "speexdsp (Speex MDF)", "package": "speexdsp", "make": _speexdsp,
     "licence": "BSD (binding) / BSD-3-Clause (libspeexdsp)",
     "install": "sdist only: needs swig, g++ and Debian libspeexdsp-dev; last release 2018",
     "config": f"EchoCanceller.create(240, {SPEEX_TAIL_MS} ms tail, 24000), linear filter only"},
    {"name": "pyaec (aec-rs, Speex MDF)", "package": "pyaec", "make": _pyaec,
     "licence": "not stated in the wheel (no licence field or file)", "install": "wheel (manylinux2014, ctypes)",
     "config": f"Aec(240, {SPEEX_TAIL_MS} ms tail, 24000, preprocess off); lists in and out"},
    {"name": "Parley EchoCanceller (streaming wrapper)", "package": "desktop.audio.echo_canceller",
     "make": _parley("aec"), "licence": "GPL-3.0-or-later (this project)", "install": "-",
     "config": "feed_far_end / process_near_end, 10 ms at a time"},
    {"name": "Parley EchoGate (fallback, not AEC)", "package": "desktop.audio.echo_canceller",
     "make": _parley("gate"), "licence": "GPL-3.0-or-later (this project)", "install": "-",
     "config": "passes the mic only when 10 dB above the recent far-end level"},
]

NOT_INSTALLABLE = [
    {"name": "aec-audio-processing", "result": "no wheel for CPython 3.11 x86_64; the sdist builds WebRTC with "
     "meson and swig, and its build dependencies failed to build here"},
    {"name": "pyspeexaec", "result": "no wheel; the 0.2 sdist does not compile (src/echo_canceller.h and "
     "config.h missing from the archive)"},
]


# ---------------------------------------------------------------------------------------------------------
# measurement

def _run(process: Callable, near: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Feed 10 ms frames; returns the output (same length, whole frames) and per-frame times in µs."""
    n = (near.size // FRAME) * FRAME
    out = np.zeros(n, dtype=np.int16)
    times: list[float] = []
    for i in range(0, n, FRAME):
        nf, ff = near[i:i + FRAME], far[i:i + FRAME]
        t0 = time.perf_counter()
        y = process(nf, ff)
        times.append((time.perf_counter() - t0) * 1e6)
        y = np.asarray(y, dtype=np.int16).reshape(-1)
        out[i:i + y.size] = y[:FRAME]
    return out, times


def _db(num: float, den: float) -> float:
    return round(10 * np.log10(max(num, 1e-12) / max(den, 1e-12)), 1)


def erle_db(mic: np.ndarray, out: np.ndarray, start: int) -> float | None:
    """None when the output is all zeros (a gate that muted everything: no finite ERLE)."""
    m = mic[start:out.size].astype(np.float64)
    o = out[start:].astype(np.float64)
    if not np.any(o):
        return None
    return _db(float(np.sum(m * m)), float(np.sum(o * o)))


def convergence_ms(mic: np.ndarray, out: np.ndarray, echo: np.ndarray, threshold_db: float = 10.0) -> float | None:
    """Earliest time from which >= 90 % of the active 100 ms windows reach `threshold_db` of ERLE."""
    w = RATE // 10
    n = out.size // w
    e = np.array([np.sum(echo[i * w:(i + 1) * w] ** 2) for i in range(n)])
    active = e > 1e-3 * e.max()  # within 30 dB of the loudest window
    ok = np.array([(e is None or e >= threshold_db)
                   for e in (erle_db(mic[i * w:(i + 1) * w], out[i * w:(i + 1) * w], 0) for i in range(n))])
    for i in range(n):
        sel = active[i:]
        if sel.sum() and ok[i:][sel].mean() >= 0.9:
            return float(i * 100)
    return None


def best_lag(out: np.ndarray, ref: np.ndarray, max_lag: int = RATE * 30 // 1000) -> int:
    """Delay of `out` against `ref` in samples (the processing latency), by cross-correlation, 0..max_lag."""
    o = out.astype(np.float64)
    r = ref[: o.size].astype(np.float64)
    n = 1 << int(np.ceil(np.log2(2 * o.size)))
    xc = np.fft.irfft(np.fft.rfft(o, n) * np.conj(np.fft.rfft(r, n)), n)
    return int(np.argmax(xc[: max_lag + 1]))


def _stft_mag(x: np.ndarray) -> np.ndarray:
    w = RATE // 50  # 20 ms Hann, 10 ms hop
    win = np.hanning(w)
    frames = np.lib.stride_tricks.sliding_window_view(x, w)[:: w // 2]
    return np.abs(np.fft.rfft(frames * win, axis=1))


def near_preservation(out: np.ndarray, near: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How much of the clean near-end speech survives in `out`, where `mask` marks it active.

    The output is first aligned to the near end (the library's latency, reported as lag_ms). Then:
    si_sdr_db, the scale-invariant SDR of the waveform; gain_db, the gain of the near-end component;
    corr, the waveform correlation; spec_snr_db, the SNR of STFT magnitudes (20 ms frames: blind to phase,
    closer to what a VAD or recogniser sees)."""
    lag = best_lag(out, near)
    o = out[lag:].astype(np.float64)
    s = near[: o.size].astype(np.float64)
    m = mask[: o.size]
    om, sm = o[m], s[m]
    g = float(np.dot(om, sm) / max(np.dot(sm, sm), 1e-9))
    target = g * sm
    resid = om - target
    corr = float(np.dot(om, sm) / max(np.sqrt(np.dot(om, om) * np.dot(sm, sm)), 1e-9))
    so, ss = _stft_mag(o), _stft_mag(s)
    fm = np.lib.stride_tricks.sliding_window_view(m, RATE // 50)[:: RATE // 100].mean(axis=1) > 0.5
    so, ss = so[fm], ss[fm]
    return {"si_sdr_db": _db(float(np.dot(target, target)), float(np.dot(resid, resid))),
            "spec_snr_db": _db(float(np.sum(ss ** 2)), float(np.sum((so - ss) ** 2))),
            "gain_db": round(20 * np.log10(max(abs(g), 1e-6)), 1), "corr": round(corr, 3),
            "lag_ms": round(lag * 1000 / RATE, 2)}


def measure(cand: dict[str, Any]) -> dict[str, Any]:
    far = far_end()
    far16 = to_pcm16(far)
    nz = noise(far.size)
    res: dict[str, Any] = {"licence": cand["licence"], "install": cand["install"], "config": cand["config"]}
    times: list[float] = []

    echo_only: dict[str, Any] = {}
    for level, delay in [(-10, 40), (0, 20), (0, 40), (0, 60)]:
        echo = echo_of(far, delay, level)
        mic = to_pcm16(echo + nz)
        out, t = _run(cand["make"](), mic, far16)
        times += t[len(t) // 5:]  # steady state
        echo_only[f"{level}dB_{delay}ms"] = {
            "erle_db": erle_db(mic, out, int(SKIP_S * RATE)),
            "convergence_ms": convergence_ms(mic, out, echo),
        }
    res["echo_only"] = echo_only

    # double talk: near end speaks over the far end twice
    clips = near_end_clips()
    near = np.zeros_like(far)
    mask = np.zeros(far.size, dtype=bool)
    for at, clip in zip(DOUBLE_TALK_AT_S, clips):
        a = int(at * RATE)
        near[a:a + clip.size] += clip[: far.size - a]
        mask[a:a + clip.size] = True
    mask &= np.abs(near) > 0  # only where the near end really has signal
    double_talk: dict[str, Any] = {}
    for level in (-10, 0):
        echo = echo_of(far, 40, level)
        mic = to_pcm16(echo + near + nz)
        out, _ = _run(cand["make"](), mic, far16)
        m = mask[: out.size]
        d = near_preservation(out, near, m)
        d["si_sdr_in_db"] = near_preservation(mic[: out.size], near, m)["si_sdr_db"]
        double_talk[f"{level}dB_40ms"] = d
    res["double_talk"] = double_talk

    # near end alone, far end silent
    alone = np.concatenate([np.zeros(RATE // 2)] + [np.concatenate([c, np.zeros(RATE // 4)]) for c in clips])
    mic = to_pcm16(alone + noise(alone.size))
    out, _ = _run(cand["make"](), mic, np.zeros_like(mic))
    m = np.abs(alone[: out.size]) > 0
    res["near_alone"] = near_preservation(out, alone, m)

    s = summarize(times, 1)
    res["cpu_us_per_10ms"] = s
    res["cpu_pct_of_core"] = round(s["median"] / 10000 * 100, 2) if s["median"] is not None else None
    return res


def _installed(package: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| candidate | ERLE -10 dB echo | ERLE 0 dB echo (20/40/60 ms delay) | convergence (0 dB, 40 ms) "
        "| double talk, near end: SI-SDR in → out, spectral SNR, gain (-10 / 0 dB echo) | near end alone: SI-SDR, spectral SNR, gain, latency | CPU per 10 ms | % of a core | licence |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["candidates"].items():
        if not r.get("installed", True):
            lines.append(f"| {name} | not installed | | | | | | | {r.get('licence', '')} |")
            continue
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | | | {r.get('licence', '')} |")
            continue
        eo, dt, na = r["echo_only"], r["double_talk"], r["near_alone"]

        def erle(key: str) -> str:
            e = eo[key]["erle_db"]
            return "∞ (muted)" if e is None else f"{e}"

        conv = eo["0dB_40ms"]["convergence_ms"]
        lines.append(
            f"| {name} | {erle('-10dB_40ms')} dB "
            f"| {erle('0dB_20ms')} / {erle('0dB_40ms')} / {erle('0dB_60ms')} dB "
            f"| {'never' if conv is None else f'{conv:.0f} ms'} "
            f"| {dt['-10dB_40ms']['si_sdr_in_db']} → {dt['-10dB_40ms']['si_sdr_db']}, {dt['-10dB_40ms']['spec_snr_db']}, "
            f"{dt['-10dB_40ms']['gain_db']} dB / {dt['0dB_40ms']['si_sdr_in_db']} → {dt['0dB_40ms']['si_sdr_db']}, "
            f"{dt['0dB_40ms']['spec_snr_db']}, {dt['0dB_40ms']['gain_db']} dB "
            f"| {na['si_sdr_db']}, {na['spec_snr_db']}, {na['gain_db']} dB, {na['lag_ms']} ms "
            f"| {r['cpu_us_per_10ms']['median']} µs (p95 {r['cpu_us_per_10ms']['p95']}) | {r['cpu_pct_of_core']} % "
            f"| {r['licence']} |")
    for c in results["not_installable"]:
        lines.append(f"| {c['name']} | {c['result']} | | | | | | | |")
    return "\n".join(lines)


def run() -> dict:
    cands: dict[str, Any] = {}
    for c in CANDIDATES:
        if not _installed(c["package"]):
            cands[c["name"]] = {"installed": False, "licence": c["licence"], "install": c["install"]}
            continue
        try:
            cands[c["name"]] = {"installed": True} | measure(c)
        except Exception as exc:  # a candidate that breaks is reported, not fatal
            cands[c["name"]] = {"installed": True, "error": f"{type(exc).__name__}: {exc}",
                                "licence": c["licence"], "install": c["install"]}
        print(f"measured {c['name']}", file=sys.stderr)
    results = {
        "signals": {
            "rate_hz": RATE, "frame_ms": 10, "duration_s": DURATION_S, "far_end": FAR_CLIPS, "near_end": NEAR_CLIPS,
            "speech_level_dbfs": LEVEL_DBFS, "noise_dbfs": NOISE_DBFS, "rir": f"exp-decaying Gaussian noise, RT60 {RT60_S} s",
            "echo_levels_db": [-10, 0], "bulk_delays_ms": [20, 40, 60], "erle_skip_s": SKIP_S,
            "double_talk_at_s": list(DOUBLE_TALK_AT_S),
        },
        "units": {"erle_db": "10 log10(mic power / output power), echo-only input, after erle_skip_s",
                  "convergence_ms": "earliest time from which 90 % of active 100 ms windows have ERLE >= 10 dB",
                  "si_sdr_db": "scale-invariant SDR of the output against the clean near-end speech (where it is active)",
                  "si_sdr_in_db": "the same for the microphone signal before processing",
                  "gain_db": "gain of the near-end component in the output",
                  "cpu_us_per_10ms": "far + near processing of one 10 ms frame, microseconds",
                  "cpu_pct_of_core": "median cost / 10 ms"},
        "candidates": cands,
        "not_installable": NOT_INSTALLABLE,
    }
    report = {
        "benchmark": "aec",
        "title": "Acoustic echo cancellation candidates on a synthetic echo path",
        "module": "bench/aec_compare.py",
        "machine": machine_info(),
        "command": "./dev bench aec_compare",
        "results": results,
        "markdown": markdown(results),
    }
    write_result("aec", report)
    return report


if __name__ == "__main__":
    out = run()
    print(out["markdown"])
