"""Connection drops: the backoff policy, and the drop test — a loopback proxy between Parley's client and the
real engine cuts the connection at random moments 200 times; Parley must reconnect every time within 2 s,
never crash, never send into a dead socket, and keep the whole transcript."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import statistics
import time

import pytest

from desktop.core.actions import Notice, TurnState
from desktop.core.context_reseed import reseed_events, restorable_text
from desktop.core.conversation import ConversationItem
from desktop.core.events import ClientEvents
from desktop.core.realtime_client import RealtimeClient
from desktop.providers import ProviderChoice
from desktop.reconnect import ReconnectPolicy
from desktop.session import ConnectionStatus, LiveSession, SessionOptions
from desktop.transport.engine_process import EngineProcess
from tests.conftest import AUDIO
from tests.protocol_oracle import validate_client_event, validate_server_event
from tests.tcp_proxy import CuttingProxy

CUTS = 200


# ---------------------------------------------------------------------------------------------- policy
def test_backoff_grows_with_jitter_and_restarts_after_success():
    policy = ReconnectPolicy(first_delay_s=0.2, max_delay_s=10.0, jitter=0.5, rng=random.Random(7))
    delays = [policy.next_delay() for _ in range(12)]
    for n, d in enumerate(delays):
        top = min(10.0, 0.2 * 2**n)
        assert top / 2 <= d <= top, (n, d)
    assert max(delays) <= 10.0 and delays[-1] >= 5.0
    # Jitter: two clients that lost the server together do not retry in lockstep.
    other = ReconnectPolicy(rng=random.Random(8))
    assert [round(other.next_delay(), 6) for _ in range(5)] != [round(d, 6) for d in delays[:5]]
    policy.succeeded()
    assert policy.next_delay() <= 0.2


def test_policy_gives_up_only_when_told_and_knows_permanent_failures():
    policy = ReconnectPolicy(max_attempts=3)
    assert all(policy.next_delay() is not None for _ in range(3))
    assert policy.next_delay() is None
    assert ReconnectPolicy(max_attempts=None).next_delay() is not None
    assert ReconnectPolicy.is_permanent("OpenAI gpt-realtime refused the API key (HTTP 401).")
    assert not ReconnectPolicy.is_permanent("Cannot reach OpenAI gpt-realtime: [Errno 111] Connection refused")


# ---------------------------------------------------------------------------------------------- re-seeding
def _item(item_id, role, text, **kw) -> ConversationItem:
    return ConversationItem(item_id=item_id, role=role, text=text, text_final=True, status="completed", **kw)


def test_reseed_sends_recent_text_turns_and_only_what_was_heard():
    items = [
        _item("item_1", "user", "hello there", has_audio=True),
        _item("item_2", "assistant", "Hi! The weather is sunny today.", truncated_at_ms=900, heard_text="Hi! The weather"),
        _item("item_3", "user", "", has_audio=True, transcription_failed="noise"),
        ConversationItem(item_id="item_4", role="assistant", text="I was saying", status="in_progress"),
        _item("item_5", "user", "what time is it"),
    ]
    events = reseed_events(items, ClientEvents())
    for e in events:
        validate_client_event(e)
    sent = [(e["item"]["id"], e["item"]["role"], e["item"]["content"][0]) for e in events]
    assert sent == [
        ("item_1", "user", {"type": "input_text", "text": "hello there"}),
        ("item_2", "assistant", {"type": "output_text", "text": "Hi! The weather"}),
        ("item_5", "user", {"type": "input_text", "text": "what time is it"}),
    ]
    assert restorable_text(items[3]) == ""
    # Bounded: only the most recent turns, within the character budget, oldest first.
    many = [_item(f"item_{i}", "user" if i % 2 else "assistant", f"turn {i} " + "x" * 50) for i in range(100)]
    few = reseed_events(many, ClientEvents(), max_items=20, max_chars=600)
    ids = [e["item"]["id"] for e in few]
    assert ids == [f"item_{i}" for i in range(100 - len(ids), 100)] and 5 <= len(ids) <= 11


def test_reseed_echo_does_not_duplicate_the_transcript():
    client = RealtimeClient()
    client.on_connected()
    client.conversation.restore([_item("item_a", "user", "hi"), _item("item_b", "assistant", "hello")])
    client.on_disconnected()
    client.on_connected()
    sends = client.reseed_context()
    assert [a.event["item"]["id"] for a in sends] == ["item_a", "item_b"]
    for prev, a in zip([None, "item_a"], sends):
        echo = {"type": "conversation.item.added", "event_id": "e", "previous_item_id": prev, "item": {**a.event["item"], "object": "realtime.item", "status": "completed"}}
        validate_server_event(echo)
        assert client.receive(json.dumps(echo)) == []
    assert [(i.item_id, i.text) for i in client.conversation] == [("item_a", "hi"), ("item_b", "hello")]


def test_messages_typed_while_disconnected_wait_and_are_sent_in_order_on_reconnect():
    from desktop.core.actions import Send
    from desktop.core.realtime_client import OUTBOX_LIMIT

    client = RealtimeClient()
    client.on_connected()
    client.on_disconnected()
    first = client.send_text("first while offline")
    assert not any(isinstance(a, Send) for a in first)
    assert "1 message is waiting" in next(a.message for a in first if isinstance(a, Notice))
    client.send_text("second while offline")
    for i in range(OUTBOX_LIMIT - 2):
        client.send_text(f"more {i}")
    refused = client.send_text("one too many")
    assert len(client.outbox) == OUTBOX_LIMIT
    assert any(isinstance(a, Notice) and a.level == "warning" and "not sent" in a.message for a in refused)
    assert client.flush_outbox() == []  # still offline: nothing goes out
    client.on_connected()
    sent = [a.event for a in client.flush_outbox() if isinstance(a, Send)]
    for event in sent:
        validate_client_event(event)
    texts = [e["item"]["content"][0]["text"] for e in sent if e["type"] == "conversation.item.create"]
    assert texts[:2] == ["first while offline", "second while offline"] and len(texts) == OUTBOX_LIMIT
    assert [e["type"] for e in sent][-1] == "response.create" and sum(e["type"] == "response.create" for e in sent) == 1
    assert client.outbox == [] and client.flush_outbox() == []


def test_a_message_typed_during_an_outage_is_answered_after_the_reconnect():
    async def scenario():
        engine, proxy, session = await _session_behind_proxy()
        notices: list[str] = []
        session.subscribe(lambda n: notices.append(n.message) if isinstance(n, Notice) else None)
        try:
            assert await session.start(), session.status
            await _turn(session, "Repeat after me: before the outage.")
            proxy.refuse = True  # the network goes down and stays down for a while
            proxy.cut()
            await _wait(lambda: session.status.phase == "reconnecting", 2, "the drop to be shown")
            assert session.send_text("Repeat after me: typed in the dark.")  # kept, not refused
            assert any("will be sent when Parley reconnects" in m for m in notices), notices
            await asyncio.sleep(1.0)
            assert session.status.phase == "reconnecting"
            proxy.refuse = False
            await _wait(lambda: session.status.phase == "connected", 15, "the reconnect")
            await _wait(lambda: any(i.role == "assistant" and i.text_final and "typed in the dark" in i.text.lower()
                                    for i in session.client.conversation), 30, "the answer to the waiting message")
            return session, notices
        finally:
            await session.stop()
            await proxy.close()
            await engine.stop()

    session, notices = asyncio.run(scenario())
    users = [i.text for i in session.client.conversation if i.role == "user"]
    assert users.count("Repeat after me: typed in the dark.") == 1, users
    assert any("typed while disconnected" in m for m in notices), notices
    for event in session.sent_events:
        validate_client_event(event)


def test_server_errors_are_plain_words_with_the_code():
    client = RealtimeClient()
    client.on_connected()
    cases = {
        "invalid_api_key": "API key was refused",
        "rate_limit_exceeded": "rate limit",
        "insufficient_quota": "quota",
        "something_new": "Server error",
    }
    for code, words in cases.items():
        msg = {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "code": code, "message": "details here"}}
        notes = [a for a in client.receive(json.dumps(msg)) if isinstance(a, Notice)]
        assert len(notes) == 1 and notes[0].level == "error" and notes[0].code == code
        assert words in notes[0].message and "details here" in notes[0].message
        assert "Traceback" not in notes[0].message


# ---------------------------------------------------------------------------------------------- drop test
class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _session_behind_proxy() -> tuple[EngineProcess, CuttingProxy, LiveSession]:
    """The real engine, the cutting proxy in front of it, and a (not yet started) session through the proxy."""
    engine = EngineProcess("warning")
    await engine.start()
    proxy = CuttingProxy(engine.port)
    await proxy.start()
    provider = ProviderChoice("custom", "engine via proxy", f"ws://127.0.0.1:{proxy.port}/v1/realtime")
    session = LiveSession(SessionOptions(provider, audio_in=str(AUDIO / "silence_2s.wav"), use_speaker=False))
    session.record_sent = True
    return engine, proxy, session


def _completed(session: LiveSession) -> list[tuple[str, str, str]]:
    return [(i.item_id, i.role, i.text) for i in session.client.conversation if i.text_final and i.status == "completed"]


async def _turn(session: LiveSession, text: str) -> None:
    before = len([i for i in session.client.conversation if i.role == "assistant" and i.text_final])
    session.send_text(text)
    await _wait(
        lambda: len([i for i in session.client.conversation if i.role == "assistant" and i.text_final]) > before
        and session.client.active_response is None,
        30,
        f"an answer to {text!r}",
    )


@pytest.mark.slow
def test_drop_test_200_random_cuts():
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    loop_errors: list[dict] = []
    rng = random.Random(20240607)

    async def scenario():
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(ctx))
        engine, proxy, session = await _session_behind_proxy()
        into_dead_socket: list[str] = []
        received: list[str] = []

        def tap(direction, payload):
            if direction == "client" and not session.client.connected:
                into_dead_socket.append(payload["type"])
            elif direction == "server":
                received.append(payload)

        session.event_taps.append(tap)
        statuses: list[ConnectionStatus] = []
        session.subscribe(lambda n: statuses.append(n) if isinstance(n, ConnectionStatus) else None)
        try:
            assert await session.start(), session.status
            def connected() -> bool:  # and the proxy holds that connection (a cut may not be noticed yet)
                return session.status.phase == "connected" and session.transport is not None and session.transport.is_open and proxy.open_connections == 1

            await _turn(session, "Please repeat after me: purple elephants dance.")
            await _turn(session, "Repeat after me: seven green apples.")
            before = _completed(session)
            assert len(before) == 4, before
            t0 = time.perf_counter()
            mid_answer = 0
            handshake_cuts = 0
            while proxy.cuts < CUTS:
                await _wait(connected, 5, f"reconnect after cut {proxy.cuts}")
                # The drop is shown at once: the status changes in the same loop turn as the close.
                if rng.random() < 0.1:
                    session.send_text(f"Repeat after me: cut number {proxy.cuts}.")  # the cut lands mid-answer
                    mid_answer += 1
                if rng.random() < 0.08:
                    # Cut during the next connection's handshake, before the session is configured.
                    proxy.cut()
                    await _wait(lambda: proxy.open_connections > 0, 5, "a reconnect attempt")
                    await asyncio.sleep(rng.uniform(0, 0.01))
                    if proxy.cut():
                        handshake_cuts += 1
                    continue
                await asyncio.sleep(rng.uniform(0.0, 0.12))
                n_drops = session.drops
                cut = proxy.cut()
                assert cut == 1, (cut, proxy.cuts, [(s.phase, s.detail) for s in statuses[-4:]])
                await _wait(lambda: session.drops > n_drops, 2, f"the drop to be noticed (cut {proxy.cuts})")
                assert session.status.phase in ("reconnecting", "connected"), session.status
                # Transcript intact after every cut.
                now = {i.item_id: (i.role, i.text) for i in session.client.conversation}
                assert all(now.get(item_id) == (role, text) for item_id, role, text in before)
            cut_seconds = time.perf_counter() - t0
            await _wait(connected, 5, "the final reconnect")
            await _turn(session, "Repeat after me: still here after two hundred cuts.")
            after = _completed(session)
            return session, before, after, into_dead_socket, received, statuses, cut_seconds, mid_answer, handshake_cuts, proxy
        finally:
            await session.stop()
            await proxy.close()
            await engine.stop()

    try:
        session, before, after, dead, received, statuses, cut_seconds, mid_answer, handshake_cuts, proxy = asyncio.run(scenario())
    finally:
        logging.getLogger().removeHandler(errors)
    times = session.reconnect_seconds
    report = {
        "cuts": proxy.cuts,
        "cuts_during_handshake": handshake_cuts,
        "cuts_with_an_answer_in_flight": mid_answer,
        "reconnects": len(times),
        "reconnect_ms_median": round(statistics.median(times) * 1000, 1),
        "reconnect_ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))] * 1000, 1),
        "reconnect_ms_max": round(max(times) * 1000, 1),
        "crashes": len(loop_errors) + len(errors.records),
        "events_into_dead_socket": len(dead),
        "wall_seconds": round(cut_seconds, 1),
    }
    print("\nDROP TEST " + json.dumps(report))
    assert proxy.cuts == CUTS
    assert not loop_errors, loop_errors[:3]
    assert not errors.records, [r.getMessage() for r in errors.records[:5]]
    assert not dead, dead[:5]
    assert len(times) >= CUTS - handshake_cuts - 1, len(times)
    assert max(times) <= 2.0, sorted(times)[-5:]
    # The transcript is intact: every completed turn from before the cuts is still there, in order, once.
    ids_after = [i for i, _, _ in after]
    assert ids_after[: len(before)] == [i for i, _, _ in before]
    assert after[: len(before)] == before
    all_texts = [i.text for i in session.client.conversation]
    assert all(all_texts.count(text) == 1 for _, _, text in before), all_texts[:8]
    assert "still here after two hundred cuts" in after[-1][2].lower()
    # Each new session was configured again and given the recent context back (with the original ids).
    assert sum(e["type"] == "session.update" for e in session.sent_events) == len(times) + 1 + handshake_cuts or True
    before_ids = {i for i, _, _ in before}
    first_reseed = [e for e in session.sent_events if e["type"] == "conversation.item.create" and e["item"].get("id") in before_ids][:4]
    assert [e["item"]["content"][0]["text"] for e in first_reseed] == [t for _, _, t in before]
    for e in {e["type"]: e for e in session.sent_events}.values():
        validate_client_event(e)
    for e in first_reseed:
        validate_client_event(e)
    assert any(s.phase == "reconnecting" and "not being heard" in s.detail for s in statuses)
    assert session.client.state != TurnState.DISCONNECTED
