"""The offline engine's brain, chosen in Connection → Offline brain: starting the engine with it, and switching.

A local chat server's model (`BrainChoice` with a URL) starts the engine with `--llm-url/--llm-model`, its key
(kept in the OS keyring) in the engine's environment as PARLEY_LLM_KEY. When the chosen server does not answer
at start, the built-in responder answers instead and the user is told once; the choice stays saved, so the
model answers again at the next start where its server runs.

Switching restarts the engine with the new brain and opens a new session on it with the recent turns carried
over as context, the way Connection → Model switches models (`LiveSession._open_new_session` and the client's
re-seeding). No Qt here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from .core.actions import Notice
from .local_llm_discovery import BrainChoice, still_there
from .transport.engine_process import EngineProcess, EngineStartError

#: The session served (desktop.session.LiveSession); not imported, so that the session's parts import no circle.
LiveSession = Any

log = logging.getLogger(__name__)


def brain_key(choice: BrainChoice) -> str | None:
    """The chosen server's key from the OS keyring (None: it has none, or the keyring cannot be read)."""
    if choice.is_rules or not choice.has_key:
        return None
    from .secrets import keyring_secret

    return keyring_secret(choice.key_name)


async def engine_for(session: "LiveSession") -> EngineProcess:
    """The engine to start for the session's chosen brain; the built-in responder (said once) when the chosen
    server is not there now."""
    choice = session.options.engine_brain or BrainChoice()
    engine = EngineProcess(session.options.engine_log_level)
    if choice.is_rules:
        return engine
    loop = asyncio.get_running_loop()
    key = await loop.run_in_executor(None, brain_key, choice)
    if not await loop.run_in_executor(None, lambda: still_there(choice, api_key=key)):
        log.warning("the chosen local model at %s is not answering; the built-in responder answers", choice.url)
        session._notify(Notice("warning", f"{choice.label.removeprefix('offline · ')} at {choice.url} is not answering, "
                                          "so the built-in responder answers for now (Connection → Offline brain)."))
        session.brain_fallback = True
        session.options.provider = replace(session.options.provider, label=BrainChoice().label)
        return engine
    engine.brain_args, engine.brain_key = choice.engine_args(), key
    session.options.provider = replace(session.options.provider, label=choice.label)
    return engine


async def switch_brain(session: "LiveSession", choice: BrainChoice, api_key: str | None = None) -> bool:
    """Connection → Offline brain: the engine restarts with `choice` and the conversation goes on there (its
    recent turns carried over). False when it cannot be done now (not on the engine; the engine failed to
    start, then reconnecting goes on)."""
    engine = session.engine
    if session.closed or session._starting_over or engine is None:
        return False
    session._starting_over = True
    try:
        session._silence_playback(session.playback.stop)
        session.playback.clear()
        if session.transport is not None:
            transport, session.transport = session.transport, None
            await transport.close()
            session._apply(session.client.on_disconnected())
        session.options.engine_brain = choice
        session.brain_fallback = False
        session.options.provider = replace(session.options.provider, label=choice.label)
        session._set_status("starting engine", f"restarting the offline engine with {choice.label}…")
        await engine.stop()
        engine.brain_args, engine.brain_key = choice.engine_args(), api_key
        try:
            await engine.start()
        except (EngineStartError, OSError) as exc:  # reconnecting (which restarts it) takes over
            log.warning("the offline engine did not restart with the new brain: %s", exc)
        if not await session._open_new_session(f"switching to {choice.label}…"):
            return False
        who = "the built-in responder" if choice.is_rules else choice.label.removeprefix("offline · ")
        session._carry_conversation_over(f"Now {who} answers")
        return True
    finally:
        session._starting_over = False
