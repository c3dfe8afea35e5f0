"""A series of sound files, one turn each, against the real engine: each file waits for the previous answer
to finish, a file that cannot be spoken is reported and skipped, Esc stops the rest; the report says what the
model heard and answered, and how fast."""

from __future__ import annotations

import asyncio

import pytest

from desktop.core.series_report import SeriesTurn, series_markdown, summary_line
from desktop.file_series import SeriesProgress
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions
from desktop.ui.file_voice_ui import natural_key
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event
from tests.waiting import wait_until


def test_the_report_has_a_row_per_file_and_a_summary():
    turns = [SeriesTurn("1 time.wav", "/x/1 time.wav", "answered", "What time is it?", "It is 5 PM | ok", 420, 30, 12),
             SeriesTurn("2 noise.wav", "/x/2 noise.wav", "no turn", detail="nothing after 15 s"),
             SeriesTurn("3 story.wav", "/x/3 story.wav", "answered", "A story", "Once upon…", 610, 40, 90, True)]
    assert summary_line(turns) == "3 files: 2 answered, 1 no turn · voice median 515 ms (slowest 610 ms)"
    text = series_markdown(turns, started="2026-11-26 17:00:00", provider="offline engine", settings="server VAD")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3
    assert rows[0] == "| 1 | 1 time.wav | answered | What time is it? | It is 5 PM \\| ok | 420 | 30 / 12 | — |"
    assert "| no turn: nothing after 15 s |" in rows[1] and rows[1].endswith("| — | — |")
    assert "answered (interrupted)" in rows[2]
    assert summary_line([]) == "0 files: none spoken"


def test_numbered_files_run_in_their_numbers_order():
    names = ["/a/10 bye.wav", "/a/2 hello.wav", "/a/1 intro.wav", "/a/Extra.wav"]
    assert sorted(names, key=natural_key) == ["/a/1 intro.wav", "/a/2 hello.wav", "/a/10 bye.wav", "/a/Extra.wav"]


def _session() -> tuple[LiveSession, list]:
    session = LiveSession(SessionOptions(choose_provider(environ={}), audio_in=str(AUDIO / "silence_2s.wav"),
                                         use_speaker=False))
    session.record_sent = True
    notes: list = []
    session.subscribe(notes.append)
    return session, notes


@pytest.mark.slow
def test_a_series_waits_for_each_answer_and_reports_every_file(tmp_path):
    session, notes = _session()
    files = [str(AUDIO / "what_time.wav"), str(AUDIO / "manifest.json"), str(AUDIO / "hello_weather.wav")]

    async def scenario():
        assert await session.start(), session.status
        try:
            series = session.speak_files(files, tmp_path)
            assert await wait_until(lambda: not series.running, 90)
        finally:
            await session.stop()
        return series

    series = asyncio.run(scenario())
    outcomes = [t.outcome for t in series.turns]
    assert outcomes == ["answered", "cannot speak", "answered"], [(t.outcome, t.detail) for t in series.turns]
    first, bad, last = series.turns
    assert "time" in first.heard.lower() and first.answer and first.voice_ms is not None and first.tokens_out
    assert "not a WAV file" in bad.detail
    assert "weather" in last.heard.lower() and last.answer
    # One answer at a time: the second spoken turn began only after the first answer had finished playing.
    users = [i for i in session.client.conversation if i.role == "user"]
    assistants = [i for i in session.client.conversation if i.role == "assistant"]
    assert len(users) == 2 and len(assistants) == 2 and not any(a.interrupted for a in assistants)
    assert [u.spoken_from for u in users] == ["what_time.wav", "hello_weather.wav"]
    report = series.report_path.read_text()
    assert "| 1 | what_time.wav | answered |" in report and "| 2 | manifest.json | cannot speak:" in report
    assert "2 answered, 1 cannot speak" in report
    # What each answer cost (the engine: nothing), per turn and for the run.
    assert first.cost == last.cost == "free (offline)" and bad.cost == ""
    assert "- cost: free (offline) for 2 answers" in report and report.count("| free (offline) |") == 2
    progress = [n for n in notes if isinstance(n, SeriesProgress)]
    assert [(p.index, p.done) for p in progress] == [(0, False), (1, False), (2, False), (3, True)]
    assert progress[-1].report == str(series.report_path)
    for event in session.sent_events:
        validate_client_event(event)


@pytest.mark.slow
def test_esc_stops_the_series(tmp_path):
    session, notes = _session()

    async def scenario():
        assert await session.start(), session.status
        try:
            series = session.speak_files([str(AUDIO / "tell_story.wav"), str(AUDIO / "what_time.wav")], tmp_path)
            assert await wait_until(lambda: session.file_voice is not None and session.file_voice.position_ms > 500, 10)
            session.turns.cancel()  # Esc
            assert await wait_until(lambda: not series.running, 5)
            await asyncio.sleep(1.5)
        finally:
            await session.stop()
        return series

    series = asyncio.run(scenario())
    assert [t.outcome for t in series.turns] == ["stopped", "stopped"]
    assert not [i for i in session.client.conversation if i.role == "user"]
    assert "2 stopped" in series.report_path.read_text()


