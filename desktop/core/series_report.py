"""A series of sound files spoken one after another: what became of each turn, and the report of the run.

A voice agent's regression test: the same recorded questions, in the same order, after each change to the
prompt, the tools or the turn detection; then the report says what the model heard, what it answered and
how fast, turn by turn. Plain data and text: the runner (`desktop/file_series.py`) fills it in.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any

from .pricing import FREE_TEXT, money

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
    cut_at_ms: int | None = None  # where it was cut: how much of it was heard
    answer_heard: str | None = None  # the words of the answer that were heard before the cut
    detail: str = ""  # why it could not be spoken, or how long it was waited for
    cost: str = ""  # what its answer cost: "$0.0123", "free (offline)", "no price for MODEL" (`core.pricing`)
    cost_usd: float | None = None  # the same in dollars, when priced


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


def to_record(turns: list[SeriesTurn], started: str) -> dict[str, Any]:
    """The run as JSON-ready data, kept beside the report so that the next run of the same files can compare."""
    return {"format": "parley-series/1", "started": started, "turns": [dataclasses.asdict(t) for t in turns]}


def from_record(record: Any) -> tuple[str, list[SeriesTurn]] | None:
    """(started, turns) from `to_record`'s data; None for anything else."""
    if not isinstance(record, dict) or record.get("format") != "parley-series/1" or not isinstance(record.get("turns"), list):
        return None
    names = {f.name for f in dataclasses.fields(SeriesTurn)}
    try:
        turns = [SeriesTurn(**{k: v for k, v in t.items() if k in names}) for t in record["turns"]]
    except (TypeError, AttributeError):
        return None
    return str(record.get("started", "")), turns


def _same_words(a: str, b: str) -> bool:
    def words(text: str) -> list[str]:
        return "".join(c.lower() if c.isalnum() else " " for c in text).split()
    return words(a) == words(b)


def turn_changed(before: SeriesTurn, now: SeriesTurn) -> bool:
    """The outcome, what was heard or the answer's words differ (case and punctuation aside)."""
    return (before.outcome != now.outcome or not _same_words(before.heard, now.heard)
            or not _same_words(before.answer, now.answer))


def changes_line(before: list[SeriesTurn], now: list[SeriesTurn], before_started: str) -> str:
    changed = sum(turn_changed(b, n) for b, n in zip(before, now))
    return f"compared with the run of {before_started}: {changed} of {len(now)} turns changed"


def comparison_markdown(before: list[SeriesTurn], now: list[SeriesTurn], before_started: str) -> str:
    """What changed since an earlier run of the same files: outcome, what was heard, the answer, the latency."""
    lines = [f"## Compared with the run of {before_started}", "",
             "| # | file | outcome | heard | answer | voice ms before → now |", "|---:|---|---|---|---|---|"]
    changed = sum(turn_changed(b, n) for b, n in zip(before, now))
    for i, (b, n) in enumerate(zip(before, now), 1):
        outcome = n.outcome if b.outcome == n.outcome else f"**{b.outcome} → {n.outcome}**"
        heard = "same" if _same_words(b.heard, n.heard) else "**changed**"
        answer = "same" if _same_words(b.answer, n.answer) else "**changed**"
        if b.voice_ms is not None and n.voice_ms is not None:
            voice = f"{b.voice_ms} → {n.voice_ms} ({n.voice_ms - b.voice_ms:+d})"
        else:
            voice = f"{b.voice_ms if b.voice_ms is not None else '—'} → {n.voice_ms if n.voice_ms is not None else '—'}"
        lines.append(f"| {i} | {_cell(n.name)} | {outcome} | {heard} | {answer} | {voice} |")
    head = f"{changed} of {len(now)} turns changed (outcome, what was heard, or the answer's words)."
    before_voice = [t.voice_ms for t in before if t.voice_ms is not None]
    now_voice = [t.voice_ms for t in now if t.voice_ms is not None]
    if before_voice and now_voice:
        b, n = statistics.median(before_voice), statistics.median(now_voice)
        head += f" Voice median {b:.0f} → {n:.0f} ms ({n - b:+.0f})."
    lines.insert(2, head)
    lines.insert(3, "")
    return "\n".join(lines) + "\n"


def cost_line(turns: list[SeriesTurn]) -> str:
    """"$0.0456 for 3 answers" (with those that had no price named), or "" when no answer was priced at all."""
    costed = [t for t in turns if t.cost]
    if not costed:
        return ""
    priced = [t.cost_usd for t in costed if t.cost_usd is not None]
    free = all(t.cost == FREE_TEXT for t in costed)
    unpriced = list(dict.fromkeys(t.cost for t in costed if t.cost_usd is None and t.cost != FREE_TEXT))
    if free:
        return f"{FREE_TEXT} for {len(costed)} answer{'s' if len(costed) != 1 else ''}"
    line = f"{money(sum(priced))} for {len(priced)} answer{'s' if len(priced) != 1 else ''}" if priced else ""
    if unpriced:
        line += ("; " if line else "") + ", ".join(unpriced)
    return line


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "—"


