"""Barge-in: how fast the assistant falls silent, whether it interrupts itself, what the capture path costs.

    ./dev bench barge_in          (or .venv/bin/python -m bench barge_in)

Everything runs through real audio streams (PortAudio -> ALSA pulse plugin -> a private PulseAudio server
with null sinks, as in tests/), Parley's LiveSession (no window) and the embedded offline engine over a real
WebSocket on 127.0.0.1.

1. **Barge-in latency.** The "stage" (bench/_barge_in_stage.py) puts the microphone and the speaker on the
   two channels of ONE null sink, recorded as one stereo file: left = exactly the signal at the microphone,
   right = exactly what the speaker plays, sample-aligned on the sink's clock. The assistant tells a long
   story (typed request); after a random 2.0-3.5 s the user's voice ("Stop talking, please.") is played
   into the microphone. Latency = from the onset of speech at the microphone (first sample above
   ONSET_DBFS in the left channel) to the last audible sample of the assistant (last sample above
   AUDIBLE_DBFS in the right channel before it stays silent). Capture buffering, the app's processing, the
   event loop, the output buffer and the fade all fall inside that interval. Local VAD on (defaults:
   duck at onset, gain 0 after a 10 ms ramp) and off (LocalBargeInSettings(enabled=False): only the server's
   `speech_started` stops playback) alternate trial by trial in one session, so both share the load.
   A trial whose onset falls into a pause of the story (speaker silent in the 30 ms before the onset, or
   not audible at all in the SILENT_AFTER_S after it) measures nothing and is repeated. The session uses
   server VAD with create_response=False so that the interruption does not start a new answer that would
   overlap the next trial.
2. **Self-interruption.** tests/room_audio.Room: the microphone is the monitor of a room sink; a
   PulseAudio loopback plays the speaker's output into the room at -10 dB and at 0 dB (30 ms). Typed
   questions with 2-10 s answers, one after the other in one session per condition; an answer counts as
   self-interrupted if, while it plays, the local detection holds, ducks or pauses playback, the server reports
   `speech_started`, or the answer is truncated. Echo mode "aec" (the default: WebRTC AEC3, gated while
   converging) and "headset" (no echo handling) as the baseline. create_response=False for the server VAD
   (typed questions still get answers), so that a self-interruption in headset mode does not snowball
   into answers to the echo; the events counted are the same either way.
3. **CPU of the capture path.** A session connected to the engine, idle, capturing the (silent) room for
   CPU_SECONDS. CPU time per thread, read with the POSIX per-thread CPU clocks: the PortAudio capture
   callback thread, the capture consumer thread (soxr resampling to 24 kHz, float->int16, AEC), and on the
   event loop the per-chunk handler (level, Silero VAD, base64 + JSON of input_audio_buffer.append) and
   the WebSocket send, timed with time.thread_time() around them. PulseAudio's client thread for the stream
   is counted from /proc (10 ms ticks). The speaker is off in this part (NullOutput: the playback clock
   still feeds the AEC's far end) so that PulseAudio's client threads belong to the microphone only.
   Complemented by micro-benchmarks of each stage per 20 ms chunk of speech.

The machine is shared and loaded: the load average is reported beside each figure.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine_info, summarize  # noqa: E402
from desktop.gc_tuning import freeze_startup_objects  # noqa: E402
from tests.waiting import wait_until as _wait  # noqa: E402

AUDIO = ROOT / "tests" / "fixtures" / "audio"

LATENCY_TRIALS = int(os.environ.get("PARLEY_BENCH_BARGE_TRIALS", "20"))  # per mode
#: Latency arms, alternated trial by trial in one session: local detection on (the default: the speaker's
#: buffer is cut at the interruption), the same without cutting the speaker's buffer (it drains, then the
#: 5 ms fade), and the server's VAD only (buffer cut).
LATENCY_MODES = ("local_vad_on", "local_vad_on_no_cut", "local_vad_off")
ANSWERS = int(os.environ.get("PARLEY_BENCH_ANSWERS", "60"))  # per condition
CPU_SECONDS = float(os.environ.get("PARLEY_BENCH_CPU_SECONDS", "30"))
#: The speaker's buffer (the app's default is 40 ms; `--output-latency`).
OUTPUT_LATENCY_S = float(os.environ.get("PARLEY_BENCH_OUTPUT_LATENCY_MS", "40")) / 1000.0
#: Parts to run (comma-separated; the published figures come from all four). A partial run is for exploring:
#: `PARLEY_BENCH_BARGE_PARTS=latency python -m bench.barge_in` prints without saving.
PARTS = set(os.environ.get("PARLEY_BENCH_BARGE_PARTS", "micro,latency,self_interruption,cpu").split(","))
#: Levers for exploring (a run with any set is not saved): the microphone's batch (ms), its batch in a quiet
#: room (ms; the usual batch turns the lever off) and the echo canceller's idling (ms of digital silence to the
#: speaker before the library rests; 0: never).
LEVER_BATCH_MS = os.environ.get("PARLEY_BENCH_BATCH_MS")
LEVER_QUIET_BATCH_MS = os.environ.get("PARLEY_BENCH_QUIET_BATCH_MS")
#: ... and the chunk the event loop gets while the speaker plays (ms; 40 turns the lever off).
LEVER_PLAYING_CHUNK_MS = os.environ.get("PARLEY_BENCH_PLAYING_CHUNK_MS")
LEVER_AEC_IDLE_MS = os.environ.get("PARLEY_BENCH_AEC_IDLE_MS")


def _levers_set() -> bool:
    return bool(LEVER_BATCH_MS or LEVER_QUIET_BATCH_MS or LEVER_PLAYING_CHUNK_MS or LEVER_AEC_IDLE_MS)


def _apply_levers() -> None:
    if LEVER_BATCH_MS:
        import desktop.session

        desktop.session.CAPTURE_BATCH_MS = int(LEVER_BATCH_MS)
    if LEVER_QUIET_BATCH_MS:
        import desktop.session

        desktop.session.QUIET_CAPTURE_BATCH_MS = int(LEVER_QUIET_BATCH_MS)
    if LEVER_PLAYING_CHUNK_MS:
        import desktop.session

        desktop.session.PLAYING_LOOP_CHUNK_MS = int(LEVER_PLAYING_CHUNK_MS)
    if LEVER_AEC_IDLE_MS:
        from desktop.audio import echo_canceller

        echo_canceller.IDLE_AFTER_MS = int(LEVER_AEC_IDLE_MS) or None

STORY = "Tell me a long story about a dragon."
VOICE = AUDIO / "stop_talking.wav"
ONSET_DBFS = -45.0
AUDIBLE_DBFS = -60.0
SILENT_AFTER_S = 0.6  # the assistant is "stopped" when the speaker stays below AUDIBLE_DBFS this long
QUESTIONS = [
    "What is the weather like today?",
    "Who are you?",
    "Hello, how are you?",
    "What is the capital of France?",
    "What time is it?",
]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _new_session(config=None, echo_mode: str = "aec", use_speaker: bool = True, local=None):
    from desktop.core.session_config import SessionConfig
    from desktop.providers import choose_provider
    from desktop.session import LiveSession, SessionOptions

    options = SessionOptions(choose_provider(environ={}), config=config or SessionConfig(), echo_mode=echo_mode,
                             use_speaker=use_speaker, output_latency_s=OUTPUT_LATENCY_S)
    if local is not None:
        options.local_barge_in = local
    session = LiveSession(options)
    notes: list[tuple[float, Any]] = []
    session.subscribe(lambda n: notes.append((time.monotonic(), n)))
    return session, notes


# ============================================================================ 1. latency
def _first_above(x: np.ndarray, dbfs: float, start: int = 0) -> int | None:
    level = 32768.0 * 10 ** (dbfs / 20)
    idx = np.nonzero(np.abs(x[start:].astype(np.int32)) > level)[0]
    return int(idx[0]) + start if len(idx) else None


def _speech_onsets(left: np.ndarray, rate: int, min_gap_s: float = 2.5) -> list[int]:
    """Sample index of the start of each utterance in the microphone channel."""
    level = 32768.0 * 10 ** (ONSET_DBFS / 20)
    loud = np.nonzero(np.abs(left.astype(np.int32)) > level)[0]
    onsets: list[int] = []
    last = None
    for i in loud:
        if last is None or i - last > min_gap_s * rate:
            onsets.append(int(i))
        last = i
    return onsets


def _cut_after(right: np.ndarray, onset: int, rate: int) -> tuple[int | None, bool]:
    """(last audible speaker sample before a silence of SILENT_AFTER_S after the onset, audible at onset)."""
    level = 32768.0 * 10 ** (AUDIBLE_DBFS / 20)
    before = right[max(0, onset - int(0.03 * rate)):onset]
    audible_at_onset = bool(len(before)) and bool(np.any(np.abs(before.astype(np.int32)) > level))
    loud = np.nonzero(np.abs(right[onset:].astype(np.int32)) > level)[0]
    if len(loud) == 0 or loud[0] > SILENT_AFTER_S * rate:
        # The speaker fell silent by itself at the onset (a word's end before a pause): nothing to stop, and
        # the next "last audible sample" would be the next trial's story (seen as 6-7 s outliers).
        return None, False
    gaps = np.diff(loud)
    long = np.nonzero(gaps > SILENT_AFTER_S * rate)[0]
    end = loud[long[0]] if len(long) else loud[-1]
    return onset + int(end), audible_at_onset


def _ending_level_db(right: np.ndarray, cut: int, rate: int) -> float | None:
    """How abruptly the voice ended: level of its last 2 ms against the 50 ms before them, in dB (a 5 ms fade
    gives about -10 dB or less; a hard cut about 0 dB, heard as a click when it lands on loud speech)."""
    tail = right[max(0, cut - rate // 500):cut + 1].astype(np.float64)
    body = right[max(0, cut - rate // 20):max(0, cut - rate // 500)].astype(np.float64)
    if not len(tail) or not len(body) or not np.any(body):
        return None
    return round(10 * np.log10(max(np.mean(tail ** 2), 1e-9) / np.mean(body ** 2)), 1)


async def _latency_trials(stage, recording: Path, trials: int) -> dict[str, Any]:
    from desktop.core.actions import BargeInHappened, TurnState
    from desktop.core.local_barge_in import LocalBargeInSettings
    from desktop.core.session_config import ServerVad, SessionConfig

    local_on = LocalBargeInSettings()
    local_off = LocalBargeInSettings(enabled=False)
    from desktop.core.actions import DuckPlayback, PausePlayback, StopPlayback
    from desktop.core.pcm import rms_dbfs

    from bench._barge_in_probes import ActionLog

    session, notes = _new_session(SessionConfig(turn_detection=ServerVad(create_response=False)))
    actions = ActionLog(session)
    loud_chunks: list[float] = []  # when a microphone chunk above ONSET_DBFS reached the event loop
    handler = session._on_input_chunk

    def tap(chunk: np.ndarray, *rest) -> None:
        if rms_dbfs(chunk) > ONSET_DBFS:
            loud_chunks.append(time.monotonic())
        handler(chunk, *rest)

    session._on_input_chunk = tap
    log: list[dict[str, Any]] = []
    rec = None
    try:
        if not await session.start():
            raise RuntimeError(f"session did not start: {session.status}")
        freeze_startup_objects()  # as the app does once it has started
        if session.devices is None or not session.devices.input_name or not session.devices.output_name:
            raise RuntimeError(f"no audio devices: {session.devices}")
        # warm-up answer: the echo canceller converges and the local barge-in's warm-up passes
        session.send_text("Who are you?")
        await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 30)
        await _wait(lambda: not session.playback.is_playing() and session.client.state != TurnState.ASSISTANT_SPEAKING, 30)
        rec = stage.record(recording)
        await asyncio.sleep(0.5)
        plan = [m for _ in range(trials) for m in LATENCY_MODES]
        attempts = 0
        while plan and attempts < 4 * trials * len(LATENCY_MODES) // 2 + 10:
            attempts += 1
            mode = plan[0]
            session.client.local_barge_in.configure(local_off if mode == "local_vad_off" else local_on)
            session.options.cut_speaker_buffer = mode != "local_vad_on_no_cut"
            session.send_text(STORY)
            if not await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 30):
                raise RuntimeError("the story did not start")
            await asyncio.sleep(random.uniform(2.0, 3.5))
            t_say = time.monotonic()
            mark = len(notes)
            voice = stage.say(VOICE)
            barged = await _wait(lambda: any(isinstance(n, BargeInHappened) for _, n in notes[mark:]), 10)
            barge_s = next((t - t_say for t, n in notes[mark:] if isinstance(n, BargeInHappened)), None)
            while voice.poll() is None:
                await asyncio.sleep(0.05)
            if not barged:
                session.cancel_response()
            await _wait(lambda: not session.playback.is_playing() and not session.playback.is_paused(), 5)
            await _wait(lambda: session.client.state in (TurnState.LISTENING, TurnState.THINKING), 5)
            await asyncio.sleep(1.2)
            first_loud = next((t for t in loud_chunks if t >= t_say), None)
            silencing = [t for t, a in actions.entries if t >= t_say and isinstance(a, (DuckPlayback, PausePlayback, StopPlayback))]
            first_action = next((type(a).__name__ for t, a in actions.entries if t >= t_say
                                 and isinstance(a, (DuckPlayback, PausePlayback, StopPlayback))), None)
            detect_ms = (silencing[0] - first_loud) * 1000 if silencing and first_loud is not None else None
            log.append({"mode": mode, "barged_in": barged, "app_barge_in_after_play_s": barge_s,
                        "first_silencing_action": first_action,
                        "loud_chunk_to_silencing_action_ms": None if detect_ms is None else round(detect_ms, 1),
                        "load": load_average()})
            plan.pop(0)
        await asyncio.sleep(0.5)
        streams = {"mic_latency_s": getattr(getattr(session._source, "_stream", None), "latency", None),
                   "speaker_latency_s": getattr(session._output, "output_latency", None),
                   "speaker_underflows": getattr(session._output, "underflows", None)}
    finally:
        if rec is not None:
            stage.stop(rec)
        await session.stop()
    return {"log": log, "attempts": attempts, "streams": streams}


def _latency(server) -> dict[str, Any]:
    import tempfile

    from bench._barge_in_stage import RATE, Stage

    results: dict[str, list[float]] = {m: [] for m in LATENCY_MODES}
    skipped = {m: 0 for m in LATENCY_MODES}
    trials_out: list[dict[str, Any]] = []
    loads: list[list[float]] = [load_average()]
    detect: dict[str, list[float]] = {m: [] for m in LATENCY_MODES}
    streams = []
    remaining = {m: LATENCY_TRIALS for m in LATENCY_MODES}
    rounds = 0
    with tempfile.TemporaryDirectory(prefix="parley-barge-") as tmp:
        while any(v > 0 for v in remaining.values()) and rounds < 4:
            rounds += 1
            n = max(remaining.values()) + (2 if rounds == 1 else 1)  # a few spare: onsets in a pause are skipped
            stage = Stage(server)
            recording = Path(tmp) / f"stage{rounds}.raw"
            try:
                run = asyncio.run(_latency_trials(stage, recording, n))
            finally:
                stage.close()
            streams.append(run["streams"])
            left, right = Stage.read(recording)
            onsets = _speech_onsets(left, RATE)
            loads.append(load_average())
            if len(onsets) != len(run["log"]):
                raise RuntimeError(f"found {len(onsets)} utterances in the recording for {len(run['log'])} trials")
            for onset, entry in zip(onsets, run["log"]):
                mode = entry["mode"]
                cut, audible = _cut_after(right, onset, RATE)
                trial = dict(entry, onset_s=round(onset / RATE, 3))
                if not audible or cut is None:
                    skipped[mode] += 1
                    trial["skipped"] = "speaker silent at the onset (a pause in the story)"
                else:
                    latency_ms = (cut - onset) * 1000.0 / RATE
                    trial["latency_ms"] = round(latency_ms, 1)
                    trial["last_ms_level_db"] = _ending_level_db(right, cut, RATE)
                    results[mode].append(latency_ms)
                    if entry.get("loud_chunk_to_silencing_action_ms") is not None:
                        detect[mode].append(entry["loud_chunk_to_silencing_action_ms"])
                    remaining[mode] = max(0, remaining[mode] - 1)
                trials_out.append(trial)
    out: dict[str, Any] = {
        "method": "one stereo recording of one null sink: left = microphone, right = speaker",
        "onset_dbfs": ONSET_DBFS, "audible_dbfs": AUDIBLE_DBFS, "voice": VOICE.name,
        "load_average_during": loads,
        "skipped_onset_in_pause": skipped,
        "streams": streams,
        "trials": trials_out,
    }
    for mode, values in results.items():
        out[mode] = summarize(values)
        out[f"{mode}_detection_ms"] = summarize(detect[mode])
        out[f"{mode}_last_ms_level_db"] = summarize([t["last_ms_level_db"] for t in trials_out if t["mode"] == mode
                                                     and t.get("last_ms_level_db") is not None])
    return out


# ============================================================================ 2. self-interruption
async def _answers(room, echo_mode: str, echo_db: float, n: int) -> dict[str, Any]:
    from desktop.core.actions import BargeInHappened, DuckPlayback, PausePlayback, SpeechBoundary, TurnState
    from desktop.core.session_config import ServerVad, SessionConfig

    from bench._barge_in_probes import ActionLog

    session, notes = _new_session(SessionConfig(turn_detection=ServerVad(create_response=False)), echo_mode=echo_mode)
    actions = ActionLog(session)
    per_answer: list[dict[str, Any]] = []
    try:
        if not await session.start():
            raise RuntimeError(f"session did not start: {session.status}")
        freeze_startup_objects()  # as the app does once it has started
        for i in range(n):
            question = QUESTIONS[i % len(QUESTIONS)]
            t0 = time.monotonic()
            mark = len(notes)
            aec = getattr(session.echo, "aec", session.echo)
            idle0 = getattr(aec, "idle_frames", 0)
            session.send_text(question)
            started = await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 30)
            await _wait(lambda: session.client.state != TurnState.ASSISTANT_SPEAKING
                        and not session.playback.is_playing() and not session.playback.is_paused(), 40)
            await asyncio.sleep(0.3)
            answer_items = [it for it in session.client.conversation if it.role == "assistant"]
            answer = answer_items[-1] if answer_items else None
            window = [x for _, x in notes[mark:]]
            record = {
                "question": question,
                "started": started,
                "audio_ms": answer.audio_received_ms if answer else 0,
                "truncated": bool(answer and answer.interrupted),
                "ducks": len(actions.since(t0, DuckPlayback)),
                "pauses": len(actions.since(t0, PausePlayback)),
                "server_speech_started": sum(1 for x in window if isinstance(x, SpeechBoundary) and x.started),
                "barge_ins": sum(1 for x in window if isinstance(x, BargeInHappened)),
                "aec_idle_frames": getattr(aec, "idle_frames", 0) - idle0,  # the canceller rested this long (10 ms)
            }
            record["self_interrupted"] = bool(record["truncated"] or record["ducks"] or record["pauses"]
                                              or record["server_speech_started"] or record["barge_ins"])
            per_answer.append(record)
            # let the echo tail and the server's VAD settle before the next question
            await _wait(lambda: session.client.state not in (TurnState.ASSISTANT_SPEAKING, TurnState.USER_SPEAKING)
                        and not session.playback.is_playing() and not session.playback.is_paused(), 10)
            await asyncio.sleep(0.7)
        converged = getattr(session.echo, "converged", None)
        echo_name = getattr(session.echo, "name", None) if session.echo is not None else "none (headset)"
        underflows = getattr(session._output, "underflows", None)
        overflows = getattr(session._source, "overflows", None)
    finally:
        await session.stop()
    interrupted = [r for r in per_answer if r["self_interrupted"]]
    return {
        "echo_mode": echo_mode,
        "echo_db": echo_db,
        "echo_handling": echo_name,
        "aec_converged_at_end": converged,
        "answers": len(per_answer),
        "answers_started": sum(1 for r in per_answer if r["started"]),
        "self_interrupted": len(interrupted),
        "truncated": sum(1 for r in per_answer if r["truncated"]),
        "with_local_duck_or_pause": sum(1 for r in per_answer if r["ducks"] or r["pauses"]),
        "with_server_speech_started": sum(1 for r in per_answer if r["server_speech_started"]),
        "answer_audio_ms": summarize([r["audio_ms"] for r in per_answer], 0),
        "speaker_underflows": underflows,
        "mic_overflows": overflows,
        "load_average_after": load_average(),
        "per_answer": per_answer,
    }


def _self_interruption(server, n: int) -> list[dict[str, Any]]:
    from tests.room_audio import Room

    out = []
    modes = os.environ.get("PARLEY_BENCH_SI_MODES", "aec,headset").split(",")  # partial runs, for exploring
    levels = [float(x) for x in os.environ.get("PARLEY_BENCH_SI_LEVELS", "-10,0").split(",")]
    for echo_mode in modes:
        for echo_db in levels:
            room = Room(server)
            try:
                room.add_echo(echo_db)
                # the headset arms are the baseline that shows what the canceller prevents: 20 answers say it
                out.append(asyncio.run(_answers(room, echo_mode, echo_db, n if echo_mode == "aec" else min(n, 20))))
            finally:
                room.close()
    return out


# ============================================================================ 3. CPU
async def _idle_capture(seconds: float, speaking: bool = False) -> dict[str, Any]:
    """CPU of the capture path over `seconds` of live capture; `speaking`: while the assistant tells a story
    through the speaker (the echo canceller then works on every frame), else idle."""
    from bench._barge_in_probes import LoopShare, ThreadCpu, instrument_capture, task_cpu_seconds, task_names
    from desktop.core.actions import TurnState

    before = set(task_names())
    with instrument_capture() as seen:
        session, _ = _new_session(use_speaker=speaking)
        share = LoopShare(session)
        try:
            if not await session.start():
                raise RuntimeError(f"session did not start: {session.status}")
            freeze_startup_objects()  # as the app does once it has started
            share.wrap_transport()
            await asyncio.sleep(3.0)  # models loaded, streams running
            if speaking:
                session.send_text(STORY)
                if not await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING, 30):
                    raise RuntimeError("the story did not start")
                await asyncio.sleep(1.0)
            if seen.capture is None:
                raise RuntimeError("the microphone callback never ran")
            mic_thread = next((t for t in threading.enumerate() if t.name == "parley-mic"), None)
            if mic_thread is None:
                raise RuntimeError("no capture consumer thread")
            names = task_names()
            python_threads = {t.native_id: t.name for t in threading.enumerate()}
            known = {seen.capture[1], mic_thread.native_id, threading.main_thread().native_id}
            others = {tid: python_threads.get(tid, name) for tid, name in names.items()
                      if tid not in before and tid not in known}
            callback_cpu = ThreadCpu(seen.capture[0])
            consumer_cpu = ThreadCpu(mic_thread.ident)
            main_cpu = ThreadCpu(threading.main_thread().ident)
            c0, k0, m0 = callback_cpu.seconds(), consumer_cpu.seconds(), main_cpu.seconds()
            o0 = {tid: task_cpu_seconds(tid) for tid in others}
            frames0, blocks0 = seen.capture_frames, seen.capture_blocks
            share.active = True
            w0 = time.monotonic()
            while time.monotonic() - w0 < seconds:
                await asyncio.sleep(0.05)
                if speaking and not session.playback.is_playing():
                    break  # the story ended: measure only while it played
            wall = time.monotonic() - w0
            share.active = False
            c1, k1, m1 = callback_cpu.seconds(), consumer_cpu.seconds(), main_cpu.seconds()
            o1 = {tid: task_cpu_seconds(tid) for tid in others}
            frames = seen.capture_frames - frames0
            blocks = seen.capture_blocks - blocks0
            rate = session._source.device_rate if session._source is not None else None
            echo = getattr(session.echo, "name", None)
            source = session._source
            aec = getattr(session.echo, "aec", session.echo)
            vad = session.local_vad
            levers = {"capture_batches": getattr(source, "batches", None),
                      "capture_batches_handed_early": getattr(source, "urgent_batches", None),
                      "capture_batches_held_longer": getattr(source, "long_batches", None),
                      "aec_idle_frames": getattr(aec, "idle_frames", None),
                      "vad_frames": getattr(vad, "frames", None),
                      "vad_frames_gated": getattr(vad, "gated_frames", None)}
        finally:
            await session.stop()

    def pct(cpu: float) -> float:
        return round(100.0 * cpu / wall, 3)

    other_threads = []
    for tid, name in others.items():
        if o0.get(tid) is not None and o1.get(tid) is not None:
            other_threads.append({"tid": tid, "name": name, "python": tid in python_threads,
                                  "cpu_pct": pct(o1[tid] - o0[tid])})
    stages = {
        "portaudio_capture_callback": pct(c1 - c0),
        "capture_thread_resample_aec_pcm16": pct(k1 - k0),
        "loop_chunk_handler_level_vad_encode": pct(share.chunk_cpu),
        "loop_websocket_send": pct(share.send_cpu),
    }
    pulse_client = sum(t["cpu_pct"] for t in other_threads if not t["python"])  # libpulse's threads
    total = sum(stages.values())
    return {
        "seconds": round(wall, 1),
        "assistant_speaking": speaking,
        "device_rate": rate,
        "captured_s": round(frames / rate, 1) if rate else None,
        "echo": echo,
        "chunks_handled": share.chunks,
        "capture_callbacks_per_s": round(blocks / wall, 1),
        "frames_per_callback": round(frames / blocks, 1) if blocks else None,
        "sends": share.sends,
        "levers_since_start": levers,
        "stages_pct_of_one_core": stages,
        "capture_path_pct": round(total, 3),
        "audio_client_threads_pct": round(pulse_client, 3),
        "capture_path_with_audio_client_threads_pct": round(total + pulse_client, 3),
        "event_loop_thread_total_pct": pct(m1 - m0),
        "other_new_threads": other_threads,
        "load_average": load_average(),
    }


def _capture_floor(seconds: float) -> dict[str, Any]:
    """The floor under any Python capture path, measured like `_idle_capture`: the same PortAudio input
    stream (default device and rate, 10 ms blocks, 'low' latency) whose callback only copies each block
    into a queue, and a thread that takes the blocks and drops them. No resampling, no processing."""
    import queue

    from bench._barge_in_probes import ThreadCpu, task_cpu_seconds, task_names
    from desktop.audio.devices import resolve_device, sounddevice_module

    sd = sounddevice_module()
    rate = int(resolve_device(None, "input")["default_samplerate"])
    blocks: queue.SimpleQueue = queue.SimpleQueue()
    seen: dict[str, Any] = {"callback": None, "blocks": 0}

    def callback(indata, frames, time_info, status) -> None:
        if seen["callback"] is None:
            seen["callback"] = threading.get_ident()
        seen["blocks"] += 1
        blocks.put(indata[:, 0].copy())

    def consume() -> None:
        while blocks.get() is not None:
            pass

    before = set(task_names())
    consumer = threading.Thread(target=consume, name="floor-consumer", daemon=True)
    consumer.start()
    stream = sd.InputStream(channels=1, samplerate=rate, dtype="float32", latency="low",
                            blocksize=rate // 100, callback=callback)
    stream.start()
    try:
        time.sleep(2.0)
        callback_ident = seen["callback"]
        if callback_ident is None:
            raise RuntimeError("the floor stream's callback never ran")
        python_threads = {t.native_id for t in threading.enumerate()}
        others = [tid for tid in task_names() if tid not in before and tid not in python_threads]
        cb, cons = ThreadCpu(callback_ident), ThreadCpu(consumer.ident)
        c0, k0 = cb.seconds(), cons.seconds()
        o0 = {tid: task_cpu_seconds(tid) for tid in others}
        b0, w0 = seen["blocks"], time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - w0
        c1, k1 = cb.seconds(), cons.seconds()
        o1 = {tid: task_cpu_seconds(tid) for tid in others}
        n = seen["blocks"] - b0
    finally:
        stream.stop()
        stream.close()
        blocks.put(None)
        consumer.join(5)
    pulse = sum(o1[t] - o0[t] for t in others if o0.get(t) is not None and o1.get(t) is not None)
    callback_pct = 100.0 * (c1 - c0) / wall
    consumer_pct = 100.0 * (k1 - k0) / wall
    return {
        "seconds": round(wall, 1),
        "device_rate": rate,
        "callbacks_per_s": round(n / wall, 1),
        "callback_copy_pct": round(callback_pct, 3),
        "consumer_thread_pct": round(consumer_pct, 3),
        "floor_pct": round(callback_pct + consumer_pct, 3),
        "audio_client_threads_pct": round(100.0 * pulse / wall, 3),
        "load_average": load_average(),
    }


def _micro_stages(chunks: int = 1500) -> dict[str, Any]:
    """CPU per 20 ms chunk of each capture stage on speech (mic = speech + echo of another answer)."""
    import json

    import soxr

    from desktop.audio import read_wav_24k
    from desktop.audio.echo_canceller import make_echo_canceller
    from desktop.audio.resample import live_resampler
    from desktop.audio.silero_vad import SileroSpeechProbability
    from desktop.core.events import ClientEvents
    from desktop.core.pcm import float_to_pcm16, rms_dbfs

    near = read_wav_24k(AUDIO / "hello_weather.wav").astype(np.float32) / 32768.0
    far = read_wav_24k(AUDIO / "moon_distance.wav").astype(np.float32) / 32768.0
    n24, n48 = 480, 960
    need = chunks * n24
    near = np.resize(near, need)
    far = np.resize(far, need)
    mic = 0.7 * near + 0.3 * np.roll(far, 720)
    mic48 = soxr.resample(mic, 24000, 48000)
    mic48 = np.resize(mic48, chunks * n48).astype(np.float32)
    pcm_chunks = [float_to_pcm16(mic[i * n24:(i + 1) * n24]) for i in range(chunks)]
    far_chunks = [float_to_pcm16(far[i * n24:(i + 1) * n24]) for i in range(chunks)]
    events = ClientEvents()

    def timed(fn) -> float:
        t0 = time.thread_time()
        for i in range(chunks):
            fn(i)
        return (time.thread_time() - t0) / chunks * 1000.0  # ms per chunk

    resampler = live_resampler(48000, 24000)  # what the capture thread uses
    aec = make_echo_canceller("aec")
    aec_aec = getattr(aec, "aec", aec)  # the AEC alone (the gate only runs until convergence)
    vad = SileroSpeechProbability()
    out = {
        "resample_48k_to_24k_soxr_streaming": timed(lambda i: resampler.resample_chunk(mic48[i * n48:(i + 1) * n48])),
        "float_to_pcm16": timed(lambda i: float_to_pcm16(mic[i * n24:(i + 1) * n24])),
        "aec_far_end_feed": timed(lambda i: aec_aec.feed_far_end(far_chunks[i])),
        "aec_process_near_end": timed(lambda i: aec_aec.process_near_end(pcm_chunks[i])),
        "input_level_dbfs": timed(lambda i: rms_dbfs(pcm_chunks[i])),
        "silero_vad": timed(lambda i: vad.process(pcm_chunks[i])),
        "append_event_base64_json": timed(lambda i: json.dumps(events.input_audio_append(pcm_chunks[i]))),
    }
    out = {k: round(v, 4) for k, v in out.items()}
    total = sum(out.values())
    return {
        "chunks": chunks,
        "ms_per_20ms_chunk": out,
        "total_ms_per_chunk": round(total, 4),
        "total_pct_of_one_core": round(total / 20.0 * 100.0, 3),
        "load_average": load_average(),
    }


# ============================================================================ report
def _markdown(report: dict[str, Any]) -> str:
    r = report["results"]
    lines: list[str] = []
    lat = r["latency"]
    lines += [
        "### Barge-in latency (onset of speech at the microphone → last audible sample of the assistant)",
        "",
        "Method: the microphone and the speaker are the two channels of **one** PulseAudio null sink, recorded",
        "as one stereo file (left = exactly what the microphone gets, right = exactly what the speaker plays, on",
        "the sink's sample clock). The assistant tells a long story; after a random 2.0–3.5 s the user's voice",
        f"(`{lat['voice']}`) is played into the microphone. Latency = first left-channel sample above",
        f"{lat['onset_dbfs']:.0f} dBFS → last right-channel sample above {lat['audible_dbfs']:.0f} dBFS before the speaker",
        "stays silent, i.e. what the user hears, including capture buffering, processing, the event loop, the",
        "speaker's buffer. Three arms alternate trial by trial in one session: local detection on (the defaults:",
        "playback held at the loudness onset, two 10 ms blocks, judged after echo cancellation or, while the",
        "canceller still suppresses the start of double talk, on the raw microphone against the level of what was",
        "just played; the Silero VAD confirms; held at Silero's onset",
        "otherwise) with the speaker's buffer cut at the hold (`SpeakerOutput.interrupt`: the stream is aborted,",
        "which drops what the device and PulseAudio had queued, and restarted at once); the same without the cut",
        "(the queued audio drains, then a 5 ms fade); and local detection off (only the server's `speech_started`",
        "stops playback; buffer cut).",
        "",
        "| local VAD | speaker's buffer | p50 ms | p95 ms | min | max | trials | goal |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode, label, goal in (("local_vad_on", "on (default) | cut (default)", "≤ 50 ms p95"),
                              ("local_vad_on_no_cut", "on | drains", ""),
                              ("local_vad_off", "off (server VAD only) | cut", "")):
        s = lat[mode]
        lines.append(f"| {label} | {s['median']} | {s['p95']} | {s['min']} | {s['max']} | {s['n']} | {goal} |")
    loads = lat["load_average_during"]
    d_on, d_off = lat["local_vad_on_detection_ms"], lat["local_vad_off_detection_ms"]
    st0 = lat["streams"][0] if lat["streams"] else {}
    lines += [
        "",
        "Where the time goes (wall clock inside the app): from the first microphone chunk above "
        f"{ONSET_DBFS:.0f} dBFS reaching the event loop to the first action that silences playback (duck, pause or "
        f"stop): p50 {d_on['median']} / p95 {d_on['p95']} ms with local detection (the onset is found on the capture "
        "thread per 10 ms block, so the hold often arrives with the first loud 20 ms chunk), p50 "
        f"{d_off['median']} / p95 {d_off['p95']} ms with the server's `speech_started` only (the engine runs on "
        "loopback; negative: the hold came before the loud chunk, which is handed over every 20 ms). The rest is the "
        "audio path: capture buffering (PortAudio reports "
        f"{(st0.get('mic_latency_s') or 0) * 1000:.0f} ms for the microphone; the test rig's PulseAudio remap sink and "
        "monitor add their own), the 10 ms blocks and the 20 ms the onset rule needs, and, unless it is cut, the "
        f"speaker's buffer ({(st0.get('speaker_latency_s') or 0) * 1000:.0f} ms; `--output-latency`) plus the 5 ms fade.",
        "",
        "The price of the cut: the voice ends without a fade. Level of the last 2 ms of the voice against the 50 ms "
        "before them (median; a hard cut is about 0 dB and can click, a fade is well below): "
        + ", ".join(f"{m} {lat[m + '_last_ms_level_db']['median']} dB" for m in LATENCY_MODES) + ".",
    ]
    if r.get("latency_note"):
        lines += ["", r["latency_note"]]
    lines += [
        "",
        f"Trials skipped because the onset fell in a pause of the story (nothing to stop): "
        + ", ".join(f"{m} {n}" for m, n in lat['skipped_onset_in_pause'].items()) + ". "
        f"Load average (1/5/15 min) before/after: {loads[0]} / {loads[-1]} on {report['machine']['cpu_count']} CPUs.",
        "",
        "### Self-interruption (the assistant's own voice looped back into the microphone)",
        "",
        "Typed questions with short answers, one after the other in one session per condition; the speaker's",
        "output is looped into the microphone by PulseAudio at the given level (30 ms). Self-interrupted = during",
        "the answer the local detection held, ducked or paused playback, the server sent `speech_started`, or the",
        "answer was truncated. (Until 2026-11-26 the rig never applied the echo's level: `pactl list short` names",
        "no owner module, so no loopback matched. Every earlier \"-10 dB\" figure was measured at 0 dB.)",
        "",
        "| echo handling | echo level | answers | self-interrupted | truncated | local duck/pause | server speech_started | answer audio p50 ms | speaker underflows | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in r["self_interruption"]:
        label = "AEC (default)" if c["echo_mode"] == "aec" else "headset mode (no AEC): baseline"
        lines.append(
            f"| {label} | {c['echo_db']:+.0f} dB | {c['answers']} | **{c['self_interrupted']}** | {c['truncated']} | "
            f"{c['with_local_duck_or_pause']} | {c['with_server_speech_started']} | {c['answer_audio_ms']['median']} | "
            f"{c['speaker_underflows']} | {c['load_average_after']} |")
    cpu = r["cpu"]
    talk = r.get("cpu_speaking") or cpu
    echo = r.get("cpu_speaking_with_echo") or talk
    runs = (cpu, talk, echo)

    def row(label: str, key: str | None = None, values: list[str] | None = None, bold: bool = False) -> str:
        cells = values if values is not None else [f"{_dig(x, key):.3f}" for x in runs]
        if bold:
            return f"| **{label}** | " + " | ".join(f"**{c}**" for c in cells) + " |"
        return f"| {label} | " + " | ".join(cells) + " |"

    floors = [f["floor_pct"] for f in r.get("cpu_floor") or []]
    around = [x.get("floor_around_pct") or (sum(floors) / max(1, len(floors))) for x in runs]
    ratios = [x.get("capture_path_over_floor") or (x["capture_path_pct"] / f if f else float("nan"))
              for x, f in zip(runs, around)]
    lv = [x.get("levers_since_start") or {} for x in runs]

    def share(key: str, of: str) -> list[str]:
        return [f"{100.0 * (v.get(key) or 0) / max(1, v.get(of) or 0):.0f} %" if v.get(of) else "–" for v in lv]

    lines += [
        "",
        f"Goal: 0 self-interruptions in {r['self_interruption'][0]['answers'] if r.get('self_interruption') else 60} "
        "answers with AEC at -10 dB and at 0 dB.",
        *([r["self_interruption_note"]] if r.get("self_interruption_note") else []),
        "",
        "### CPU of the capture path (live capture, connected to the engine)",
        "",
        f"Microphone at {cpu['device_rate']} Hz through PulseAudio ({cpu['capture_callbacks_per_s']} callbacks/s of "
        f"{cpu['frames_per_callback']} frames), echo handling: {cpu['echo']}. CPU time per thread",
        "(POSIX per-thread CPU clocks), as a share of one core over the wall-clock interval: listening idle "
        f"({cpu['seconds']} s, nothing played, a silent room), while the assistant tells a story through the speaker "
        f"({talk['seconds']} s, the microphone does not hear it), and the same with the speaker looped back into the "
        f"microphone at -10 dB ({echo['seconds']} s, as a laptop's loudspeakers are heard).",
        "",
        "| stage | idle, % of one core | assistant speaking, % | speaking, echo at -10 dB, % |",
        "|---|---:|---:|---:|",
        row("PortAudio capture thread (ALSA pulse-plugin read, the callback holding blocks for a 40 ms batch)",
            "stages_pct_of_one_core.portaudio_capture_callback"),
        row("capture thread: soxr resample to 24 kHz, float→int16, AEC, loudness onset",
            "stages_pct_of_one_core.capture_thread_resample_aec_pcm16"),
        row("event loop: level, Silero VAD (energy-gated), local barge-in, base64 + JSON",
            "stages_pct_of_one_core.loop_chunk_handler_level_vad_encode"),
        row("event loop: WebSocket send", "stages_pct_of_one_core.loop_websocket_send"),
        row("capture path", "capture_path_pct", bold=True),
        row("floor, same run: a PortAudio stream at the same rate and block size whose callback only copies each "
            "block to a thread that drops it (mean of the floors measured just before and just after the column's "
            "window; all floors in order: " + " / ".join(f"{f:.3f}" for f in floors) + ")",
            values=[f"{f:.3f}" for f in around]),
        row("capture path ÷ floor (goal: ≤ 2× idle, ≤ 3× speaking)", values=[f"{x:.2f}×" for x in ratios], bold=True),
        row("chunks to the event loop", values=[str(x["chunks_handled"]) for x in runs]),
        row("batches handed over early (a block that may start a barge-in)",
            values=share("capture_batches_handed_early", "capture_batches")),
        row("batches held longer (100 ms: a quiet room, nothing audible from the speaker)",
            values=share("capture_batches_held_longer", "capture_batches")),
        row("Silero frames kept from the network by the energy gate", values=share("vad_frames_gated", "vad_frames")),
        row("PulseAudio client threads of the stream (libpulse, 10 ms ticks)", "audio_client_threads_pct"),
        row("(whole event-loop thread: also the playback watcher, asyncio wake-ups and, speaking, the answer's "
            "audio)", "event_loop_thread_total_pct"),
        "",
        "The counters of the last three rows count from the session's start (a few seconds before each window).",
        "",
        *([r["cpu_note"], ""] if r.get("cpu_note") else []),
        f"Load average: {cpu['load_average']}. Per-stage CPU per 20 ms chunk of speech (micro-benchmark, "
        f"{r['micro']['chunks']} chunks, time.thread_time):",
        "",
        "| stage | ms per 20 ms chunk | % of one core |",
        "|---|---:|---:|",
    ]
    for name, ms in r["micro"]["ms_per_20ms_chunk"].items():
        lines.append(f"| {name.replace('_', ' ')} | {ms:.4f} | {ms / 20 * 100:.3f} |")
    lines.append(f"| **total** | **{r['micro']['total_ms_per_chunk']:.4f}** | **{r['micro']['total_pct_of_one_core']:.3f}** |")
    return "\n".join(lines)


def _dig(d: dict[str, Any], path: str) -> float:
    for part in path.split("."):
        d = d[part]
    return float(d)  # type: ignore[arg-type]


def run() -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("OPENAI_API_KEY", None)
    from tests.pulse_server import pulse_server

    _apply_levers()
    results: dict[str, Any] = {"load_average_start": load_average()}
    if _levers_set():
        results["levers"] = {"batch_ms": LEVER_BATCH_MS, "quiet_batch_ms": LEVER_QUIET_BATCH_MS,
                             "playing_chunk_ms": LEVER_PLAYING_CHUNK_MS, "aec_idle_ms": LEVER_AEC_IDLE_MS}
    if "micro" in PARTS:
        results["micro"] = _micro_stages()
    with pulse_server() as server:
        if "latency" in PARTS:
            results["latency"] = _latency(server)
        if "self_interruption" in PARTS:
            results["self_interruption"] = _self_interruption(server, ANSWERS)
        if "cpu" in PARTS:
            from tests.room_audio import Room

            room = Room(server)  # a silent room as the microphone
            try:
                # The floor is measured before and after each of Parley's runs, and each run is compared with
                # the two floors around it: this machine's cost of the same work drifts by 20-30 % over minutes
                # (steal time), and neighbouring windows drift together.
                floor = [_capture_floor(CPU_SECONDS / 2)]
                results["cpu"] = asyncio.run(_idle_capture(CPU_SECONDS))
                floor.append(_capture_floor(CPU_SECONDS / 2))
                results["cpu_speaking"] = asyncio.run(_idle_capture(CPU_SECONDS, speaking=True))
                floor.append(_capture_floor(CPU_SECONDS / 2))
                room.add_echo(-10.0)  # the speaker heard by the microphone, as from a laptop's loudspeakers
                results["cpu_speaking_with_echo"] = asyncio.run(_idle_capture(CPU_SECONDS, speaking=True))
                floor.append(_capture_floor(CPU_SECONDS / 2))
                results["cpu_floor"] = floor
                for i, key in enumerate(("cpu", "cpu_speaking", "cpu_speaking_with_echo")):
                    around = (floor[i]["floor_pct"] + floor[i + 1]["floor_pct"]) / 2
                    results[key]["floor_around_pct"] = round(around, 3)
                    results[key]["capture_path_over_floor"] = round(results[key]["capture_path_pct"] / around, 3)
            finally:
                room.close()
    results["load_average_end"] = load_average()
    report = {
        "benchmark": "barge_in",
        "title": "Barge-in: latency, self-interruption, capture-path CPU",
        "command": ".venv/bin/python -m bench barge_in",
        "machine": machine_info(),
        "results": results,
    }
    partial = PARTS != {"micro", "latency", "self_interruption", "cpu"} or _levers_set()
    report["markdown"] = "" if partial else _markdown(report)
    return report


if __name__ == "__main__":
    import json

    rep = run()
    if os.environ.get("PARLEY_BENCH_DUMP"):  # a partial run's whole results, for exploring
        Path(os.environ["PARLEY_BENCH_DUMP"]).write_text(json.dumps(rep["results"], indent=1, default=str))
    print(rep["markdown"])
    print(json.dumps(rep["results"], indent=1, default=str)[:3000])
