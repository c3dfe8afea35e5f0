"""Latency of the walking skeleton: launch to a connected window, and end of speech to the first answer audio.

    ./dev bench latency          (or python -m bench latency)

1. **Launch to connected window.** The real app, `python -m desktop.ui.app --quit-after 0.5 --no-speaker`
   on the offscreen Qt platform, is started LAUNCH_RUNS times (after one unmeasured warm-up launch that fills
   the file cache). Two figures per launch: the app's own log line "connected window N ms after launch"
   (measured inside main(), from argument parsing to the WebSocket to the freshly started engine being open),
   and the time from our subprocess spawn to that line appearing on the app's stderr (adds interpreter start
   and imports).
2. **End of speech to first answer audio.** `LiveSession` (no window) plays WAV fixtures in real time into
   the embedded engine over a real WebSocket on 127.0.0.1 and queues the answer into a device-less playback
   clock. Two figures per turn:
   - *as the session reports it*: its `Timing("speech_end_to_first_audio")`, from the client's receipt of
     `input_audio_buffer.speech_stopped` to the first `response.output_audio.delta` queued for playback;
   - *from the audio itself*: from the end of speech in the fixture (the last sample above -40 dBFS), mapped
     to the wall clock through the real-time-paced file source's start time, to that same first queued audio.
     This includes the server VAD's silence wait (`silence_duration_ms`, 500 ms by default).
   The breakdown splits the true figure at the client's receipt of `speech_stopped` (VAD silence wait) and of
   `conversation.item.input_audio_transcription.completed` (recognition), the rest being the responder and the
   speech synthesis of the first sentence up to its first audio delta (plus the client queuing it).
   The first turn of a fresh engine (its models still loading in the background) is reported apart from
   warm turns: for each of COLD_FIXTURES a session starts its own engine and speaks its first turn, then
   each of WARM_FIXTURES is spoken in a new session against that engine (so cold and warm turns are
   interleaved in time and share the machine's load drift).
Nothing here includes the sound device's output latency: playback goes to a clock, not to a speaker.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine_info, summarize, write_result  # noqa: E402

AUDIO = ROOT / "tests" / "fixtures" / "audio"

LAUNCH_RUNS = 5
APP_ARGS = ["-m", "desktop.ui.app", "--quit-after", "0.5", "--no-speaker", "--log-level", "info"]
CONNECTED_RE = re.compile(r"connected window (\d+(?:\.\d+)?) ms after launch")

COLD_FIXTURES = ["what_time.wav", "thank_you.wav", "hello_weather.wav"]
WARM_FIXTURES = ["what_time.wav", "hello_weather.wav", "repeat_after_me.wav", "seven_times_eight.wav", "moon_distance.wav"]
SPEECH_END_DBFS = -40.0
TURN_TIMEOUT_S = 40.0

_TYPE_RE = re.compile(r'\{\s*"type"\s*:\s*"([^"]+)"')
_MARKED = {
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "conversation.item.input_audio_transcription.completed",
    "response.created",
    "response.output_audio.delta",
    "response.done",
}


# ---------------------------------------------------------------------------------------------- launch
def _launch_once(timeout: float = 90.0) -> dict[str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    env.pop("OPENAI_API_KEY", None)  # always the embedded engine
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *APP_ARGS],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    spawn_ms = inside_ms = None
    tail: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if inside_ms is None:
                m = CONNECTED_RE.search(line)
                if m:
                    spawn_ms = (time.perf_counter() - t0) * 1000
                    inside_ms = float(m.group(1))
            tail = (tail + [line.rstrip()])[-5:]
        rc = proc.wait()
        exit_ms = (time.perf_counter() - t0) * 1000
    finally:
        killer.cancel()
    if inside_ms is None or rc != 0:
        raise RuntimeError(f"the app did not report a connected window (exit {rc}): " + " | ".join(tail))
    return {"spawn_to_connected_ms": spawn_ms, "in_app_connected_ms": inside_ms, "spawn_to_exit_ms": exit_ms}


def _launch() -> dict[str, Any]:
    warmup = _launch_once()
    runs = [_launch_once() for _ in range(LAUNCH_RUNS)]
    spawn = [r["spawn_to_connected_ms"] for r in runs]
    inside = [r["in_app_connected_ms"] for r in runs]
    return {
        "command": "QT_QPA_PLATFORM=offscreen .venv/bin/python " + " ".join(APP_ARGS),
        "spawn_to_connected_ms": summarize(spawn),
        "in_app_connected_ms": summarize(inside),
        "interpreter_and_imports_ms": summarize([s - i for s, i in zip(spawn, inside)]),
        "spawn_to_exit_ms": summarize([r["spawn_to_exit_ms"] for r in runs]),
        "warmup_launch_ms": {k: round(v, 1) for k, v in warmup.items()},
        "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
    }


# ---------------------------------------------------------------------------------------------- turns
def speech_end_s(path: Path, dbfs: float = SPEECH_END_DBFS) -> float:
    """Seconds from the start of the file to just after its last sample above `dbfs` (24 kHz, as played)."""
    from desktop.audio import read_wav_24k
    from desktop.core.pcm import PROTOCOL_RATE

    pcm = read_wav_24k(path).astype(np.float64)
    loud = np.nonzero(np.abs(pcm) > 32768.0 * 10 ** (dbfs / 20))[0]
    if len(loud) == 0:
        raise ValueError(f"{path.name}: no sample above {dbfs} dBFS")
    return (int(loud[-1]) + 1) / PROTOCOL_RATE


def _instrumented_classes():
    from desktop.audio import WavFileSource
    from desktop.core.pcm import PROTOCOL_RATE
    from desktop.session import LiveSession

    class TimedSource(WavFileSource):
        """The session's WAV source, noting when each chunk is handed over (to find its start on our clock)."""

        def __init__(self, path, on_chunk, chunk_ms: int = 20, trailing_silence_s: float | None = 5.0) -> None:
            self.deliveries: list[float] = []
            deliveries = self.deliveries

            def tap(chunk: np.ndarray) -> None:
                deliveries.append(time.perf_counter())
                on_chunk(chunk)

            # 5 s of silence after the file (the app sends silence for ever): far more than a turn needs,
            # and a finished session kept open to hold its engine then stops loading the machine.
            super().__init__(path, tap, chunk_ms=chunk_ms, trailing_silence_s=trailing_silence_s)

        def start_time(self) -> float:
            """perf_counter() at which the file started "playing": chunk k is due (k + 1) periods later."""
            period = self.chunk_samples / PROTOCOL_RATE
            return min(t - (k + 1) * period for k, t in enumerate(self.deliveries[:500]))

    class TimedSession(LiveSession):
        """LiveSession noting when the server events of a turn arrive (first of each kind)."""

        def __init__(self, options) -> None:
            super().__init__(options)
            self.arrivals: dict[str, float] = {}
            self.counts: dict[str, int] = {}
            self.speech_stopped: dict[str, Any] | None = None
            self.first_queued: float | None = None
            self.output_taps.append(self._tap)

        def _tap(self, item_id: str, pcm: np.ndarray) -> None:
            if self.first_queued is None:
                self.first_queued = time.perf_counter()

        def _on_message(self, text: str) -> None:
            now = time.perf_counter()
            m = _TYPE_RE.match(text)
            if m and m.group(1) in _MARKED:
                kind = m.group(1)
                self.arrivals.setdefault(kind, now)
                self.counts[kind] = self.counts.get(kind, 0) + 1
                if kind == "input_audio_buffer.speech_stopped" and self.speech_stopped is None:
                    self.speech_stopped = json.loads(text)
            super()._on_message(text)

    return TimedSource, TimedSession


