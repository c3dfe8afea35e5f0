"""The same series of sound files against several providers in one go, and one report side by side.

For each provider in turn the session switches to it (`LiveSession.switch_provider`: a new session, the engine
started or stopped as needed), starts a new conversation so that no provider answers with another's context,
and speaks the series (`file_series.FileSeries`); the runs then go into one Markdown report with a JSON record
beside it (`core.series_report.providers_markdown`). Asyncio, no Qt.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .core.actions import Notice
from .core.provider_capabilities import capabilities_for
from .core.series_report import SeriesTurn, providers_markdown, providers_record, summary_line
from .core.session_config import describe_turn_detection
from .providers import ProviderChoice

log = logging.getLogger(__name__)


@dataclass
class ProviderComparison:
    runs: list[tuple[str, list[SeriesTurn]]] = field(default_factory=list)
    report_path: Path | None = None
    #: Providers that could not be reached: label -> why.
    failed: dict[str, str] = field(default_factory=dict)


def _notes(providers: list[ProviderChoice]) -> dict[str, str]:
    notes = {}
    for p in providers:
        caps = capabilities_for(p.kind, p.dialect)
        missing = caps.not_offered()
        if missing:
            notes[p.label] = "cannot do " + "; ".join(missing)
    return notes


async def compare_providers(session, providers: list[ProviderChoice], paths: list[str],
                            report_folder: str | os.PathLike, interrupt_after_s: float | None = None,
                            ) -> ProviderComparison:
    """Speak `paths` on each provider; the comparison (and its report) when all have run."""
    result = ProviderComparison()
    started = datetime.now()
    original = session.options.provider
    for provider in providers:
        if session.closed:
            break
        current = session.options.provider
        if (provider.kind, provider.url, provider.dialect, provider.model) != (current.kind, current.url,
                                                                             current.dialect, current.model):
            if not await session.switch_provider(provider):
                result.failed[provider.label] = session.status.detail or "could not connect"
                session._notify(Notice("warning", f"Comparing: {provider.label} could not be reached; skipped."))
                continue
        else:
            await session.new_conversation()
        if session.client.conversation.items:
            await session.new_conversation()  # each provider starts from nothing
        series = session.speak_files(paths, report_folder, interrupt_after_s)
        if series is None:
            result.failed[provider.label] = session.file_voice_error or "the series could not start"
            continue
        await series._task
        result.runs.append((provider.label, series.turns))
        log.info("compare: %s: %s", provider.label, summary_line(series.turns))
    result.report_path = _write(session, result, started, providers, interrupt_after_s, Path(report_folder))
    if not session.closed and session.options.provider != original:
        await session.switch_provider(original)  # back to where the user was (with the last run's conversation)
    return result


def _write(session, result: ProviderComparison, started: datetime, providers: list[ProviderChoice],
           interrupt_after_s: float | None, folder: Path) -> Path | None:
    if not result.runs:
        return None
    stamp = f"{started:%Y-%m-%d %H:%M:%S}"
    pace = ("waited for to finish" if interrupt_after_s is None
            else f"interrupted by the next file {interrupt_after_s:g} s into its playback")
    text = providers_markdown(result.runs, started=stamp,
                              settings=describe_turn_detection(session.client.requested.turn_detection),
                              instructions=session.client.requested.instructions, pace=pace,
                              notes=_notes(providers))
    if result.failed:
        text += "\n" + "\n".join(f"- not run on {name}: {why}" for name, why in result.failed.items()) + "\n"
    path = folder / f"compare {started:%Y-%m-%d %H-%M-%S}.md"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.with_suffix(".json").write_text(json.dumps(providers_record(result.runs, stamp), indent=1),
                                             encoding="utf-8")
    except OSError as exc:
        session._notify(Notice("error", f"The comparison could not be written to {path}: {exc.strerror or exc}"))
        return None
    return path
