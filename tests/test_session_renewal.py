"""Session time limits, with the real engine: before the provider's limit Parley opens the next server session
at a turn boundary (never in the middle of an answer), carries the conversation over, and loses no turn; the
status bar shows the time left."""

from __future__ import annotations

import time

import pytest

from desktop.core.actions import Notice
from desktop.providers import choose_provider
from desktop.session import LiveSession, SessionOptions, SessionTimeLeft
from tests.conftest import AUDIO
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

LONG = "Repeat after me: the heron waited by the river all morning, watching the water."


def test_a_session_is_renewed_before_its_limit_at_a_turn_boundary(qasync_loop):
    # Renewal may start from 10 s before the limit, at a boundary; at the latest 4 s before it, boundary or not
    # (so the answer that plays through the window must end before then, with room for a loaded machine).
    limit = 40.0
    # A microphone that streams (silence, after the file) all the time, as a real one does.
    session = LiveSession(SessionOptions(choose_provider(environ={}, force_engine=True), use_speaker=False,
                                         audio_in=str(AUDIO / "silence_2s.wav"), session_limit_s=limit))
    notes: list = []
    session.subscribe(notes.append)
    renewed_at: list[tuple[bool, str, float]] = []
    renew = session.renew_session

    async def watched_renew(reason: str = "time_limit") -> bool:
        answer = next((i for i in reversed(session.client.conversation.items) if i.role == "assistant"), None)
        renewed_at.append((session._at_turn_boundary(), answer.status if answer else "", time.perf_counter()))
        return await renew(reason)

    session.renew_session = watched_renew

    async def scenario():
        assert await session.start(), session.status
        began = session.session_began
        first_transport = session.transport
        assert session.send_text("Repeat after me: the blue heron.")
        assert await wait_until(lambda: any(i.role == "assistant" and i.text_final for i in session.client.conversation), 30)
        # The long answer starts a few seconds before the renewal window opens and plays through it.
        assert await wait_until(lambda: time.perf_counter() - began > limit - 10 - 1.5, 40)
        assert session.send_text(LONG)
        assert await wait_until(lambda: session.client.audio_queued, 20)
        answer_began = time.perf_counter() - began
        assert await wait_until(lambda: session.renewals == 1, 40), session.status
        assert session.transport is not first_transport and session.drops == 0
        assert session.status.phase == "connected"
        # The renewal waited for the answer to finish playing: it was not cut.
        boundary, status, at = renewed_at[0]
        assert boundary and status == "completed", (boundary, status, at - began, answer_began)
        assert at - began < limit, "renewed before the limit"
        long_answer = next(i for i in session.client.conversation.items if i.role == "assistant" and "heron waited" in i.text.lower())
        played_until = answer_began + long_answer.audio_received_ms / 1000
        assert played_until > limit - 10, "the answer played into the renewal window (so the renewal had to wait)"
        assert at - began >= played_until - 0.5, "the renewal came after the answer had played"
        assert any(isinstance(n, Notice) and "New session" in n.message and "carried over" in n.message for n in notes)
        # The new server session has the conversation as context (the old items' ids are known to it)...
        old_user = next(i for i in session.client.conversation.items if i.role == "user")
        session.transport.send({"type": "conversation.item.retrieve", "item_id": old_user.item_id})
        assert await wait_until(lambda: any(getattr(n, "item_id", None) == old_user.item_id for n in notes[-50:]), 10)
        assert not any(isinstance(n, Notice) and n.code == "item_not_found" for n in notes)
        # ...and the conversation goes on.
        assert session.send_text("Repeat after me: still here.")
        assert await wait_until(lambda: any("still here" in i.text.lower() for i in session.client.conversation
                                            if i.role == "assistant" and i.text_final), 30)
        texts = [i.text for i in session.client.conversation.items]
        assert sum("blue heron" in t.lower() for t in texts) >= 2 and sum("heron waited" in t.lower() for t in texts) >= 2
        left = [n for n in notes if isinstance(n, SessionTimeLeft) and n.seconds is not None]
        assert left and left[0].limit_s == limit and max(n.seconds for n in left) <= limit
        await session.stop()

    qasync_loop.run_until_complete(scenario())


def test_the_status_bar_shows_the_time_left(qtbot, qasync_loop, tmp_path):
    from tests.window_session import window_and_session

    window, session = window_and_session(qtbot, tmp_path / "settings.json", session_limit_s=3600)

    async def scenario():
        assert await session.start(), session.status
        assert await wait_until(lambda: window.session_time_label.text() != "", 5)
        text, tip = window.session_time_label.text(), window.session_time_label.toolTip()
        await session.stop()
        return text, tip

    text, tip = qasync_loop.run_until_complete(scenario())
    assert text in ("session 59 min left", "session 60 min left"), text
    assert "after 60 minutes" in tip and "nothing you say is lost" in tip