async def _turn(fixture: str, provider, keep_open: bool = False) -> tuple[dict[str, Any], Any]:
    """One spoken turn in a new session; returns its figures (and the session if `keep_open`)."""
    import desktop.session as session_module
    from desktop.session import SessionOptions, Timing

    TimedSource, TimedSession = _instrumented_classes()
    path = AUDIO / fixture
    session = TimedSession(SessionOptions(provider, audio_in=str(path), use_speaker=False))
    timings: list[float] = []
    session.subscribe(lambda n: timings.append(n.seconds) if isinstance(n, Timing) and n.name == "speech_end_to_first_audio" else None)
    original = session_module.WavFileSource
    session_module.WavFileSource = TimedSource  # the session builds its file source from this name
    try:
        t_start = time.perf_counter()
        started = await session.start()
    finally:
        session_module.WavFileSource = original
    if not started:
        await session.stop()
        raise RuntimeError(f"session did not start: {session.status}")
    source = session._source
    ok = False
    try:
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while time.monotonic() < deadline:
            a = session.arrivals
            if "response.done" in a and "conversation.item.input_audio_transcription.completed" in a and timings:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"{fixture}: no complete turn within {TURN_TIMEOUT_S} s (got {sorted(session.arrivals)})")
        ok = True
    finally:
        if not (keep_open and ok):
            await session.stop()
    assert isinstance(source, TimedSource) and session.first_queued is not None
    a = session.arrivals
    t_speech_end = source.start_time() + speech_end_s(path)
    t_stopped = a["input_audio_buffer.speech_stopped"]
    t_transcript = a["conversation.item.input_audio_transcription.completed"]
    t_delta = a["response.output_audio.delta"]
    ms = lambda seconds: round(seconds * 1000, 1)  # noqa: E731
    vad_end_ms = session.speech_stopped.get("audio_end_ms") if session.speech_stopped else None
    figures = {
        "fixture": fixture,
        "session_ms": ms(timings[0]),
        "true_ms": ms(session.first_queued - t_speech_end),
        "vad_wait_ms": ms(t_stopped - t_speech_end),
        "recognition_ms": ms(t_transcript - t_stopped),
        "respond_and_synthesis_ms": ms(t_delta - t_transcript),
        "client_queue_ms": ms(session.first_queued - t_delta),
        "connect_to_file_start_ms": ms(source.start_time() - t_start),
        # where the server's VAD put the end of speech, against the energy end of the file (stream ms)
        "vad_end_minus_energy_end_ms": None if vad_end_ms is None else round(vad_end_ms - 1000 * speech_end_s(path), 1),
        "speech_segments": session.counts.get("input_audio_buffer.speech_stopped", 0),
    }
    return figures, (session if keep_open else None)


