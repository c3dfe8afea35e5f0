"""Voice latency and barge-in latency through the offline engine, on its OpenAI Realtime and Gemini Live dialects.

    ./dev bench dialects          (or .venv/bin/python -m bench dialects)

One run, one PulseAudio stage (bench/_barge_in_stage.py: the microphone and the speaker are the two channels of
ONE null sink, recorded as one stereo file, so the user's voice and the assistant's voice are on the same sample
clock), ONE engine process, and two LiveSessions connected to it at the same time: one through Parley's OpenAI
Realtime adapter (`/v1/realtime`), one through its Gemini Live adapter (GEMINI_LIVE_PATH). Both run with the
app's defaults (server VAD, local barge-in on, AEC, a real speaker stream). The trials alternate between the two
dialects one by one (the order swapped every round), so that both share the machine's load as it drifts; the
session whose turn it is not is muted (Audio → Mute microphone: it sends silence and hears nothing).

1. **Voice latency.** A fixture from tests/fixtures/audio is played into the microphone (paplay on the stage).
   Latency = from the end of speech in the microphone channel (its last sample above SPEECH_END_DBFS) to the
   first audible sample of the answer in the speaker channel (above AUDIBLE_DBFS): what the user waits, with the
   server VAD's silence wait, recognition, the answer, synthesis, the client and the speaker's buffer. Also the
   session's own `Timing("speech_end_to_first_audio")` (client receipt of the end of speech, i.e. OpenAI's
   `input_audio_buffer.speech_stopped` / Gemini's `voiceActivity` ACTIVITY_END, to the first answer audio queued
   for playback), and a breakdown on the app's clock.
2. **Barge-in latency** (bench/barge_in.py's method): the assistant tells a long story on a typed request; after a
   random 2.0-3.5 s "Stop talking, please." is played into the microphone. Latency = the onset of speech at the
   microphone (first sample above ONSET_DBFS) to the last audible sample of the assistant before the speaker
   stays silent for SILENT_AFTER_S. A trial whose onset falls in a pause of the story measures nothing and is
   repeated. The server's signal is timed too: OpenAI `input_audio_buffer.speech_started`; Gemini
   `serverContent.interrupted` (and `voiceActivity` ACTIVITY_START, which the engine sends beside it). The
   interruption is then answered (Gemini always answers a turn; the OpenAI session keeps the default
   create_response=True too, for the same procedure); that answer is cancelled as soon as it starts, outside the
   measured window.

The recording's samples are put on the app's clock (time.monotonic) by watching the recording file grow
(`_ClockedRecording`): the earliest (time - samples written / rate) over the trial is where sample 0 was; this is
late by parec's smallest buffering (~10 ms), so the "onset → server signal" times read up to ~10-20 ms short.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine_info, summarize
from bench.barge_in import (
    AUDIBLE_DBFS,
    ONSET_DBFS,
    OUTPUT_LATENCY_S,
    SILENT_AFTER_S,
    STORY,
    VOICE,
    _cut_after,
    _ending_level_db,
    load_average,
)
from tests.waiting import wait_until as _wait

AUDIO = ROOT / "tests" / "fixtures" / "audio"
DIALECTS = ("openai", "gemini")
LABELS = {"openai": "OpenAI Realtime dialect", "gemini": "Gemini Live dialect"}
#: Questions whose answers are short (the rule-based responder: the time, "You're welcome.", a repetition), so a
#: trial does not wait through a long answer before the next one.
VOICE_FIXTURES = ["what_time.wav", "thank_you.wav", "repeat_after_me.wav"]
TRIALS = int(os.environ.get("PARLEY_BENCH_DIALECT_TRIALS", "12"))  # valid trials per dialect and kind
#: Seconds of trials after the warm-up; no new round starts after this (the whole benchmark stays ~6 min).
BUDGET_S = float(os.environ.get("PARLEY_BENCH_DIALECT_BUDGET_S", "320"))
SPEECH_END_DBFS = -40.0  # as bench/latency.py
KEPT_PLAYING_MS = 1000.0  # a barge-in "latency" above this: the answer kept playing
#: Audible speaker audio this long after the cut (before the next answer) counts as late audio of the cancelled answer.
LATE_AUDIBLE_MS = 5.0
#: The user starts speaking once the speaker has been handed speech for this long (at most MAX_ALIGN_S after the
#: random 2.0-3.5 s): an onset in a pause of the story measures nothing and would be repeated.
SPEAKING_SPAN_S = 0.08
#: Extra pause before a voice trial that follows a barge-in trial (the engine recognised and answered the
#: interruption moments ago; that answer was cancelled, but its synthesis may still be running).
VOICE_SETTLE_S = 0.8
SPEAKING_DBFS = -40.0
MAX_ALIGN_S = 0.6

_TYPE_RE = re.compile(r'\{\s*"type"\s*:\s*"([^"]+)"')
_OPENAI_KINDS = {"input_audio_buffer.speech_started": "speech_started",
                 "input_audio_buffer.speech_stopped": "speech_stopped",
                 "response.output_audio.delta": "audio"}


def _level(dbfs: float) -> float:
    return 32768.0 * 10 ** (dbfs / 20)


def _provider(dialect: str):
    from desktop.providers import ProviderChoice

    if dialect == "gemini":
        return ProviderChoice("engine", "offline engine (Gemini dialect)", None, dialect="gemini")
    return ProviderChoice("engine", "offline engine (OpenAI dialect)", None)


# ---------------------------------------------------------------------------------------------- probes
class _ClockedRecording:
    """The stage's recording (left = microphone, right = speaker), with its sample 0 on time.monotonic()."""

    def __init__(self, stage, path: Path) -> None:
        from bench._barge_in_stage import RATE

        self.rate = RATE
        self.path = path
        self.stage = stage
        self.points: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self.proc = stage.record(path)
        self._thread = threading.Thread(target=self._watch, name="rec-clock", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                size = os.path.getsize(self.path)
            except OSError:
                size = 0
            now = time.monotonic()
            if size:
                self.points.append((now, size // 4))
            time.sleep(0.005)

    async def started(self, timeout: float = 3.0) -> bool:
        return await _wait(lambda: len(self.points) >= 3 and self.points[-1][1] > self.rate // 20, timeout)

    def stop(self) -> None:
        self.stage.stop(self.proc)
        self._stop.set()
        self._thread.join(1)

    def origin(self) -> float:
        """time.monotonic() of sample 0: the earliest estimate over the recording (writes only come late)."""
        return min(t - frames / self.rate for t, frames in self.points)

    def at(self, sample: int) -> float:
        return self.origin() + sample / self.rate

    def sample(self, t: float) -> int:
        return round((t - self.origin()) * self.rate)


class _Probe:
    """What one session did, with times: its notifications, actions, server signals and queued answer audio."""

    def __init__(self, session, dialect: str) -> None:
        from bench._barge_in_probes import ActionLog

        self.session = session
        self.dialect = dialect
        self.notes: list[tuple[float, Any]] = []
        self.marks: list[tuple[float, str]] = []  # (time, normalised server signal)
        self.outputs: list[tuple[float, str, int]] = []  # (time, item id, samples) of answer audio queued
        session.subscribe(lambda n: self.notes.append((time.monotonic(), n)))
        self.actions = ActionLog(session)
        session.output_taps.append(lambda item_id, pcm: self.outputs.append((time.monotonic(), item_id, len(pcm))))
        receive = session._on_message  # the transport is given this attribute when it connects

        def tapped(text: str) -> None:
            now = time.monotonic()
            kind = self._classify(text)
            if kind:
                self.marks.append((now, kind))
            receive(text)

        session._on_message = tapped
        self.played: deque[tuple[float, float]] = deque(maxlen=64)  # (time, dBFS) of blocks handed to the speaker

    def watch_speaker(self) -> None:
        """After start: note the level of each block the speaker is handed (the AEC's far-end tap)."""
        feed = self.session.playback.far_end_tap
        played = self.played

        def tap(block: np.ndarray) -> None:
            x = np.asarray(block, dtype=np.float32).reshape(-1)
            played.append((time.monotonic(), 10 * np.log10(float(np.mean(x * x)) + 1e-12)))
            if feed is not None:
                feed(block)

        self.session.playback.far_end_tap = tap

    def speaking_now(self, span_s: float = SPEAKING_SPAN_S, dbfs: float = SPEAKING_DBFS) -> bool:
        """The blocks handed to the speaker in the last `span_s` were all speech (they are audible around now)."""
        now = time.monotonic()
        recent = [level for t, level in list(self.played) if t >= now - span_s]
        return len(recent) >= 2 and min(recent) > dbfs

    def _classify(self, text: str) -> str | None:
        if self.dialect == "openai":
            m = _TYPE_RE.match(text)
            return _OPENAI_KINDS.get(m.group(1)) if m else None
        if len(text) > 2000:  # answer audio
            return "audio" if '"inlineData"' in text else None
        if '"interrupted"' in text:
            return "interrupted"
        if '"voiceActivity"' in text:
            try:
                activity = json.loads(text).get("voiceActivity") or {}
            except ValueError:
                return None
            kind = activity.get("voiceActivityType") or activity.get("type")
            return {"ACTIVITY_START": "speech_started", "ACTIVITY_END": "speech_stopped"}.get(kind)
        return None

    def first_mark(self, kind: str, after: float) -> float | None:
        return next((t for t, k in self.marks if k == kind and t >= after), None)


class _SharedEngine:
    """The first session's engine, lent to the second session (its start and stop are the first session's)."""

    def __init__(self, engine) -> None:
        self._engine = engine

    async def start(self, timeout: float = 30.0):
        return self._engine.port

    async def stop(self) -> None:
        return None

    def __getattr__(self, name: str):
        return getattr(self._engine, name)


def _quiet(session) -> bool:
    """Nothing plays and no answer is under way (Gemini's cancelled answer ends when its audio would have)."""
    return (not session.playback.is_playing() and not session.playback.is_paused()
            and session.client.active_response is None)


# ---------------------------------------------------------------------------------------------- trials
async def _voice_trial(stage, probe: _Probe, fixture: str, path: Path) -> dict[str, Any]:
    from desktop.session import Timing

    session = probe.session
    rec = _ClockedRecording(stage, path)
    trial: dict[str, Any] = {"dialect": probe.dialect, "kind": "voice", "fixture": fixture, "load": load_average()}
    try:
        if not await rec.started():
            raise RuntimeError("the stage's recording did not start")
        await asyncio.sleep(0.1)
        n_notes, t_say = len(probe.notes), time.monotonic()
        voice = stage.say(AUDIO / fixture)
        timed = lambda: next((n.seconds for _, n in probe.notes[n_notes:]
                              if isinstance(n, Timing) and n.name == "speech_end_to_first_audio"), None)
        answered = await _wait(lambda: timed() is not None, 25)
        await _wait(lambda: voice.poll() is not None, 10)
        await _wait(lambda: _quiet(session), 20)
        await asyncio.sleep(0.15)
    finally:
        rec.stop()
    from bench._barge_in_stage import Stage

    left, right = Stage.read(path)
    rate = rec.rate
    loud = np.nonzero(np.abs(left.astype(np.int32)) > _level(SPEECH_END_DBFS))[0]
    if not answered or len(loud) == 0:
        trial["failed"] = "no answer" if len(loud) else "no speech in the microphone channel"
        return trial
    start, end = int(loud[0]), int(loud[-1]) + 1
    audible = np.nonzero(np.abs(right.astype(np.int32)) > _level(AUDIBLE_DBFS))[0]
    after = audible[audible >= end]
    before = audible[(audible >= max(0, start - int(0.3 * rate))) & (audible < end)]
    if len(after) == 0:
        trial["failed"] = "the answer was never audible at the speaker"
        return trial
    first = int(after[0])
    t_end = rec.at(end)
    t_stopped = probe.first_mark("speech_stopped", t_say)
    t_queued = next((t for t, _, _ in probe.outputs if t >= t_say), None)
    t_audio = probe.first_mark("audio", t_stopped) if t_stopped is not None else None
    items = list(session.client.conversation)
    user = next((i.text for i in reversed(items) if i.role == "user"), None)
    answer = next((i.text for i in reversed(items) if i.role == "assistant"), None)
    trial.update({
        "speech_ms": round((end - start) * 1000 / rate, 1),
        "latency_ms": round((first - end) * 1000 / rate, 1),
        "session_timing_ms": round(timed() * 1000, 1),
        "vad_wait_ms": None if t_stopped is None else round((t_stopped - t_end) * 1000, 1),
        "queued_to_audible_ms": None if t_queued is None else round((rec.at(first) - t_queued) * 1000, 1),
        "stopped_to_first_audio_message_ms": None if t_audio is None else round((t_audio - t_stopped) * 1000, 1),
        "audio_message_to_queued_ms": None if t_audio is None or t_queued is None else round((t_queued - t_audio) * 1000, 1),
        "heard": user, "answer": (answer or "")[:80],
        "audible_before_speech_end_ms": round(len(before) * 1000 / rate, 1),
        "speech_segments": sum(1 for t, k in probe.marks if k == "speech_stopped" and t >= t_say),
    })
    return trial


async def _barge_trial(stage, probe: _Probe, path: Path) -> dict[str, Any]:
    from desktop.core.actions import (
        BargeInHappened,
        DuckPlayback,
        PausePlayback,
        ResumePlayback,
        StopPlayback,
        TurnState,
    )

    session = probe.session
    rec = _ClockedRecording(stage, path)
    trial: dict[str, Any] = {"dialect": probe.dialect, "kind": "barge_in", "load": load_average()}
    t_follow = None
    try:
        if not await rec.started():
            raise RuntimeError("the stage's recording did not start")
        n_out = len(probe.outputs)
        session.send_text(STORY)
        if not await _wait(lambda: session.client.state == TurnState.ASSISTANT_SPEAKING and probe.outputs[n_out:], 30):
            trial["failed"] = "the story did not start"
            return trial
        story = probe.outputs[n_out][1]
        await asyncio.sleep(random.uniform(2.0, 3.5))
        t_aligned = time.monotonic()
        await _wait(probe.speaking_now, MAX_ALIGN_S, step=0.005)
        trial["aligned_to_speech_ms"] = round((time.monotonic() - t_aligned) * 1000, 1)
        n_notes, n_actions, t_say = len(probe.notes), len(probe.actions.entries), time.monotonic()
        underflows = getattr(session._output, "underflows", 0) or 0
        voice = stage.say(VOICE)
        barged = await _wait(lambda: any(isinstance(n, BargeInHappened) for _, n in probe.notes[n_notes:]), 10)
        t_barge = next((t for t, n in probe.notes[n_notes:] if isinstance(n, BargeInHappened)), None)
        await _wait(lambda: voice.poll() is not None, 10)
        if not barged:
            session.cancel_response()
        # The interruption is answered: note when that answer starts (the end of the measured window), then cancel it.
        follow = lambda: next((t for t, item, _ in probe.outputs if t >= t_say and item != story), None)
        if await _wait(lambda: follow() is not None, 8):
            t_follow = follow()
            await asyncio.sleep(0.1)
            session.cancel_response()
        await _wait(lambda: not session.playback.is_playing() and not session.playback.is_paused(), 5)
        await asyncio.sleep(0.3)
        trial["speaker_underflows"] = (getattr(session._output, "underflows", 0) or 0) - underflows
    finally:
        rec.stop()
    from bench._barge_in_stage import Stage

    left, right = Stage.read(path)
    rate = rec.rate
    lo = _level(ONSET_DBFS)
    loud = np.nonzero(np.abs(left.astype(np.int32)) > lo)[0]
    if len(loud) == 0:
        trial["failed"] = "no speech in the microphone channel"
        return trial
    onset = int(loud[0])
    t_onset = rec.at(onset)
    window_end = min(len(right), rec.sample(t_follow)) if t_follow is not None else len(right)
    cut, audible_at_onset = _cut_after(right[:window_end], onset, rate)
    late_story_samples = sum(n for t, item, n in probe.outputs if item == story and t_barge is not None and t > t_barge)
    silencing = next((t for t, a in probe.actions.entries if t >= t_say
                      and isinstance(a, (DuckPlayback, PausePlayback, StopPlayback))), None)
    ms = lambda t: None if t is None else round((t - t_onset) * 1000, 1)
    # What the app did to playback, in order (ms from the onset): a hold released and made again shows here.
    steps = []
    for t, a in probe.actions.entries[n_actions:]:
        if isinstance(a, (DuckPlayback, PausePlayback, StopPlayback, ResumePlayback)) and (t_follow is None or t < t_follow):
            name = type(a).__name__.replace("Playback", "").lower()
            detail = getattr(a, "cause", None) or getattr(a, "reason", None) or ("tentative" if getattr(a, "tentative", False) else "")
            steps.append(f"{name}{f' ({detail})' if detail else ''} {ms(t):+.0f}")
    trial["playback_actions"] = steps
    trial.update({
        "onset_after_play_ms": round((t_onset - t_say) * 1000, 1),
        "barged_in": barged,
        "app_barge_in_ms": ms(t_barge),
        "first_silencing_action_ms": ms(silencing),
        "server_speech_started_ms": ms(probe.first_mark("speech_started", t_say)),
        "server_interrupted_ms": ms(probe.first_mark("interrupted", t_say)) if probe.dialect == "gemini" else None,
        "late_story_audio_queued_ms": round(late_story_samples * 1000 / 24000, 1),
        "next_answer_after_onset_ms": ms(t_follow),
    })
    if cut is None or not audible_at_onset:
        trial["skipped"] = "speaker silent at the onset (a pause in the story)"
        return trial
    audible = np.nonzero(np.abs(right[:window_end].astype(np.int32)) > _level(AUDIBLE_DBFS))[0]
    late = audible[audible > cut + int(SILENT_AFTER_S * rate)]
    trial.update({
        "latency_ms": round((cut - onset) * 1000 / rate, 1),
        "last_ms_level_db": _ending_level_db(right, cut, rate),
        "late_audible_ms": round(len(late) * 1000 / rate, 1),
    })
    return trial


async def _warm_up(stage, probes: dict[str, _Probe], tmp: Path) -> None:
    """A typed answer (AEC converges, the local barge-in's warm-up passes) and an unmeasured spoken turn each."""
    from desktop.core.actions import TurnState

    for dialect, probe in probes.items():
        _activate(probes, dialect)
        s = probe.session
        s.send_text("Who are you?")
        await _wait(lambda s=s: s.client.state == TurnState.ASSISTANT_SPEAKING, 30)
        await _wait(lambda s=s: _quiet(s), 30)
        await asyncio.sleep(0.3)
        await _voice_trial(stage, probe, VOICE_FIXTURES[0], tmp / f"warm-{dialect}.raw")


def _activate(probes: dict[str, _Probe], dialect: str) -> None:
    for name, probe in probes.items():
        probe.session.muted = name != dialect


async def _run(stage, tmp: Path) -> dict[str, Any]:
    from desktop import brain_switch
    from desktop.core.session_config import SessionConfig
    from desktop.gc_tuning import freeze_startup_objects
    from desktop.session import LiveSession, SessionOptions

    sessions = {d: LiveSession(SessionOptions(_provider(d), config=SessionConfig(), output_latency_s=OUTPUT_LATENCY_S))
                for d in DIALECTS}
    probes = {d: _Probe(s, d) for d, s in sessions.items()}
    for s in sessions.values():
        s.muted = True  # until its turn
    trials: list[dict[str, Any]] = []
    started: list[Any] = []
    try:
        first = sessions[DIALECTS[0]]
        if not await first.start():
            raise RuntimeError(f"session did not start: {first.status}")
        started.append(first)
        saved = brain_switch.engine_for  # looked up at each start: the second session gets the same engine

        async def shared(_session):
            return _SharedEngine(first.engine)

        brain_switch.engine_for = shared
        try:
            second = sessions[DIALECTS[1]]
            ok = await second.start()
        finally:
            brain_switch.engine_for = saved
        if not ok:
            raise RuntimeError(f"session did not start: {second.status}")
        started.append(second)
        freeze_startup_objects()  # as the app does once it has started
        for probe in probes.values():
            probe.watch_speaker()
        for s in sessions.values():
            if s.devices is None or not s.devices.input_name or not s.devices.output_name:
                raise RuntimeError(f"no audio devices: {s.devices}")
            await _wait(lambda s=s: s.client.effective is not None, 20)
        await _warm_up(stage, probes, tmp)
        t0 = time.monotonic()
        valid = {(d, k): 0 for d in DIALECTS for k in ("voice", "barge_in")}
        rounds = 0
        while min(valid.values()) < TRIALS and time.monotonic() - t0 < BUDGET_S and rounds < 3 * TRIALS:
            a, b = DIALECTS if rounds % 2 == 0 else DIALECTS[::-1]
            # Each dialect has one voice and one barge-in trial per round, and a session's barge-in trial is not
            # followed by its own next trial at once: Gemini's engine turn (the cancelled answer to the
            # interruption) ends when its audio would have finished playing, some seconds later.
            plan = [(a, "voice"), (b, "barge_in"), (a, "barge_in"), (b, "voice")]
            plan = [(d, k) for d, k in plan if min(valid[(x, k)] for x in DIALECTS) < TRIALS]
            for dialect, kind in plan:
                _activate(probes, dialect)
                session = probes[dialect].session
                t_wait = time.monotonic()
                await _wait(lambda session=session: _quiet(session), 10)
                waited = time.monotonic() - t_wait
                if kind == "voice" and trials and trials[-1]["kind"] == "barge_in":
                    await asyncio.sleep(VOICE_SETTLE_S)  # the engine's work on the interruption's answer is over
                open_response = getattr(session.dialect, "_response", None) is not None
                state = session.client.state.name
                await asyncio.sleep(0.1)
                path = tmp / f"{rounds}-{kind}-{dialect}.raw"
                if kind == "voice":
                    trial = await _voice_trial(stage, probes[dialect], VOICE_FIXTURES[rounds % len(VOICE_FIXTURES)], path)
                else:
                    trial = await _barge_trial(stage, probes[dialect], path)
                trial.update(round=rounds, t_s=round(time.monotonic() - t0, 1), waited_quiet_s=round(waited, 2),
                             response_open_at_start=open_response, state_at_start=state)
                trials.append(trial)
                if "latency_ms" in trial:
                    valid[(dialect, kind)] += 1
                path.unlink(missing_ok=True)
                await _wait(lambda session=session: not session.playback.is_playing() and not session.playback.is_paused(), 5)
                await asyncio.sleep(0.3)
            rounds += 1
        streams = {d: {"mic_latency_s": getattr(getattr(s._source, "_stream", None), "latency", None),
                       "speaker_latency_s": getattr(s._output, "output_latency", None),
                       "speaker_underflows": getattr(s._output, "underflows", None),
                       "renewals": s.renewals, "drops": s.drops}
                   for d, s in sessions.items()}
    finally:
        for s in reversed(started):
            await s.stop()
    return {"trials": trials, "rounds": rounds, "trial_seconds": round(time.monotonic() - t0, 1), "streams": streams}


# ---------------------------------------------------------------------------------------------- report
def _stats(trials: list[dict[str, Any]], dialect: str, kind: str, key: str) -> dict[str, Any]:
    return summarize([t[key] for t in trials if t["dialect"] == dialect and t["kind"] == kind
                      and t.get("latency_ms") is not None and t.get(key) is not None])


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if not a.get("n") or not b.get("n") or not a["median"]:
        return None
    return round(b["median"] / a["median"], 2)


FIGURES = (
    # (result key, kind, trial key, label)
    ("voice_latency_ms", "voice", "latency_ms",
     "**Voice latency**: end of speech at the microphone → first audible answer sample at the speaker"),
    ("voice_session_timing_ms", "voice", "session_timing_ms",
     "… as the session reports it (`Timing(\"speech_end_to_first_audio\")`: receipt of the end of speech → first answer audio queued)"),
    ("voice_vad_wait_ms", "voice", "vad_wait_ms",
     "… end of speech → receipt of the server's end of speech (`speech_stopped` / `voiceActivity` END)"),
    ("voice_queued_to_audible_ms", "voice", "queued_to_audible_ms",
     "… first answer audio queued → audible at the speaker"),
    ("barge_in_latency_ms", "barge_in", "latency_ms",
     "**Barge-in latency** (local VAD on): onset of speech at the microphone → last audible sample of the assistant"),
    ("barge_in_first_silencing_action_ms", "barge_in", "first_silencing_action_ms",
     "… onset → the app's first silencing action (duck, hold or stop)"),
    ("barge_in_server_speech_started_ms", "barge_in", "server_speech_started_ms",
     "… onset → server's start of speech (OpenAI `speech_started` / Gemini `voiceActivity` START)"),
    ("barge_in_server_interrupted_ms", "barge_in", "server_interrupted_ms",
     "… onset → Gemini `serverContent.interrupted`"),
)


def _summaries(trials: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind, field, _ in FIGURES:
        per = {d: _stats(trials, d, kind, field) for d in DIALECTS}
        out[key] = {**per, "ratio_gemini_over_openai": _ratio(per["openai"], per["gemini"])}
    for d in DIALECTS:
        barge = [t for t in trials if t["dialect"] == d and t["kind"] == "barge_in"]
        measured = [t for t in barge if t.get("latency_ms") is not None]
        voice = [t for t in trials if t["dialect"] == d and t["kind"] == "voice"]
        out[f"{d}_counts"] = {
            "voice_trials": len(voice),
            "voice_failed": sum(1 for t in voice if t.get("failed")),
            "voice_audible_before_speech_end": sum(1 for t in voice if (t.get("audible_before_speech_end_ms") or 0) > 0),
            "voice_more_than_one_speech_segment": sum(1 for t in voice if (t.get("speech_segments") or 0) > 1),
            "barge_in_trials": len(barge),
            "barge_in_skipped_onset_in_pause": sum(1 for t in barge if t.get("skipped")),
            "barge_in_failed": sum(1 for t in barge if t.get("failed")),
            "barge_in_app_noticed": sum(1 for t in measured if t.get("barged_in")),
            "barge_in_server_speech_started_arrived": sum(1 for t in measured if t.get("server_speech_started_ms") is not None),
            "barge_in_server_interrupted_arrived": (sum(1 for t in measured if t.get("server_interrupted_ms") is not None)
                                                    if d == "gemini" else None),
            "barge_in_kept_playing": sum(1 for t in measured if t["latency_ms"] > KEPT_PLAYING_MS),
            "barge_in_over_200ms": sum(1 for t in measured if t["latency_ms"] > 200),
            "barge_in_playback_resumed_before_stop": sum(1 for t in measured
                                                         if any(a.startswith("resume") for a in t.get("playback_actions") or [])),
            "barge_in_late_audible_after_cut": sum(1 for t in measured if (t.get("late_audible_ms") or 0) > LATE_AUDIBLE_MS),
            "barge_in_late_story_audio_queued": sum(1 for t in measured if (t.get("late_story_audio_queued_ms") or 0) > 0),
        }
    return out


def _cell(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "–"
    return f"{s['median']:.0f} / {s['p95']:.0f} ({s['n']})"


def markdown(results: dict[str, Any]) -> str:
    summ = results["summary"]
    lines = [
        "| figure (ms) | OpenAI dialect: median / p95 (n) | Gemini dialect: median / p95 (n) | Gemini ÷ OpenAI (medians) |",
        "|---|---:|---:|---:|",
    ]
    for key, _, _, label in FIGURES:
        s = summ[key]
        ratio = s["ratio_gemini_over_openai"]
        lines.append(f"| {label} | {_cell(s['openai'])} | {_cell(s['gemini'])} | {'–' if ratio is None else f'{ratio:.2f}'} |")
    o, g = summ["openai_counts"], summ["gemini_counts"]
    lines += [
        "",
        "| barge-in trials | OpenAI dialect | Gemini dialect |",
        "|---|---:|---:|",
        f"| measured (onset while the story was audible) | {summ['barge_in_latency_ms']['openai']['n']} | {summ['barge_in_latency_ms']['gemini']['n']} |",
        f"| skipped: onset in a pause of the story | {o['barge_in_skipped_onset_in_pause']} | {g['barge_in_skipped_onset_in_pause']} |",
        f"| the app registered the barge-in | {o['barge_in_app_noticed']} | {g['barge_in_app_noticed']} |",
        f"| server's start of speech arrived | {o['barge_in_server_speech_started_arrived']} | {g['barge_in_server_speech_started_arrived']} |",
        f"| Gemini `interrupted` arrived | – | {g['barge_in_server_interrupted_arrived']} |",
        f"| latency > 200 ms | {o['barge_in_over_200ms']} | {g['barge_in_over_200ms']} |",
        f"| playback held, then resumed before it was stopped | {o['barge_in_playback_resumed_before_stop']} | {g['barge_in_playback_resumed_before_stop']} |",
        f"| answer kept playing (> {KEPT_PLAYING_MS:.0f} ms) | {o['barge_in_kept_playing']} | {g['barge_in_kept_playing']} |",
        f"| late audio audible > {SILENT_AFTER_S * 1000:.0f} ms after the cut, before the next answer | {o['barge_in_late_audible_after_cut']} | {g['barge_in_late_audible_after_cut']} |",
        f"| audio of the interrupted answer queued after the barge-in | {o['barge_in_late_story_audio_queued']} | {g['barge_in_late_story_audio_queued']} |",
    ]
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> str:
    loads = results["load_average"]
    return f"""\
One engine process, two LiveSessions connected to it at once, one per dialect (Parley's OpenAI Realtime adapter on
`/v1/realtime`, its Gemini Live adapter on the engine's BidiGenerateContent path), app defaults (server VAD, local
barge-in on, AEC, speaker buffer {OUTPUT_LATENCY_S * 1000:.0f} ms). Real audio through the PulseAudio stage of
`bench/barge_in.py` (microphone and speaker on the two channels of one null sink, recorded together); trials
alternate between the dialects one by one (order swapped every round; the other session muted), so both share
the load of this shared 2-core machine.

- **Voice latency:** {', '.join(f'`{f}`' for f in VOICE_FIXTURES)} (short answers) spoken into the microphone,
  from the last microphone sample above {SPEECH_END_DBFS:.0f} dBFS to the first speaker sample above
  {AUDIBLE_DBFS:.0f} dBFS. It includes the server VAD's 500 ms silence wait. Breakdown rows are on the app's
  clock (the recording put on it by watching the file grow; ±~10-20 ms).
- **Barge-in:** `{VOICE.name}` played 2.0–3.5 s into the story `{STORY}`; onset = first microphone sample above
  {ONSET_DBFS:.0f} dBFS, end = last speaker sample above {AUDIBLE_DBFS:.0f} dBFS before {SILENT_AFTER_S * 1000:.0f} ms of
  silence. The voice starts once the speaker has been handed {SPEAKING_SPAN_S * 1000:.0f} ms of speech (waiting at most
  {MAX_ALIGN_S * 1000:.0f} ms more), so that few onsets fall in a pause of the story. The interruption's own answer is
  cancelled as it starts, after the measured window.
- The Gemini dialect's start-of-speech sensitivity: Parley maps the default threshold 0.5 to
  `START_SENSITIVITY_HIGH`, which the engine reads as threshold 0.35 (OpenAI: 0.5).
- Load average (1/5/15 min) at start / end: {loads['start']} / {loads['end']}."""


def run() -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("OPENAI_API_KEY", None)
    from bench._barge_in_stage import Stage
    from tests.pulse_server import pulse_server

    load = {"start": load_average()}
    with pulse_server() as server, tempfile.TemporaryDirectory(prefix="parley-dialects-") as tmp:
        stage = Stage(server)
        try:
            run_ = asyncio.run(_run(stage, Path(tmp)))
        finally:
            stage.close()
    load["end"] = load_average()
    trials = run_["trials"]
    results = {
        "units": {"*_ms": "milliseconds", "ratio_gemini_over_openai": "Gemini dialect median ÷ OpenAI dialect median",
                  "median/p95/min/max": "over n trials, p95 linearly interpolated",
                  "load": "1, 5, 15 min load averages (os.getloadavg)"},
        "method": {"voice_fixtures": VOICE_FIXTURES, "barge_in_voice": VOICE.name, "story": STORY,
                   "speech_end_dbfs": SPEECH_END_DBFS, "onset_dbfs": ONSET_DBFS, "audible_dbfs": AUDIBLE_DBFS,
                   "silent_after_s": SILENT_AFTER_S, "output_latency_s": OUTPUT_LATENCY_S,
                   "trials_per_dialect_target": TRIALS, "alternation": "trial by trial, order swapped every round"},
        "load_average": load,
        "summary": _summaries(trials),
        "rounds": run_["rounds"],
        "trial_seconds": run_["trial_seconds"],
        "streams": run_["streams"],
        "trials": trials,
    }
    return {
        "benchmark": "dialects",
        "title": "Dialects: voice and barge-in latency through the engine, OpenAI Realtime vs Gemini Live",
        "module": "bench/dialects.py",
        "command": ".venv/bin/python -m bench dialects",
        "machine": machine_info(),
        "results": results,
        "notes": notes(results),
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    rep = run()
    print(rep["markdown"])
    print(json.dumps(rep["results"]["summary"], indent=1))
