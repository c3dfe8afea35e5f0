"""Soak: a long simulated conversation against the offline engine, with the real window, measuring memory and
how responsive the UI stays.

    python -m bench soak                      # 60 minutes (PARLEY_SOAK_MINUTES overrides)
    python -m bench.soak --minutes 5          # a shorter run, same figures

One process holds the real `MainWindow` (offscreen) and a `LiveSession` on a qasync loop, connected to the
engine child process. A feeder plays 20 ms microphone chunks in real time: a spoken fixture utterance, then
silence, in a cycle; every third turn is typed instead. So the whole path runs for the whole time: audio
appends at 50/s, server VAD, Whisper, the responder, Piper, playback through the device-less clock, the
transcript store, the event inspector's ring, and the transcript view repainting a growing conversation.

Figures: the app's RSS (VmRSS) at the start (after the first answer) and the end, its growth (goal ≤ 30 MB),
the engine's RSS, and the UI's responsiveness — how late a 50 ms Qt timer fires (p50 / p95 / max), sampled the
whole time — plus turns answered and errors seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._common import ROOT, summarize

AUDIO = ROOT / "tests" / "fixtures" / "audio"
UTTERANCES = ["what_time.wav", "hello_weather.wav", "repeat_after_me.wav", "seven_times_eight.wav", "thank_you.wav", "moon_distance.wav"]
TYPED = ["Tell me a story.", "What time is it?", "Repeat after me: the soak goes on.", "Hello there!"]
SILENCE_BETWEEN_S = 12.0
GOAL_RSS_GROWTH_MB = 30.0


def _rss_mb(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def soak(minutes: float) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PARLEY_DISABLE_KEYRING", "1")
    os.environ.pop("OPENAI_API_KEY", None)
    import tempfile

    # Private user directories: the soak's transcript and settings never mix with the user's.
    home = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        os.environ[var] = str(home / sub)

    import qasync
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop.audio.file_source import read_wav_24k
    from desktop.providers import choose_provider
    from desktop.session import LiveSession, SessionOptions
    from desktop.ui.main_window import MainWindow

    logging.basicConfig(level=logging.WARNING)
    errors: list[str] = []

    class _Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if len(errors) < 50:
                errors.append(record.getMessage()[:200])

    logging.getLogger().addHandler(_Errors(logging.ERROR))

    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = MainWindow(keep_layout=False)  # the user's saved window layout is neither used nor changed
    window.resize(900, 700)
    window.show()
    session = LiveSession(SessionOptions(choose_provider(environ={}), use_speaker=False))
    session._start_input = lambda: None  # the feeder below is the microphone
    window.attach(session)
    clips = [read_wav_24k(AUDIO / name) for name in UTTERANCES]
    chunk = 480  # 20 ms at 24 kHz

    lateness_ms: list[float] = []
    rss: list[tuple[float, float]] = []
    engine_rss: list[tuple[float, float]] = []
    load_samples: list[tuple[int, list[float]]] = []
    state: dict[str, Any] = {"turns": 0, "typed": 0, "spoken": 0}

    timer = QTimer()
    timer.setInterval(50)
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def on_tick() -> None:
        now = clock.elapsed()
        lateness_ms.append(max(0.0, now - last[0] - 50))
        last[0] = now

    timer.timeout.connect(on_tick)

    def answered() -> int:
        return sum(1 for i in session.client.conversation if i.role == "assistant" and i.text_final)

    async def feeder(deadline: float) -> None:
        silence = np.zeros(chunk, dtype=np.int16)
        turn = 0
        t_next = time.monotonic()
        while time.monotonic() < deadline:
            if turn % 3 == 2:
                session.send_text(TYPED[turn % len(TYPED)])
                state["typed"] += 1
                pcm = np.zeros(0, dtype=np.int16)
            else:
                pcm = clips[turn % len(clips)]
                state["spoken"] += 1
            frames = [pcm[i : i + chunk] for i in range(0, len(pcm) - chunk + 1, chunk)]
            frames += [silence] * int(SILENCE_BETWEEN_S * 50)
            for frame in frames:
                t_next += 0.02
                delay = t_next - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                session._on_input_chunk(frame)
                if time.monotonic() >= deadline:
                    return
            turn += 1

    async def sampler(deadline: float, t0: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(5.0)
            t = time.monotonic() - t0
            value = _rss_mb()
            if value is not None:
                rss.append((t, value))
            if session.engine is not None and session.engine._proc is not None:
                e = _rss_mb(session.engine._proc.pid)
                if e is not None:
                    engine_rss.append((t, e))
            if len(rss) % 60 == 1:  # every ~5 minutes: the machine's load, to read the UI figures against
                load_samples.append((round(t), [round(x, 2) for x in os.getloadavg()]))

    async def main() -> dict[str, Any]:
        ok = await session.start()
        if not ok:
            raise RuntimeError(f"the session did not start: {session.status}")
        session.send_text("Hello!")  # warm up every model once before the baseline
        t_wait = time.monotonic()
        while answered() < 1 and time.monotonic() - t_wait < 60:
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        baseline = _rss_mb() or 0.0
        engine_base = _rss_mb(session.engine._proc.pid) if session.engine and session.engine._proc else None
        t0 = time.monotonic()
        deadline = t0 + minutes * 60
        last[0] = clock.elapsed()  # measure from now: the start-up before this is not UI lateness
        timer.start()
        await asyncio.gather(feeder(deadline), sampler(deadline, t0))
        timer.stop()
        await asyncio.sleep(2)
        end = _rss_mb() or 0.0
        state["turns"] = answered()
        state["answers_with_text"] = sum(1 for i in session.client.conversation if i.role == "assistant" and i.text)
        state["items"] = len(session.client.conversation)
        state["reconnects"] = session.drops
        await session.stop()
        return {"baseline": baseline, "end": end, "engine_base": engine_base}

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    t_start = time.monotonic()
    with loop:
        figures = loop.run_until_complete(main())
    wall = time.monotonic() - t_start
    window.reliability_ui.close()
    growth = figures["end"] - figures["baseline"]
    peak = max([v for _, v in rss] + [figures["end"]])
    # The trend over the second half (after caches have filled) tells a leak from warm-up.
    half = [(t, v) for t, v in rss if t >= minutes * 30]
    slope = float(np.polyfit([t for t, _ in half], [v for _, v in half], 1)[0]) * 3600 if len(half) >= 3 else None
    results = {
        "minutes": minutes,
        "wall_seconds": round(wall, 1),
        "turns_answered": state["turns"],
        "answers_with_text": state.get("answers_with_text"),
        "spoken_turns_fed": state["spoken"],
        "typed_turns_fed": state["typed"],
        "conversation_items": state.get("items"),
        "app_rss_mb_start": round(figures["baseline"], 1),
        "app_rss_mb_end": round(figures["end"], 1),
        "app_rss_mb_peak": round(peak, 1),
        "app_rss_growth_mb": round(growth, 1),
        "app_rss_trend_mb_per_hour_second_half": None if slope is None else round(slope, 1),
        "goal_rss_growth_mb": GOAL_RSS_GROWTH_MB,
        "engine_rss_mb_start": None if figures["engine_base"] is None else round(figures["engine_base"], 1),
        "engine_rss_mb_end": round(engine_rss[-1][1], 1) if engine_rss else None,
        "ui_timer_lateness_ms": summarize(lateness_ms),
        "errors_logged": len(errors),
        "first_errors": errors[:5],
        "rss_samples": [(round(t), round(v, 1)) for t, v in rss[:: max(1, len(rss) // 60)]],
        "engine_rss_samples": [(round(t), round(v, 1)) for t, v in engine_rss[:: max(1, len(engine_rss) // 60)]],
        "load_average_samples": load_samples,
    }
    return results


def _load_range(r: dict[str, Any]) -> str:
    ones = [load[0] for _, load in r.get("load_average_samples") or []]
    return f"{min(ones)}–{max(ones)} ({len(ones)} samples)" if ones else "not recorded"


def markdown(r: dict[str, Any]) -> str:
    lat = r["ui_timer_lateness_ms"]
    verdict = "within" if r["app_rss_growth_mb"] <= r["goal_rss_growth_mb"] else "**over**"
    return "\n".join(
        [
            f"A {r['minutes']:g}-minute simulated conversation with the offline engine and the real window (offscreen): "
            f"{r['spoken_turns_fed']} spoken and {r['typed_turns_fed']} typed turns fed, {r['turns_answered']} complete answers ({r['answers_with_text']} with text, the rest interrupted or cut short), "
            f"{r['conversation_items']} transcript items at the end.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| app RSS after warm-up → end | {r['app_rss_mb_start']} → {r['app_rss_mb_end']} MB (peak {r['app_rss_mb_peak']} MB) |",
            f"| app RSS growth | **{r['app_rss_growth_mb']} MB** ({verdict} the {r['goal_rss_growth_mb']:g} MB goal) |",
            f"| app RSS trend, second half | {r['app_rss_trend_mb_per_hour_second_half']} MB/hour |",
            f"| engine RSS start → end | {r['engine_rss_mb_start']} → {r['engine_rss_mb_end']} MB |",
            f"| UI: lateness of a 50 ms Qt timer | median {lat['median']} ms, p95 {lat['p95']} ms, max {lat['max']} ms ({lat['n']} ticks) |",
            f"| machine load average (1 min) during the run | {_load_range(r)} |",
            f"| errors logged | {r['errors_logged']} |",
        ]
    )


def run(minutes: float | None = None) -> dict[str, Any]:
    minutes = minutes if minutes is not None else float(os.environ.get("PARLEY_SOAK_MINUTES", "60"))
    results = soak(minutes)
    return {
        "benchmark": "soak",
        "command": f"PARLEY_SOAK_MINUTES={minutes:g} ./dev bench soak   (or: .venv/bin/python -m bench.soak --minutes {minutes:g})",
        "results": results,
        "markdown": markdown(results),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("PARLEY_SOAK_MINUTES", "60")))
    parser.add_argument("--no-save", action="store_true", help="print the figures without writing bench/results/soak.json")
    args = parser.parse_args()
    report = run(args.minutes)
    if not args.no_save:
        from ._common import write_result

        write_result("soak", report)
    print(json.dumps(report["results"], indent=1))
    print(report["markdown"])