class _RecognitionBaseline:
    """The engine's recogniser (same class, same defaults) in this process, timed right after each turn.

    The machine is shared and noisy: the ratio of the engine's recognition time to this one, measured
    moments apart under the same load, says how much the engine path itself adds.
    """

    def __init__(self) -> None:
        from desktop.engine.speech import WhisperRecognizer

        self.asr = WhisperRecognizer()
        self.asr.load()
        self.asr.transcribe(np.zeros(12000, dtype=np.int16))  # one-off costs, as the engine pays at start-up

    def time_ms(self, path: Path) -> float:
        from desktop.audio import read_wav_24k

        pcm = read_wav_24k(path)
        t = time.perf_counter()
        self.asr.transcribe(pcm)
        return round((time.perf_counter() - t) * 1000, 1)


async def _turns() -> dict[str, Any]:
    from desktop.providers import choose_provider

    baseline = await asyncio.get_running_loop().run_in_executor(None, _RecognitionBaseline)

    def add_baseline(figures: dict[str, Any]) -> dict[str, Any]:
        figures["recognition_in_process_ms"] = baseline.time_ms(AUDIO / figures["fixture"])
        figures["recognition_ratio"] = round(figures["recognition_ms"] / figures["recognition_in_process_ms"], 2)
        return figures

    # Interleaved, so that the load of a shared machine drifts over cold and warm turns alike: each round
    # starts a fresh engine with a cold turn (the session starts the engine, as the app does), then runs
    # the warm turns as new sessions against that engine, then stops it.
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    for cold_fixture in COLD_FIXTURES:
        figures, holder = await _turn(cold_fixture, choose_provider(environ={}), keep_open=True)
        try:
            cold.append(add_baseline(figures))
            assert holder.engine is not None
            provider = choose_provider(url=holder.engine.url, environ={})
            for fixture in WARM_FIXTURES:
                figures, _ = await _turn(fixture, provider)
                warm.append(add_baseline(figures))
        finally:
            await holder.stop()
    return {"cold": cold, "warm": warm}


