"""How a live session's connection lives: reconnecting after a drop, renewing the server session before the
provider's time limit (or a goAway, or settings that only a new session takes), and moving the conversation to a
new session (another model, another provider, a new conversation), without losing a turn.

A mixin of `LiveSession` (desktop/session.py), which owns the audio, the client and the transport; this part
decides when a connection is replaced and carries the conversation over. No Qt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from .core.actions import Notice, TurnState
from .core.dialects import dialect_for
from .core.pricing import OFFLINE_MODEL
from .core.provider_capabilities import capabilities_for
from .providers import ProviderChoice
from .reconnect import ReconnectPolicy
from .transport.engine_process import EngineStartError
from .transport.websocket_transport import ConnectError

log = logging.getLogger("desktop.session")


@dataclass(frozen=True)
class SessionTimeLeft:
    """How long the provider lets this server session last from now (seconds); None: no known limit. Parley
    renews the session before then (see SessionLifetime._check_session_lifetime)."""

    seconds: float | None
    limit_s: float | None = None


@dataclass(frozen=True)
class Timing:
    """Latency figures the log and benchmarks read: name -> seconds."""

    name: str
    seconds: float


#: Renew a time-limited session this long before its limit (at the first turn boundary from then on), and at
#: the latest this long before it, at a boundary or not.
RENEW_AHEAD_S = 120.0
RENEW_LATEST_S = 8.0


class SessionLifetime:
    """The connection-keeping half of LiveSession (see the module doc)."""

    def _on_closed(self, reason: str) -> None:
        if self.closed or self._starting_over:
            return
        self.transport = None
        self.drops += 1
        self._dropped_at = time.perf_counter()
        self._apply(self.client.on_disconnected())
        log.warning("connection %s; reconnecting", reason)
        if self.engine is not None:
            log.warning("the offline engine is %s", self.engine.describe())
        what = reason[:1].upper() + reason[1:] if reason.startswith("connection") else f"Connection {reason}"
        self._set_status("reconnecting", f"{what}. You are not being heard; reconnecting…")
        self.reconnect_policy.reset()
        self._schedule_reconnect()

    # ------------------------------------------------------------------ session lifetime
    @property
    def session_limit_s(self) -> float | None:
        return self.options.session_limit_s or self.dialect.capabilities.session_limit_s

    def session_time_left(self) -> float | None:
        """Seconds this server session may still last (the provider's limit, or a goAway's time left)."""
        if self.session_began is None or self.transport is None:
            return None
        elapsed = time.perf_counter() - self.session_began
        left = None
        limit = self.session_limit_s
        if limit:
            left = limit - elapsed
        go_away_ms = getattr(self.dialect, "go_away_ms", None)
        if go_away_ms is not None and self._go_away_seen is not None:
            away_left = go_away_ms / 1000 - (time.perf_counter() - self._go_away_seen)
            left = away_left if left is None else min(left, away_left)
        return left

    def _at_turn_boundary(self) -> bool:
        """Nobody has the floor: no answer playing or being generated, the user not speaking, nothing typed
        waiting, and no spoken turn between its end and its answer."""
        client = self.client
        # (Not "no audio uncommitted": with server VAD the microphone streams all the time, silence included; the
        # user speaking shows as the state, USER_SPEAKING, and push-to-talk as held.)
        return (client.state == TurnState.LISTENING and client.active_response is None and not client.audio_queued
                and not self.playback.is_playing() and not self.playback.is_paused()
                and (self._speech_stopped_at is None or time.perf_counter() - self._speech_stopped_at > 10)
                and self.file_voice is None and not self.turns.ptt.held)

    def _check_session_lifetime(self) -> None:
        """Open the next server session before this one must end (the provider's time limit, a goAway, or
        settings that only a new session takes), and switch at a turn boundary so no turn is cut."""
        if getattr(self.dialect, "go_away_ms", None) is not None and self._go_away_seen is None:
            self._go_away_seen = time.perf_counter()
        left = self.session_time_left()
        shown = None if left is None else max(0, int(left))
        if shown != self._time_left_shown:
            self._time_left_shown = shown
            self._notify(SessionTimeLeft(left, self.session_limit_s))
        if (self.closed or self._starting_over or self.reconnecting or self.transport is None
                or (self._reopen_task is not None and not self._reopen_task.done())):
            return
        reason = self.dialect.reopen_reason
        limit = self.session_limit_s or 0.0
        if reason is None and left is not None and left < min(RENEW_AHEAD_S, limit / 4 if limit else RENEW_AHEAD_S):
            reason = "time_limit"
        if reason is None:
            return
        urgent = left is not None and left < min(RENEW_LATEST_S, limit / 10 if limit else RENEW_LATEST_S)
        if not (urgent or self._at_turn_boundary()):
            return
        assert self._loop is not None
        self._reopen_task = self._loop.create_task(self.renew_session(reason))

    async def renew_session(self, reason: str = "time_limit") -> bool:
        """Replace the server session with a new one, carrying the conversation over: by the provider's
        resumption handle where it has one (nothing is re-sent), else as context, as after a reconnect."""
        if self.closed or self._starting_over:
            return False
        words = {"time_limit": "the session's time limit is near", "go_away": "the server is ending the connection",
                 "settings": "new session settings"}.get(reason, reason)
        log.info("renewing the server session: %s", words)
        self._starting_over = True
        try:
            if not await self._open_new_session(f"renewing the session ({words})…"):
                return False
            self.renewals += 1
            self._go_away_seen = None
            self._time_left_shown = -1
            if self.dialect.resumed:
                self._set_status("connected")
                self._notify(Notice("info", f"New session ({words}): the conversation was resumed by its handle."))
                self._apply(self.client.flush_outbox())
            else:
                self._carry_conversation_over(f"New session ({words})")
            return True
        finally:
            self._starting_over = False

    # ------------------------------------------------------------------ reconnecting
    @property
    def reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    def _schedule_reconnect(self, immediately: bool = False) -> None:
        if self.closed or self._loop is None:
            return
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
        self._reconnect_task = self._loop.create_task(self._reconnect_loop(immediately))

    async def _reconnect_loop(self, immediately: bool) -> None:
        provider = self.options.provider
        while not self.closed:
            delay = 0.0 if immediately else self.reconnect_policy.next_delay()
            immediately = False
            if delay is None:
                self._set_status("disconnected", "Gave up reconnecting. Press Retry to try again.")
                return
            if delay > 0.5:
                self._set_status("reconnecting", f"You are not being heard. Reconnecting in {delay:.0f} s…")
            await asyncio.sleep(delay)
            try:
                url = await self._current_url()
                await self._connect(url)
            except ConnectError as exc:
                if ReconnectPolicy.is_permanent(str(exc)):
                    self._set_status("failed", f"{exc} Fix it and press Retry.")
                    return
                log.info("reconnect attempt %d failed: %s", self.reconnect_policy.attempts, exc)
                self._set_status("reconnecting", f"{exc}. You are not being heard; trying again…")
                continue
            except (EngineStartError, OSError) as exc:
                log.warning("the offline engine could not restart: %s", exc)
                self._set_status("reconnecting", f"The offline engine could not restart ({exc}); trying again…")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an unforeseen failure must not end reconnecting silently
                log.exception("reconnect attempt failed")
                self._set_status("reconnecting", f"Reconnecting failed ({type(exc).__name__}: {exc}); trying again…")
                continue
            if self.closed:
                return
            self.reconnect_policy.succeeded()
            self._apply(self.client.on_connected())
            # A session resumed by its handle has the conversation: nothing to re-seed.
            reseed = [] if self.dialect.resumed else self.client.reseed_context()
            self._apply(reseed)
            if self._dropped_at is not None:
                seconds = time.perf_counter() - self._dropped_at
                self._dropped_at = None
                self.reconnect_seconds.append(seconds)
                if len(self.reconnect_seconds) > 10_000:
                    del self.reconnect_seconds[:5_000]
                self._notify(Timing("reconnect", seconds))
            self._set_status("connected")
            restored = f" and {len(reseed)} recent turns restored as context" if reseed else (
                " and the conversation resumed by its handle" if self.dialect.resumed else "")
            self._notify(Notice("info", f"Reconnected to {provider.label}{restored}."))
            self._apply(self.client.flush_outbox())
            return


    async def switch_model(self, model: str) -> bool:
        """Connection → Model: the same conversation with another model. The answer playing stops, a new session
        opens at the new model's URL, and the recent turns are carried over as context (as after a reconnect).
        False when the switch cannot be made (the engine; a failed connection, then reconnecting goes on)."""
        from .providers import switched_model

        if self.closed or self._starting_over:
            return False
        try:
            provider = switched_model(self.options.provider, model)
        except ValueError as exc:
            self._notify(Notice("warning", str(exc)))
            return False
        self.options.provider = provider
        self._starting_over = True
        try:
            self._silence_playback(self.playback.stop)
            self.playback.clear()
            if not await self._open_new_session(f"switching to {provider.label}…"):
                return False
            self._carry_conversation_over(f"Now talking to {provider.label}")
            return True
        finally:
            self._starting_over = False

    async def switch_provider(self, provider: ProviderChoice) -> bool:
        """Connection → Provider: the same conversation with another provider, as `switch_model` does with another
        model. The answer playing stops; the offline engine starts when moving to kind "engine" and stops when
        leaving it; a new session opens at the new provider (in its dialect) and the recent turns are carried over
        as context. False when the switch cannot be made (the engine did not start; a failed connection, then
        reconnecting goes on with the new provider)."""
        if self.closed or self._starting_over:
            return False
        self._starting_over = True
        try:
            self._silence_playback(self.playback.stop)
            self.playback.clear()
            if self._reconnect_task is not None:  # it would reconnect to the old provider
                self._reconnect_task.cancel()
            if self.transport is not None:
                transport, self.transport = self.transport, None
                await transport.close()
                self._apply(self.client.on_disconnected())
            if self.engine is not None and provider.kind != "engine":
                engine, self.engine = self.engine, None
                await engine.stop()
            old, self.options.provider = self.options.provider, provider
            if (provider.kind, provider.dialect) != (old.kind, old.dialect):
                capabilities = capabilities_for(provider.kind, provider.dialect)
                self.dialect = dialect_for(provider.dialect, capabilities,
                                           OFFLINE_MODEL if provider.kind == "engine" else provider.model)
                self.client.capabilities = capabilities
            if provider.kind == "engine" and self.engine is None:
                from .brain_switch import engine_for  # the chosen brain, or the responder when its server is gone

                self._set_status("starting engine", "starting the offline engine…")
                self.engine = await engine_for(self)
                try:
                    await self.engine.start()
                except (EngineStartError, OSError) as exc:  # Retry starts it again (`_current_url`)
                    self._set_status("failed", f"The offline engine could not start: {exc}")
                    return False
            if not await self._open_new_session(f"switching to {self.options.provider.label}…"):
                return False
            self._carry_conversation_over(f"Now talking to {self.options.provider.label}")
            return True
        finally:
            self._starting_over = False

    async def new_conversation(self) -> bool:
        """File → New conversation: silence the answer, forget the conversation (its saved file stays), and open
        a fresh server session, so the model remembers nothing of it. False when the new session could not be
        opened at once (reconnecting then goes on as after a drop)."""
        if self.closed or self._starting_over:
            return False
        self._starting_over = True
        try:
            self._silence_playback(self.playback.stop)
            self.playback.clear()
            self._speech_stopped_at = None
            self._apply(self.client.start_over())
            if self.reconnecting or self.transport is None:
                return False  # the reconnect under way opens the new session, with nothing to re-seed
            if not await self._open_new_session("starting a new conversation…"):
                return False
            self._set_status("connected")
            self._notify(Notice("info", "New conversation: the model starts from nothing."))
            return True
        finally:
            self._starting_over = False

    def _carry_conversation_over(self, now: str) -> None:
        """In the session just opened: the recent turns as context (as after a reconnect), the notice
        "NOW; N recent turns carried over as context.", and what waited for the connection."""
        reseed = self.client.reseed_context()
        self._apply(reseed)
        self._set_status("connected")
        carried = f"; {len(reseed)} recent turns carried over as context" if reseed else ""
        self._notify(Notice("info", f"{now}{carried}."))
        self._apply(self.client.flush_outbox())

    async def _open_new_session(self, status: str) -> bool:
        """Close the connection (not a drop: `_starting_over` is set by the caller) and open a new server session
        at the provider's current URL; the client is told of both. On failure reconnecting takes over: False."""
        if self.transport is not None:
            transport, self.transport = self.transport, None
            await transport.close()
            self._apply(self.client.on_disconnected())
        self._set_status("connecting", status)
        try:
            await self._connect(await self._current_url())
        except (ConnectError, EngineStartError, OSError) as exc:
            log.warning("the new session could not be opened: %s", exc)
            self._dropped_at = time.perf_counter()
            self._set_status("reconnecting", f"{exc}. You are not being heard; reconnecting…")
            self.reconnect_policy.reset()
            self._schedule_reconnect()
            return False
        self._apply(self.client.on_connected())
        return True

    async def _current_url(self) -> str:
        """The URL to connect to; restarts the offline engine first if it has died."""
        if self.engine is not None:
            if not self.engine.running:
                log.warning("the offline engine stopped (%s); restarting it", self.engine.describe())
                self._set_status("reconnecting", "The offline engine stopped; restarting it…")
                await self.engine.start()
            return self._engine_url()
        assert self.options.provider.url is not None
        return self.options.provider.url

    def _engine_url(self) -> str:
        """The engine's URL for the provider's dialect (it serves Gemini Live's path beside /v1/realtime)."""
        assert self.engine is not None
        if self.options.provider.dialect == "gemini":
            from .providers import GEMINI_LIVE_PATH

            return f"ws://127.0.0.1:{self.engine.port}{GEMINI_LIVE_PATH}"
        return self.engine.url


    def retry_now(self) -> None:
        """The user pressed Retry: try to connect at once (also after giving up or a permanent failure)."""
        if self.closed or (self.transport is not None and self.transport.is_open):
            return
        if self._dropped_at is None:
            self._dropped_at = time.perf_counter()
        self.reconnect_policy.reset()
        self._set_status("reconnecting", "Reconnecting now…")
        self._schedule_reconnect(immediately=True)

    def cancel_reconnect(self) -> None:
        """The user pressed Cancel: stop trying until Retry."""
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
        self._reconnect_task = None
        if self.transport is None or not self.transport.is_open:
            self._set_status("disconnected", "Not reconnecting. You are not being heard; press Retry to connect again.")

