"""A series of sound files spoken one after another: what became of each turn, and the report of the run.

A voice agent's regression test: the same recorded questions, in the same order, after each change to the
prompt, the tools or the turn detection; then the report says what the model heard, what it answered and
how fast, turn by turn. Plain data and text: the runner (`desktop/file_series.py`) fills it in.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

#: What became of one file: the model answered it; the server never made a turn of it; a turn was made but
#: no answer finished in time; the file could not be spoken; the user stopped the series before or during it.
OUTCOMES = ("answered", "no turn", "no answer", "cannot speak", "stopped")


@dataclass
class SeriesTurn:
    name: str
    path: str
    outcome: str = "pending"
    heard: str = ""  # the user's transcript, as the server transcribed it
    answer: str = ""  # the assistant's text (or audio transcript)
    voice_ms: int | None = None  # from the end of the turn to the answer's first audio
    tokens_in: int | None = None
    tokens_out: int | None = None
    interrupted: bool = False  # the answer was cut by the next file (or anything else)
    detail: str = ""  # why it could not be spoken, or how long it was waited for


def summary_line(turns: list[SeriesTurn]) -> str:
    """"5 files: 4 answered, 1 no turn · voice median 640 ms (p95 812 ms)"."""
    counts = [(o, sum(1 for t in turns if t.outcome == o)) for o in OUTCOMES]
    parts = ", ".join(f"{n} {o}" for o, n in counts if n)
    line = f"{len(turns)} file{'s' if len(turns) != 1 else ''}: {parts or 'none spoken'}"
    voices = sorted(t.voice_ms for t in turns if t.voice_ms is not None)
    if voices:
        line += f" · voice median {statistics.median(voices):.0f} ms"
        if len(voices) >= 2:
            line += f" (slowest {voices[-1]} ms)"
    return line


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "—"


def series_markdown(turns: list[SeriesTurn], *, started: str, provider: str, settings: str) -> str:
    """The run as Markdown: a heading, what it ran against, the summary, then one row per file."""
    lines = [
        f"# Parley: a series of {len(turns)} sound file{'s' if len(turns) != 1 else ''}",
        "",
        f"- started: {started}",
        f"- provider: {provider}",
        f"- turn detection: {settings}",
        f"- result: {summary_line(turns)}",
        "",
        "| # | file | outcome | heard | answer | voice ms | tokens in / out |",
        "|---:|---|---|---|---|---:|---|",
    ]
    for i, t in enumerate(turns, 1):
        outcome = t.outcome + (" (interrupted)" if t.interrupted else "") + (f": {t.detail}" if t.detail else "")
        tokens = f"{t.tokens_in} / {t.tokens_out}" if t.tokens_in is not None else "—"
        voice = str(t.voice_ms) if t.voice_ms is not None else "—"
        lines.append(f"| {i} | {_cell(t.name)} | {_cell(outcome)} | {_cell(t.heard)} | {_cell(t.answer)} | {voice} | {tokens} |")
    return "\n".join(lines) + "\n"