def test_a_run_compared_with_the_previous_one_says_what_changed():
    from desktop.core.series_report import comparison_markdown, from_record, to_record

    before = [SeriesTurn("a.wav", "/x/a.wav", "answered", "Hello there.", "Hi, how can I help?", 500),
              SeriesTurn("b.wav", "/x/b.wav", "answered", "Thank you", "You're welcome.", 400)]
    started, restored = from_record(to_record(before, "2026-11-26 17:00:00"))
    assert started == "2026-11-26 17:00:00" and restored == before
    assert from_record({"format": "something else"}) is None and from_record([1, 2]) is None
    now = [SeriesTurn("a.wav", "/x/a.wav", "answered", "hello there", "Hi, I'm Ada. How can I help?", 450),
           SeriesTurn("b.wav", "/x/b.wav", "no answer", "Thank you.", "", None)]
    text = comparison_markdown(restored, now, started)
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows[0] == "| 1 | a.wav | answered | same | **changed** | 500 → 450 (-50) |"  # case and stops are not changes
    assert rows[1] == "| 2 | b.wav | **answered → no answer** | same | **changed** | 400 → — |"
    assert "2 of 2 turns changed (outcome, what was heard, or the answer's words). Voice median 450 → 450 ms (+0)." in text


@pytest.mark.slow
def test_running_the_same_files_again_after_changing_the_instructions_shows_what_changed(tmp_path):
    """The regression loop: run, change the prompt, run again; the second report compares with the first."""
    from dataclasses import replace

    session, notes = _session()
    files = [str(AUDIO / "hey_parley.wav"), str(AUDIO / "thank_you.wav")]

    async def scenario():
        assert await session.start(), session.status
        try:
            first = session.speak_files(files, tmp_path)
            assert await wait_until(lambda: not first.running, 60)
            session.update_config(replace(session.client.requested, instructions="You are Ada, a friendly guide."))
            second = session.speak_files(files, tmp_path)
            assert await wait_until(lambda: not second.running, 60)
        finally:
            await session.stop()
        return first, second

    first, second = asyncio.run(scenario())
    assert [t.outcome for t in first.turns + second.turns] == ["answered"] * 4
    assert "Ada" not in first.turns[0].answer and "Ada" in second.turns[0].answer
    assert "Compared with" not in first.report_path.read_text()
    report = second.report_path.read_text()
    rows = [line for line in report.split("## Compared with")[1].splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert rows[0].startswith("| 1 | hey_parley.wav | answered | same | **changed** |"), rows
    assert rows[1].startswith("| 2 | thank_you.wav | answered | same | same |"), rows
    assert "1 of 2 turns changed" in report
    assert "- instructions: You are Ada, a friendly guide." in report
    assert first.report_path.with_suffix(".json").exists() and second.report_path != first.report_path


@pytest.mark.slow
def test_a_barge_in_series_cuts_each_answer_where_it_was_asked_to(tmp_path):
    """Interrupt each answer 2 s into its playback: the next file's voice cuts the story off (truncated to what
    was played), and the report says where each answer was cut."""
    session, notes = _session()
    files = [str(AUDIO / "tell_story.wav"), str(AUDIO / "thank_you.wav")]

    async def scenario():
        assert await session.start(), session.status
        try:
            series = session.speak_files(files, tmp_path, interrupt_after_s=2.0)
            assert await wait_until(lambda: not series.running, 60)
        finally:
            await session.stop()
        return series

    series = asyncio.run(scenario())
    story, thanks = series.turns
    assert [story.outcome, thanks.outcome] == ["answered", "answered"], [(t.outcome, t.detail) for t in series.turns]
    assert story.interrupted and 2000 <= story.cut_at_ms < 4500, story.cut_at_ms
    assert not thanks.interrupted and thanks.answer == "You're welcome."
    truncates = [e for e in session.sent_events if e["type"] == "conversation.item.truncate"]
    assert len(truncates) == 1 and truncates[0]["audio_end_ms"] == story.cut_at_ms
    # The file's first sound paused the story at once, before any voice detection (the loudness onset, which
    # a file reaches because it takes the microphone's place on the capture thread).
    assert session.client.local_barge_in.onset_holds >= 1, "no onset hold"
    report = series.report_path.read_text()
    assert f"answered (cut at {story.cut_at_ms / 1000:.1f} s)" in report
    assert story.answer_heard and story.answer.startswith(story.answer_heard) and len(story.answer_heard) < len(story.answer)
    assert f"{story.answer_heard.strip()} ~~" in report  # the unheard rest struck through
    assert "- each answer: interrupted by the next file 2 s into its playback" in report
    for event in session.sent_events:
        validate_client_event(event)