def series_markdown(turns: list[SeriesTurn], *, started: str, provider: str, settings: str,
                    previous: tuple[str, list[SeriesTurn]] | None = None, instructions: str | None = None,
                    pace: str = "waited for to finish") -> str:
    """The run as Markdown: a heading, what it ran against, the summary, one row per file, and (given the
    previous run of the same files) what changed since."""
    lines = [
        f"# Parley: a series of {len(turns)} sound file{'s' if len(turns) != 1 else ''}",
        "",
        f"- started: {started}",
        f"- provider: {provider}",
        f"- turn detection: {settings}",
        f"- each answer: {pace}",
        f"- instructions: {_short(instructions) if instructions else 'the server default'}",
        f"- result: {summary_line(turns)}",
    ]
    if cost_line(turns):
        lines.append(f"- cost: {cost_line(turns)} (response tokens only; input transcription is billed apart)")
    lines += [
        "",
        "| # | file | outcome | heard | answer | voice ms | tokens in / out | cost |",
        "|---:|---|---|---|---|---:|---|---|",
    ]
    for i, t in enumerate(turns, 1):
        cut = f" (cut at {t.cut_at_ms / 1000:.1f} s)" if t.cut_at_ms is not None else " (interrupted)"
        outcome = t.outcome + (cut if t.interrupted else "") + (f": {t.detail}" if t.detail else "")
        tokens = f"{t.tokens_in} / {t.tokens_out}" if t.tokens_in is not None else "—"
        voice = str(t.voice_ms) if t.voice_ms is not None else "—"
        answer = _cell(t.answer)
        if t.interrupted and t.answer_heard is not None and t.answer.startswith(t.answer_heard):
            rest = _cell(t.answer[len(t.answer_heard):])
            answer = _cell(t.answer_heard) + (f" ~~{rest}~~" if rest != "—" else "")  # the unheard rest struck
        lines.append(f"| {i} | {_cell(t.name)} | {_cell(outcome)} | {_cell(t.heard)} | {answer} | {voice} | {tokens} "
                     f"| {_cell(t.cost)} |")
    text = "\n".join(lines) + "\n"
    if previous is not None:
        text += "\n" + comparison_markdown(previous[1], turns, previous[0])
    return text


# ---------------------------------------------------------------------------------------------- providers
def _p95(values: list[int]) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def provider_summary(turns: list[SeriesTurn]) -> dict[str, Any]:
    """One provider's run in figures: answered, voice median and p95, tokens, interruptions."""
    voices = [t.voice_ms for t in turns if t.voice_ms is not None]
    return {
        "files": len(turns),
        "answered": sum(1 for t in turns if t.outcome == "answered"),
        "voice_median_ms": round(statistics.median(voices)) if voices else None,
        "voice_p95_ms": _p95(voices),
        "tokens_in": sum(t.tokens_in or 0 for t in turns),
        "tokens_out": sum(t.tokens_out or 0 for t in turns),
        "interrupted": sum(1 for t in turns if t.interrupted),
        "cost_usd": round(sum(t.cost_usd for t in turns if t.cost_usd is not None), 6)
        if any(t.cost_usd is not None for t in turns) else None,
    }


def providers_record(runs: list[tuple[str, list[SeriesTurn]]], started: str) -> dict[str, Any]:
    return {"format": "parley-compare/1", "started": started,
            "runs": [{"provider": p, "summary": provider_summary(t), "turns": [dataclasses.asdict(x) for x in t]}
                     for p, t in runs]}


def providers_markdown(runs: list[tuple[str, list[SeriesTurn]]], *, started: str, settings: str,
                       instructions: str | None = None, pace: str = "waited for to finish",
                       notes: dict[str, str] | None = None) -> str:
    """The same series on several providers, side by side: a summary row per provider, then per file what
    each heard and answered, how fast, with how many tokens, and where an interruption cut it. `notes` says,
    per provider, what it cannot do that bears on the comparison (e.g. no truncate)."""
    names = [p for p, _ in runs]
    files = max((len(t) for _, t in runs), default=0)
    lines = [
        f"# Parley: {files} sound file{'s' if files != 1 else ''} on {len(runs)} providers",
        "",
        f"- started: {started}",
        f"- turn detection: {settings}",
        f"- each answer: {pace}",
        f"- instructions: {_short(instructions) if instructions else 'the server default'}",
        "",
        "| provider | answered | voice median ms | voice p95 ms | tokens in / out | interrupted | cost |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for name, turns in runs:
        s = provider_summary(turns)
        dash = "—"
        cost = money(s["cost_usd"]) if s["cost_usd"] else (FREE_TEXT if any(t.cost == FREE_TEXT for t in turns) else dash)
        lines.append(f"| {_cell(name)} | {s['answered']} / {s['files']} | {s['voice_median_ms'] or dash} | "
                     f"{s['voice_p95_ms'] or dash} | {s['tokens_in']} / {s['tokens_out']} | {s['interrupted']} | {cost} |")
    if notes:
        lines.append("")
        for name in names:
            if notes.get(name):
                lines.append(f"- {name}: {notes[name]}")
    for index in range(files):
        first = next((t[index] for _, t in runs if index < len(t)), None)
        lines += ["", f"## {index + 1}. {first.name if first else ''}", "",
                  "| provider | outcome | heard | answer | voice ms | tokens in / out |", "|---|---|---|---|---:|---|"]
        for name, turns in runs:
            if index >= len(turns):
                lines.append(f"| {_cell(name)} | not run | — | — | — | — |")
                continue
            t = turns[index]
            outcome = t.outcome
            if t.interrupted:
                outcome += f" (cut at {t.cut_at_ms / 1000:.1f} s)" if t.cut_at_ms is not None else " (interrupted)"
            answer = _cell(_short(t.answer, 200))
            if t.interrupted and t.answer_heard is not None and t.answer.startswith(t.answer_heard):
                rest = _cell(t.answer[len(t.answer_heard):])
                answer = _cell(t.answer_heard) + (f" ~~{rest}~~" if rest != "—" else "")
            tokens = f"{t.tokens_in} / {t.tokens_out}" if t.tokens_in is not None else "—"
            lines.append(f"| {_cell(name)} | {_cell(outcome)} | {_cell(t.heard)} | {answer} | "
                         f"{t.voice_ms if t.voice_ms is not None else '—'} | {tokens} |")
    return "\n".join(lines) + "\n"