def _summaries(turns: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["session_ms", "true_ms", "vad_wait_ms", "recognition_ms", "respond_and_synthesis_ms", "client_queue_ms",
            "vad_end_minus_energy_end_ms", "recognition_in_process_ms"]
    out = {k: summarize([t[k] for t in turns if t.get(k) is not None]) for k in keys}
    out["recognition_ratio"] = summarize([t["recognition_ratio"] for t in turns], digits=2)
    return out


def _speech(turns: dict[str, Any]) -> dict[str, Any]:
    warm, cold = _summaries(turns["warm"]), _summaries(turns["cold"])
    return {
        "fixtures_warm": WARM_FIXTURES,
        "fixtures_cold": COLD_FIXTURES,
        "speech_end_dbfs": SPEECH_END_DBFS,
        "silence_duration_ms": _default_silence_ms(),
        "warm": {
            "speech_stopped_to_first_audio_ms": warm["session_ms"],
            "speech_end_to_first_audio_ms": warm["true_ms"],
            "breakdown": {
                "vad_silence_wait_ms": warm["vad_wait_ms"],
                "recognition_ms": warm["recognition_ms"],
                "respond_and_synthesis_ms": warm["respond_and_synthesis_ms"],
                "client_queue_ms": warm["client_queue_ms"],
            },
            "vad_end_minus_energy_end_ms": warm["vad_end_minus_energy_end_ms"],
            "recognition_in_process_baseline_ms": warm["recognition_in_process_ms"],
            "recognition_engine_over_in_process_ratio": warm["recognition_ratio"],
        },
        "cold": {
            "speech_stopped_to_first_audio_ms": cold["session_ms"],
            "speech_end_to_first_audio_ms": cold["true_ms"],
            "breakdown": {
                "vad_silence_wait_ms": cold["vad_wait_ms"],
                "recognition_ms": cold["recognition_ms"],
                "respond_and_synthesis_ms": cold["respond_and_synthesis_ms"],
                "client_queue_ms": cold["client_queue_ms"],
            },
            "recognition_in_process_baseline_ms": cold["recognition_in_process_ms"],
            "recognition_engine_over_in_process_ratio": cold["recognition_ratio"],
        },
        "turns": turns,
    }


def _default_silence_ms() -> int | None:
    try:
        from desktop.core.session_config import SessionConfig

        return int(SessionConfig().turn_detection.silence_duration_ms)
    except Exception:  # noqa: BLE001 - informational only
        return None


# ---------------------------------------------------------------------------------------------- report
def _mp(s: dict[str, Any], unit: str = " ms", fmt: str = ".0f") -> str:
    return f"{s['median']:{fmt}} / {s['p95']:{fmt}}{unit}" if s.get("n") else "–"


def markdown(results: dict[str, Any]) -> str:
    launch, speech = results["launch"], results["speech"]
    warm, cold = speech["warm"], speech["cold"]
    nw, nc = warm["speech_end_to_first_audio_ms"]["n"], cold["speech_end_to_first_audio_ms"]["n"]
    wb, cb = warm["breakdown"], cold["breakdown"]
    n = launch["spawn_to_connected_ms"]["n"]
    rows = [
        f"| launch to connected window ({n} launches) | median / p95 |",
        "|---|---|",
        f"| **from our spawn of the process** (interpreter, imports, Qt, window, engine start, WebSocket) | **{_mp(launch['spawn_to_connected_ms'])}** |",
        f"| as the app logs it (\"connected window N ms after launch\", measured inside main()) | {_mp(launch['in_app_connected_ms'])} |",
        f"| difference: interpreter start and imports before main() | {_mp(launch['interpreter_and_imports_ms'])} |",
        "",
        f"| end of speech to first answer audio: median / p95 | warm engine ({nw} turns) | cold engine, first turn ({nc} turns) |",
        "|---|---|---|",
        f"| **from the end of speech in the audio** (last sample above {speech['speech_end_dbfs']:.0f} dBFS) | **{_mp(warm['speech_end_to_first_audio_ms'])}** | **{_mp(cold['speech_end_to_first_audio_ms'])}** |",
        f"| … VAD silence wait (to the client's receipt of `speech_stopped`) | {_mp(wb['vad_silence_wait_ms'])} | {_mp(cb['vad_silence_wait_ms'])} |",
        f"| … recognition (`speech_stopped` → transcription completed) | {_mp(wb['recognition_ms'])} | {_mp(cb['recognition_ms'])} |",
        f"| … responder and first-sentence synthesis (→ first `output_audio.delta`) | {_mp(wb['respond_and_synthesis_ms'])} | {_mp(cb['respond_and_synthesis_ms'])} |",
        f"| … client decode and queue for playback | {_mp(wb['client_queue_ms'])} | {_mp(cb['client_queue_ms'])} |",
        f"| as the session reports it (`Timing`, from the client's receipt of `speech_stopped`) | {_mp(warm['speech_stopped_to_first_audio_ms'])} | {_mp(cold['speech_stopped_to_first_audio_ms'])} |",
        f"| baseline: same recogniser, same clip, in the benchmark process right after the turn | {_mp(warm['recognition_in_process_baseline_ms'])} | {_mp(cold['recognition_in_process_baseline_ms'])} |",
        f"| engine recognition ÷ that baseline, per turn | {_mp(warm['recognition_engine_over_in_process_ratio'], '', '.2f')} | {_mp(cold['recognition_engine_over_in_process_ratio'], '', '.2f')} |",
    ]
    return "\n".join(rows)


def notes(results: dict[str, Any]) -> str:
    launch, speech = results["launch"], results["speech"]
    silence = speech.get("silence_duration_ms")
    return f"""\
The walking skeleton's two user-visible latencies, over the embedded offline engine on 127.0.0.1.

- **Launch:** the real app (`{launch['command']}`), {launch['spawn_to_connected_ms']['n']} launches after one unmeasured
  warm-up launch. "Connected" means the window is shown, the engine child process is listening and the
  WebSocket to it is open; the engine's speech models are still loading in the background then (a turn that
  needs them waits).
- **Speech:** `LiveSession` without a window plays a fixture from `tests/fixtures/audio/` in real time as the
  microphone; answers are queued to a device-less playback clock (so no sound-device latency is included).
  {len(COLD_FIXTURES)} rounds: a session starts a fresh engine and speaks its first turn (**cold**: {', '.join(f'`{f}`' for f in COLD_FIXTURES)};
  the engine's models may still be loading), then {', '.join(f'`{f}`' for f in WARM_FIXTURES)} are each spoken
  in a new session to that engine (**warm**, {speech['warm']['speech_end_to_first_audio_ms']['n']} turns in all). A turn ends at `response.done`.
- **From the audio** means from the last sample above {speech['speech_end_dbfs']:.0f} dBFS in the fixture, put on the clock by the
  file source's real-time pacing; it includes the server VAD's silence wait (`silence_duration_ms` =
  {silence if silence is not None else 500} ms) and the VAD's 32 ms frames. **As the session reports it** is `Timing("speech_end_to_first_audio")`,
  from the client's receipt of `input_audio_buffer.speech_stopped`.
- **Recognition baseline:** after each turn the benchmark process transcribes the same clip with the same
  recogniser class and defaults; the engine ÷ baseline ratio separates the engine path's own cost from the
  machine's load at that moment (1-minute load average {_fmt_load(results.get('load_average'))}).
- Medians and p95 of few samples (p95 interpolated); the machine is shared and noisy."""


def _fmt_load(load: dict[str, Any] | None) -> str:
    if not load:
        return "unknown"
    values = [v[0] for v in load.values() if v]
    return f"{min(values):.1f}–{max(values):.1f} during the run on {os.cpu_count()} CPUs" if values else "unknown"


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run() -> dict[str, Any]:
    load = {"start": _load()}
    launch = _launch()
    load["after_launch"] = _load()
    speech = _speech(asyncio.run(_turns()))
    load["end"] = _load()
    results = {
        "units": {"*_ms": "milliseconds", "*_ratio": "dimensionless",
                  "median/p95/min/max": "over n samples, p95 linearly interpolated",
                  "load_average": "1, 5, 15 min load averages (os.getloadavg)"},
        "load_average": load,
        "launch": launch,
        "speech": speech,
    }
    report = {
        "benchmark": "latency",
        "title": "Latency: launch to connected window, end of speech to first answer audio",
        "module": "bench/latency.py",
        "command": "./dev bench latency",
        "machine": machine_info(),
        "results": results,
        "notes": notes(results),
        "markdown": markdown(results),
    }
    write_result("latency", report)
    return report


if __name__ == "__main__":
    print(run()["markdown"])
