"""The same series on two providers in one go, with one report side by side: the offline engine over the
OpenAI Realtime dialect and over the Gemini Live dialect (real audio, the engine's VAD, ASR and TTS, each
through its own Parley adapter)."""

from __future__ import annotations

import asyncio
import json

import pytest

from desktop.core.series_report import SeriesTurn, providers_markdown
from desktop.providers import ProviderChoice
from desktop.series_compare import compare_providers
from desktop.session import LiveSession, SessionOptions
from tests.conftest import AUDIO
from tests.gemini_oracle import check_client_message
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until

OPENAI_ENGINE = ProviderChoice("engine", "offline engine (OpenAI dialect)", None)
GEMINI_ENGINE = ProviderChoice("engine", "offline engine (Gemini dialect)", None, dialect="gemini")


def test_the_side_by_side_report():
    a = [SeriesTurn("1 time.wav", "/x/1", "answered", "What time is it?", "Noon.", 400, 30, 12),
         SeriesTurn("2 story.wav", "/x/2", "answered", "A story", "Once upon a time", 700, 40, 90, True, 1500,
                    "Once upon")]
    b = [SeriesTurn("1 time.wav", "/x/1", "answered", "What time is it", "It is noon.", 650, 20, 10),
         SeriesTurn("2 story.wav", "/x/2", "no answer")]
    text = providers_markdown([("A", a), ("B", b)], started="2026-12-07 12:00:00", settings="server VAD",
                              notes={"B": "cannot do truncating"})
    assert "| A | 2 / 2 | 550 | 700 | 70 / 102 | 1 | — |" in text
    assert "| B | 1 / 2 | 650 | 650 | 20 / 10 | 0 | — |" in text
    assert "- B: cannot do truncating" in text
    assert "| A | answered (cut at 1.5 s) | A story | Once upon ~~a time~~ | 700 | 40 / 90 |" in text
    assert "| B | no answer | — | — | — | — |" in text


@pytest.mark.slow
def test_one_series_on_two_dialects_of_the_engine(tmp_path, qasync_loop):
    session = LiveSession(SessionOptions(OPENAI_ENGINE, audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False))
    session.record_sent = True
    files = [str(AUDIO / "what_time.wav"), str(AUDIO / "hello_weather.wav")]

    async def scenario():
        assert await session.start(), session.status
        try:
            return await asyncio.wait_for(compare_providers(session, [OPENAI_ENGINE, GEMINI_ENGINE], files, tmp_path),
                                          240)
        finally:
            await session.stop()

    result = qasync_loop.run_until_complete(scenario())
    assert not result.failed
    assert [name for name, _ in result.runs] == [OPENAI_ENGINE.label, GEMINI_ENGINE.label]
    for name, turns in result.runs:
        assert [t.outcome for t in turns] == ["answered", "answered"], (name, [(t.outcome, t.detail) for t in turns])
        assert "time" in turns[0].heard.lower() and "weather" in turns[1].heard.lower(), name
        assert all(t.answer and t.voice_ms is not None and t.tokens_out for t in turns), (name, turns)
    report = result.report_path.read_text()
    assert f"| {OPENAI_ENGINE.label} | 2 / 2 |" in report and f"| {GEMINI_ENGINE.label} | 2 / 2 |" in report
    assert "cannot do truncating" in report  # what the Gemini dialect cannot do is said beside its figures
    record = json.loads(result.report_path.with_suffix(".json").read_text())
    assert record["format"] == "parley-compare/1" and len(record["runs"]) == 2
    # Every message sent on each wire was valid for its protocol.
    gemini_messages = [m for m in session.sent_wire if "type" not in m]
    openai_events = [m for m in session.sent_wire if "type" in m]
    assert gemini_messages and openai_events
    for message in gemini_messages:
        check_client_message(message)
    for event in openai_events:
        validate_client_event(event)


@pytest.mark.slow
def test_compare_from_the_command_line(tmp_path):
    """`parley --series FILE… --compare engine engine:gemini --report R.md`: one report, exit code 0."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PARLEY_DISABLE_KEYRING="1", PARLEY_NO_SOUND_SERVER_START="1")
    env.pop("OPENAI_API_KEY", None)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                     ("XDG_CACHE_HOME", "cache")):
        env[var] = str(tmp_path / sub)
    report = tmp_path / "compare.md"
    result = subprocess.run([sys.executable, "-m", "desktop.ui.app", "--offline", "--no-speaker",
                             "--input-device", "no such microphone", "--series", str(AUDIO / "what_time.wav"),
                             "--compare", "engine", "engine:gemini", "--report", str(report)],
                            env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, (result.returncode, result.stdout[-800:], result.stderr[-2000:])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("offline engine: 1 file: 1 answered")
    assert lines[1].startswith("offline engine (Gemini dialect): 1 file: 1 answered")
    text = report.read_text()
    assert "| offline engine | 1 / 1 |" in text and "| offline engine (Gemini dialect) | 1 / 1 |" in text
    bad = subprocess.run([sys.executable, "-m", "desktop.ui.app", "--compare", "engine"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--compare needs --series" in bad.stderr
