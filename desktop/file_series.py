"""Speak a series of sound files into a live conversation, one turn at a time, and report what became of each.

Each file is spoken as the user's voice (`LiveSession.speak_file`); the next waits until the turn it made has
been answered and the answer has finished playing (or a time limit passed), then a short pause. Or, to test
barge-in, the next file is spoken `interrupt_after_s` into each answer's playback, so that it cuts the answer
off; the report then says where each answer was cut. Esc, or stopping the file, stops the series. The report (`core.series_report`) goes to a Markdown file. Asyncio, no Qt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .core.actions import TurnState
from .core.pricing import OFFLINE_MODEL, PRICES_KEY, PriceTable
from .core.series_report import SeriesTurn, from_record, series_markdown, summary_line, to_record
from .core.session_config import describe_turn_detection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesProgress:
    """File `index` (0-based) of `count` is being spoken, or (done) the series ended and its report is at `report`."""

    index: int
    count: int
    name: str
    done: bool = False
    report: str = ""
    summary: str = ""


class FileSeries:
    def __init__(self, session, paths: list[str], report_folder: str | os.PathLike, *, turn_wait_s: float = 15.0,
                 answer_wait_s: float = 60.0, gap_s: float = 0.8, interrupt_after_s: float | None = None,
                 prices: PriceTable | None = None) -> None:
        self.session = session
        self.paths = [os.fspath(p) for p in paths]
        self.report_folder = Path(report_folder)
        self.turn_wait_s = turn_wait_s  # after a file ends, for the server to make a turn of it
        self.answer_wait_s = answer_wait_s  # then, for its answer to finish
        self.gap_s = gap_s
        self.interrupt_after_s = interrupt_after_s  # None: wait for each answer to finish
        self._answer_ids: dict[int, str] = {}  # turn index -> its answer's item id (filled in at the end)
        self._user_ids: dict[int, str] = {}  # turn index -> the user item its file made
        self.turns = [SeriesTurn(os.path.basename(p), p) for p in self.paths]
        self.report_path: Path | None = None
        #: The earlier run of the same files the report compares with: (started, turns), or None.
        self.previous: tuple[str, list[SeriesTurn]] | None = None
        self.stopped = False
        self._task: asyncio.Task | None = None
        #: What each answer cost is priced by: the user's table (Connection → Prices and budget…) unless given.
        if prices is None:
            from .settings import Settings

            prices, _problems = PriceTable.from_setting(Settings.shared().get(PRICES_KEY))
        self.prices = prices

    # ------------------------------------------------------------------ control
    def start(self) -> asyncio.Task:
        self._task = asyncio.ensure_future(self.run())
        return self._task

    def stop(self) -> None:
        self.stopped = True

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # ------------------------------------------------------------------ the run
    async def run(self) -> Path | None:
        started = datetime.now()
        session = self.session
        try:
            for index, turn in enumerate(self.turns):
                if self.stopped or session.closed:
                    break
                session._notify(SeriesProgress(index, len(self.turns), turn.name))
                cut_in = self.interrupt_after_s is not None and index + 1 < len(self.turns)
                await self._one(index, turn, cut_in)
                if turn.outcome == "stopped":
                    break
                if index + 1 < len(self.turns) and not (cut_in and turn.outcome == "answered"):
                    await asyncio.sleep(self.gap_s)
            if self.interrupt_after_s is not None and not self.stopped:
                await self._until(self._settled, 5.0)  # the last cut-off's truncate confirmed
        finally:
            self._fill_answers()
            for turn in self.turns:
                if turn.outcome == "pending":
                    turn.outcome = "stopped"
            self.report_path = self._write_report(started)
            summary = summary_line(self.turns)
            log.info("series of %d files ended: %s", len(self.turns), summary)
            session._notify(SeriesProgress(len(self.turns), len(self.turns), "", True,
                                           str(self.report_path or ""), summary))
        return self.report_path

    async def _one(self, index: int, turn: SeriesTurn, cut_in: bool = False) -> None:
        """Speak one file and wait for its answer: to finish, or (cut_in) to have played `interrupt_after_s`."""
        session = self.session
        client = session.client
        known = {item.item_id for item in client.conversation}
        if not session.speak_file(turn.path):
            turn.outcome = "cannot speak"
            turn.detail = session.file_voice_error
            return
        voice = session.file_voice
        while session.file_voice is voice and not session.closed:
            await asyncio.sleep(0.02)
        if voice is not None and not voice.finished:  # Esc, or the Stop action: the user stopped it
            self.stopped = True
            turn.outcome = "stopped"
            return

        def new_user_item():
            return next((i for i in client.conversation if i.item_id not in known and i.role == "user" and i.has_audio),
                        None)

        user = await self._until(new_user_item, self.turn_wait_s)
        if user is None:
            turn.outcome = "no turn"
            turn.detail = f"nothing after {self.turn_wait_s:.0f} s"
            return
        self._user_ids[index] = user.item_id
        await self._until(lambda: user.text_final or user.transcription_failed, 5.0)
        turn.heard = user.text if user.text_final else ""

        def answer_to_user():
            items = list(client.conversation)
            after = items[items.index(user) + 1:] if user in items else []
            return next((i for i in after if i.role == "assistant" and i.kind == "message"), None)

        def answered():
            answer = answer_to_user()
            if answer is None or answer.status == "in_progress":
                return None
            playing = session.playback.is_playing() or session.playback.is_paused()
            idle = client.active_response is None and client.state in (TurnState.LISTENING, TurnState.USER_SPEAKING)
            return answer if idle and not playing else None

        def audible_long_enough():
            answer = answer_to_user()
            if answer is None:
                return None
            if session.playback.played_ms(answer.item_id) >= self.interrupt_after_s * 1000:
                return answer
            return answered()  # shorter than that: it finished first, nothing to cut

        answer = await self._until(audible_long_enough if cut_in else answered, self.answer_wait_s)
        if self.stopped:
            turn.outcome = "stopped"
            return
        if answer is None:
            turn.outcome = "no answer"
            turn.detail = f"none finished within {self.answer_wait_s:.0f} s"
            return
        turn.outcome = "answered"
        self._answer_ids[index] = answer.item_id
        self._fill(turn, answer)

    def _fill(self, turn: SeriesTurn, answer) -> None:
        turn.answer = answer.text
        turn.voice_ms = answer.reply_latency_ms
        turn.interrupted = answer.interrupted
        turn.cut_at_ms = answer.truncated_at_ms
        turn.answer_heard = answer.heard_text
        if answer.usage is not None:
            turn.tokens_in, turn.tokens_out = answer.usage.input_tokens, answer.usage.output_tokens
            provider = self.session.options.provider
            fallback = OFFLINE_MODEL if provider.kind == "engine" else provider.model
            priced = self.prices.price(answer.usage, answer.model or fallback)
            turn.cost, turn.cost_usd = priced.label, priced.usd

    def _fill_answers(self) -> None:
        """An answer cut off by the next file was still going when its turn was recorded: take its final state."""
        for index, item_id in self._answer_ids.items():
            answer = self.session.client.conversation.get(item_id)
            if answer is not None:
                self._fill(self.turns[index], answer)
        # A transcript that came later than the wait for it (a busy machine, a slow server) is still the turn's.
        for index, item_id in self._user_ids.items():
            user = self.session.client.conversation.get(item_id)
            if user is not None and user.text_final and not self.turns[index].heard:
                self.turns[index].heard = user.text

    def _settled(self) -> bool:
        client = self.session.client
        return client.active_response is None and not self.session.playback.is_playing()

    async def _until(self, probe, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while not self.stopped and not self.session.closed:
            found = probe()
            if found:
                return found
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        return None

    def previous_run(self) -> tuple[str, list[SeriesTurn]] | None:
        """The newest earlier run of the same files in the same order (its JSON beside its report), if any."""
        paths = [t.path for t in self.turns]
        try:
            candidates = sorted(self.report_folder.glob("series *.json"), reverse=True)  # names sort by time
        except OSError:
            return None
        for candidate in candidates[:200]:
            try:
                found = from_record(json.loads(candidate.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
            if found is not None and [t.path for t in found[1]] == paths and any(t.outcome != "stopped" for t in found[1]):
                return found
        return None

    def _write_report(self, started: datetime) -> Path | None:
        session = self.session
        stamp = f"{started:%Y-%m-%d %H:%M:%S}"
        previous = self.previous_run() if any(t.outcome != "stopped" for t in self.turns) else None
        self.previous = previous
        text = series_markdown(self.turns, started=stamp, provider=session.options.provider.label,
                               settings=describe_turn_detection(session.client.requested.turn_detection),
                               previous=previous, instructions=session.client.requested.instructions,
                               pace="waited for to finish" if self.interrupt_after_s is None else
                               f"interrupted by the next file {self.interrupt_after_s:g} s into its playback")
        path = self.report_folder / f"series {started:%Y-%m-%d %H-%M-%S}.md"
        n = 2
        while path.exists():  # two runs started within a second
            path = self.report_folder / f"series {started:%Y-%m-%d %H-%M-%S} ({n}).md"
            n += 1
        try:
            self.report_folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.with_suffix(".json").write_text(json.dumps(to_record(self.turns, stamp), indent=1), encoding="utf-8")
        except OSError as exc:
            from .core.actions import Notice

            session._notify(Notice("error", f"The series report could not be written to {path}: {exc.strerror or exc}"))
            return None
        return path
