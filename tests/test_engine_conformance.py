"""Conformance of the embedded engine: each flow driven over a real WebSocket on 127.0.0.1.

Every server event is validated against the openai SDK's GA types (the `Peer` of test_engine_protocol
does it on receipt) and the whole stream of each test is checked for the protocol's ordering guarantees
(`check_ordering`). The LLM brain is tested against a small chat-completions server written here (the one
allowed fake: a remote LLM). Also: two sessions served concurrently, the ASR word error rate on the
committed fixtures, the bearer-token check and the CLI's refusal to bind non-loopback addresses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import re
import time
from collections import defaultdict
from typing import Any, Awaitable, Callable

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from desktop.engine import cli
from desktop.engine.brain import SentenceAssembler
from desktop.engine.llm_brain import LLMBrain, chat_completions_url
from desktop.engine.server import EngineServer
from desktop.engine.speech_models import SpeechModels
from tests.test_engine_protocol import (
    MANIFEST,
    MANUAL_WITH_TRANSCRIPTION,
    RATE,
    SERVER_EXTRAS_OF_THE_REAL_API,
    TIMEOUT,
    Peer,
    decoded_audio,
    load_wav,
    server_vad_session,
    silence,
    words,
)
from tests.protocol_oracle import validate_server_event

pytestmark = pytest.mark.slow


class _SharedModels(SpeechModels):
    def shutdown(self) -> None:  # the servers' stop() must not shut the shared pool down
        pass


@pytest.fixture(scope="module")
def models():
    shared = _SharedModels()
    shared.start_loading()
    yield shared
    SpeechModels.shutdown(shared)


class TimedPeer(Peer):
    """A Peer that also notes when each event arrived."""

    def __init__(self, ws) -> None:
        super().__init__(ws)
        self.times: list[float] = []

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        event = await super().recv(timeout)
        self.times.append(time.perf_counter())
        return event

    def first_time(self, type_: str, start: int = 0) -> float:
        return next(t for t, e in zip(self.times[start:], self.received[start:]) if e["type"] == type_)


async def open_peer(port: int, token: str | None = None) -> tuple[Any, TimedPeer]:
    headers = {"Authorization": f"Bearer {token or 'sk-test'}"}
    ws = await connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", additional_headers=headers, max_size=None)
    peer = TimedPeer(ws)
    first = await peer.recv()
    assert first["type"] == "session.created", first
    return ws, peer


def run_scenario(models: SpeechModels, scenario: Callable[[TimedPeer], Awaitable[None]], **server_args: Any) -> None:
    async def main() -> None:
        server = EngineServer(models=models, **server_args)
        port = await server.start("127.0.0.1", 0)
        try:
            ws, peer = await open_peer(port)
            async with ws:
                await scenario(peer)
                # Nothing still in flight may break the rules either.
                await asyncio.sleep(0.05)
                while True:
                    try:
                        await peer.recv(0.05)
                    except asyncio.TimeoutError:
                        break
                check_ordering(peer.received)
        finally:
            await server.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- the ordering rules

#: The steps of each output item of a response (a message's content part, or a function call's arguments).
_RESPONSE_STEPS = [
    "response.output_item.added",
    "response.content_part.added",
    ("response.output_audio.delta", "response.output_audio_transcript.delta", "response.output_text.delta",
     "response.function_call_arguments.delta"),
    ("response.output_audio.done", "response.output_audio_transcript.done", "response.output_text.done",
     "response.function_call_arguments.done"),
    "response.content_part.done",
    "response.output_item.done",
]


def _step(kind: str) -> int | None:
    for i, step in enumerate(_RESPONSE_STEPS):
        if kind == step or (isinstance(step, tuple) and kind in step):
            return i
    return None


def check_ordering(events: list[dict[str, Any]]) -> None:
    """The protocol's ordering guarantees over a whole event stream."""
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "event_id repeated"
    assert events[0]["type"] == "session.created"
    created: set[str] = set()
    done: set[str] = set()
    step_of: dict[tuple[str, int], int] = defaultdict(lambda: -1)  # by (response, output_index)
    started: dict[str, int] = {}
    stopped: dict[str, int] = {}
    committed: dict[str, int] = {}
    added: dict[str, int] = {}
    for index, e in enumerate(events):
        kind = e["type"]
        rid = e.get("response_id") or (e["response"]["id"] if kind.startswith("response.") and "response" in e else None)
        if kind == "response.created":
            assert rid not in created, f"response {rid} created twice"
            created.add(rid)
        elif rid is not None:
            assert rid in created, f"{kind} of {rid} before its response.created"
            assert rid not in done, f"{kind} of {rid} after its response.done"
            step = _step(kind)
            if step is not None:
                key = (rid, e["output_index"])
                assert step >= step_of[key], f"{kind} of {rid} out of order"
                assert all(step_of[k] == len(_RESPONSE_STEPS) - 1 for k in step_of if k[0] == rid and k[1] < key[1]), \
                    f"{kind} of {rid}'s item {key[1]} before the items ahead of it were done"
                step_of[key] = step
            if kind == "response.done":
                done.add(rid)
                status = e["response"]["status"]
                assert status in ("completed", "cancelled", "incomplete", "failed")
                if status == "completed":
                    items = [k for k in step_of if k[0] == rid]
                    assert items and all(step_of[k] == len(_RESPONSE_STEPS) - 1 for k in items), f"{rid} completed without finishing its items"
        item = e.get("item_id")
        if kind == "input_audio_buffer.speech_started":
            started[item] = index
        elif kind == "input_audio_buffer.speech_stopped":
            assert started.get(item, index) < index, "speech_stopped before speech_started"
            stopped[item] = index
        elif kind == "input_audio_buffer.committed":
            if item in started:
                assert item in stopped, "committed before speech_stopped"
            committed[item] = index
        elif kind == "conversation.item.added":
            added[e["item"]["id"]] = index
            if e["item"]["id"] in committed:
                assert committed[e["item"]["id"]] < index
        elif kind == "conversation.item.done":
            assert e["item"]["id"] in added, "conversation.item.done before .added"
        elif kind.startswith("conversation.item.input_audio_transcription."):
            assert item in added, f"{kind} before the item was added"
    assert created == done, f"responses never done: {created - done}"


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def b64(pcm: np.ndarray) -> str:
    return base64.b64encode(pcm.astype("<i2").tobytes()).decode()


# ----------------------------------------------------------------------------- responses


def test_text_turn_follows_the_documented_sequence_then_rate_limits(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("What time is it?"))
        user = (await peer.until("conversation.item.added"))["item"]["id"]
        await peer.until("conversation.item.done")
        mark = peer.mark()
        await peer.send("response.create")
        done = await peer.until("response.done")
        limits = await peer.until("rate_limits.updated")
        kinds = [k for k in types_of(peer.received[mark:]) if k not in ("response.output_audio.delta", "response.output_audio_transcript.delta")]
        assert kinds == [
            "response.created", "response.output_item.added", "conversation.item.added", "response.content_part.added",
            "response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
            "response.output_item.done", "conversation.item.done", "response.done", "rate_limits.updated",
        ]
        response = done["response"]
        assert response["status"] == "completed" and response["status_details"] is None
        assert response["conversation_id"].startswith("conv_")
        assert re.search(r"\bit is \d{1,2}:\d\d\b", response["output"][0]["content"][0]["transcript"].lower())
        assert {r["name"] for r in limits["rate_limits"]} == {"requests", "tokens"}
        assert all(r["remaining"] <= r["limit"] for r in limits["rate_limits"])
        # The answer follows the user item, in .added and in .done.
        item_events = [e for e in peer.received[mark:] if e["type"].startswith("conversation.item.")]
        assert all(e["previous_item_id"] == user for e in item_events)

    run_scenario(models, scenario)


def test_per_response_overrides_out_of_band_text_with_input_and_metadata(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("Hello there."))
        hello = (await peer.until("conversation.item.added"))["item"]["id"]
        await peer.until("conversation.item.done")
        mark = peer.mark()
        await peer.send("response.create", response={
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Classify the user's request.",
            "metadata": {"purpose": "classification"},
            "input": [user_text("Please repeat after me: green tea.")],
        })
        done = (await peer.until("response.done"))["response"]
        assert done["status"] == "completed"
        assert done["conversation_id"] is None
        assert done["metadata"] == {"purpose": "classification"}
        assert done["output_modalities"] == ["text"]
        text = "".join(e["delta"] for e in peer.since(mark, "response.output_text.delta"))
        assert "green tea" in text.lower(), text  # answered the `input`, not the conversation
        assert text == done["output"][0]["content"][0]["text"]
        kinds = types_of(peer.received[mark:])
        assert "conversation.item.added" not in kinds and "conversation.item.done" not in kinds
        assert "response.output_audio.delta" not in kinds
        # Out of band: not part of the conversation.
        eid = await peer.send("conversation.item.retrieve", item_id=done["output"][0]["id"])
        assert (await peer.error_for(eid))["code"] == "item_not_found"
        # An item reference as input (the real API's documented form; the SDK's GA types lack it, so the
        # event is sent unvalidated); the output goes into the conversation (conversation: auto).
        mark = peer.mark()
        await peer.send_raw_event("response.create", response={"output_modalities": ["text"], "input": [{"type": "item_reference", "id": hello}]})
        done = (await peer.until("response.done"))["response"]
        assert done["status"] == "completed" and done["conversation_id"].startswith("conv_")
        assert "hello" in done["output"][0]["content"][0]["text"].lower()
        assert peer.since(mark, "conversation.item.added")

    run_scenario(models, scenario)


def test_out_of_band_response_runs_beside_the_conversation_response(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("Hello!"))
        await peer.send("response.create")
        story = (await peer.until("response.created"))["response"]["id"]
        await peer.send("response.create", response={"conversation": "none", "output_modalities": ["text"],
                                                     "input": [user_text("What time is it?")]})
        side = (await peer.until("response.created"))["response"]["id"]
        assert side != story
        finished = {}
        while len(finished) < 2:
            event = await peer.until("response.done")
            finished[event["response"]["id"]] = event["response"]["status"]
        assert finished == {story: "completed", side: "completed"}
        assert not [e for e in peer.received if e["type"] == "error"]

    run_scenario(models, scenario)


def test_max_output_tokens_ends_the_response_incomplete(models):
    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("Tell me a long story about a dragon."))
        mark = peer.mark()
        await peer.send("response.create", response={"max_output_tokens": 40})
        response = (await peer.until("response.done"))["response"]
        assert response["status"] == "incomplete"
        assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        assert response["max_output_tokens"] == 40
        assert response["output"][0]["status"] == "incomplete"
        # 40 tokens at 50 ms per audio token: at most ~2 s of audio (the whole story is over 30 s).
        assert 0 < len(decoded_audio(peer.received[mark:])) <= 2.2 * RATE
        # Text responses are capped too.
        mark = peer.mark()
        await peer.send("response.create", response={"max_output_tokens": 5, "output_modalities": ["text"]})
        response = (await peer.until("response.done"))["response"]
        assert response["status"] == "incomplete"
        assert len(response["output"][0]["content"][0]["text"]) <= 5 * 4

    run_scenario(models, scenario)


@pytest.mark.parametrize(
    "options, param",
    [
        ({"conversation": "elsewhere"}, "response.conversation"),
        ({"max_output_tokens": 0}, "response.max_output_tokens"),
        ({"output_modalities": ["video"]}, "response.output_modalities"),
        ({"metadata": {"n": 1}}, "response.metadata"),
        ({"instructions": 7}, "response.instructions"),
        ({"input": [{"type": "item_reference", "id": "item_missing"}]}, "response.input[0].id"),
        ({"input": [{"type": "message", "role": "user", "content": [{"type": "input_text"}]}]}, "response.input[0].content[0].text"),
    ],
)
def test_bad_response_options_are_errors_and_start_nothing(models, options, param):
    async def scenario(peer: TimedPeer) -> None:
        eid = await peer.send_raw_event("response.create", response=options)
        error = await peer.error_for(eid)
        assert error["param"] == param, error
        await peer.send("input_audio_buffer.clear")
        await peer.until("input_audio_buffer.cleared")
        assert "response.created" not in types_of(peer.received)

    run_scenario(models, scenario)


async def _send_raw_event(self: Peer, type_: str, **body: Any) -> str:
    """Send an event the SDK types may reject (to test the engine's own validation)."""
    self.n += 1
    event = {"type": type_, "event_id": f"evt_raw_{self.n}", **body}
    await self.ws.send(json.dumps(event))
    return event["event_id"]


TimedPeer.send_raw_event = _send_raw_event  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- items


def test_input_audio_item_is_transcribed_and_answered(models):
    speech = load_wav("what_time.wav")

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
            {"type": "input_audio", "audio": b64(speech)}]})
        added = await peer.until("conversation.item.added")
        item_id = added["item"]["id"]
        assert added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
        completed = await peer.until("conversation.item.input_audio_transcription.completed")
        assert completed["item_id"] == item_id and completed["content_index"] == 0
        assert set(MANIFEST["what_time.wav"]["key_words"]) <= words(completed["transcript"])
        await peer.send("conversation.item.retrieve", item_id=item_id)
        retrieved = (await peer.until("conversation.item.retrieved"))["item"]
        assert retrieved["content"][0]["transcript"] == completed["transcript"]
        mark = peer.mark()
        await peer.send("response.create")
        await peer.until("response.done")
        answer = peer.since(mark, "response.output_audio_transcript.done")[0]["transcript"]
        assert answer.lower().startswith("it is"), answer
        # An audio part with neither audio nor transcript is refused.
        eid = await peer.send_raw_event("conversation.item.create", item={"type": "message", "role": "user",
                                                                          "content": [{"type": "input_audio"}]})
        assert (await peer.error_for(eid))["param"] == "item.content[0].audio"

    run_scenario(models, scenario)


def test_previous_item_id_places_items_and_each_event_is_one_debug_line(models, caplog):
    caplog.set_level(logging.DEBUG, logger="desktop.engine.realtime_connection")
    seen: dict[str, Any] = {}

    async def scenario(peer: TimedPeer) -> None:
        seen["peer"] = peer
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("first"))
        first = await peer.until("conversation.item.added")
        assert first["previous_item_id"] is None
        await peer.send("conversation.item.create", item=user_text("second"))
        second = await peer.until("conversation.item.added")
        assert second["previous_item_id"] == first["item"]["id"]
        await peer.send("conversation.item.create", item=user_text("zeroth"), previous_item_id="root")
        zeroth = await peer.until("conversation.item.added")
        assert zeroth["previous_item_id"] is None
        await peer.send("conversation.item.create", item=user_text("between"), previous_item_id=first["item"]["id"])
        between = await peer.until("conversation.item.added")
        assert between["previous_item_id"] == first["item"]["id"]
        eid = await peer.send("conversation.item.create", item=user_text("nowhere"), previous_item_id="item_unknown")
        assert (await peer.error_for(eid))["code"] == "item_not_found"
        # A response's item goes at the end, after "second".
        await peer.send("response.create", response={"output_modalities": ["text"]})
        answer = await peer.until("conversation.item.added")
        assert answer["previous_item_id"] == second["item"]["id"]
        await peer.until("response.done")
        await peer.until("rate_limits.updated")

    run_scenario(models, scenario)
    peer = seen["peer"]
    lines = [r.getMessage() for r in caplog.records if r.name == "desktop.engine.realtime_connection"]
    sent = [line for line in lines if line.startswith("-> ")]
    received = [line for line in lines if line.startswith("<- ")]
    assert len(sent) == len(peer.received)
    assert [line.split()[2] for line in sent] == [e["type"] for e in peer.received]
    assert len(received) == peer.n
    assert all("\n" not in line for line in lines)


# ----------------------------------------------------------------------------- server VAD


def test_vad_turn_ordering_and_idle_timeout(models):
    speech = np.concatenate([silence(500), load_wav("what_time.wav"), silence(1200)])

    async def scenario(peer: TimedPeer) -> None:
        session = await peer.update(server_vad_session(silence_duration_ms=500, idle_timeout_ms=5000))
        assert session["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 5000
        await peer.append(speech, chunk_ms=100)
        done = (await peer.until("response.done"))["response"]
        assert done["status"] == "completed"
        answer_ms = len(decoded_audio(peer.received)) * 1000 // RATE
        kinds = types_of(peer.received)
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped") \
            < kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
        assert "input_audio_buffer.timeout_triggered" not in kinds
        # The user says nothing: the clock runs from response.done plus the answer's playing time.
        input_ms = len(speech) * 1000 // RATE
        mark = peer.mark()
        await peer.append(silence(answer_ms + 4000), chunk_ms=100)
        await asyncio.sleep(0.2)
        assert not peer.since(mark, "input_audio_buffer.timeout_triggered"), "fired before idle_timeout_ms"
        await peer.append(silence(1500), chunk_ms=100)
        fired = await peer.until("input_audio_buffer.timeout_triggered")
        assert abs(fired["audio_start_ms"] - (input_ms + answer_ms)) <= 150, (fired, input_ms, answer_ms)
        assert 5000 <= fired["audio_end_ms"] - fired["audio_start_ms"] <= 5150
        committed = await peer.until("input_audio_buffer.committed")
        assert committed["item_id"] == fired["item_id"]
        prompt = (await peer.until("response.done"))["response"]
        assert prompt["status"] == "completed"
        assert "still there" in prompt["output"][0]["content"][0]["transcript"].lower()
        kinds = types_of(peer.received[mark:])
        assert kinds.index("input_audio_buffer.timeout_triggered") < kinds.index("input_audio_buffer.committed") \
            < kinds.index("response.created")

    run_scenario(models, scenario)


# ----------------------------------------------------------------------------- concurrency


def test_two_sessions_do_not_block_each_other(models):
    async def main() -> None:
        server = EngineServer(models=models)
        port = await server.start("127.0.0.1", 0)
        try:
            ws_a, a = await open_peer(port)
            ws_b, b = await open_peer(port)
            async with ws_a, ws_b:
                await a.update(MANUAL_WITH_TRANSCRIPTION)
                await b.update(MANUAL_WITH_TRANSCRIPTION)
                # A: a long spoken answer (sentence after sentence of synthesis) and a transcription.
                await a.send("conversation.item.create", item=user_text("Tell me a long story about a dragon."))
                await a.send("response.create")
                await a.until("response.output_audio.delta")
                await a.append(load_wav("hello_weather.wav"), chunk_ms=200)
                await a.send("input_audio_buffer.commit")
                a_busy_until: list[float] = []

                async def drain_a() -> None:
                    await a.until("response.done", timeout=120)
                    a_busy_until.append(time.perf_counter())

                drainer = asyncio.create_task(drain_a())
                # B meanwhile: round trips keep flowing.
                round_trips = []
                for i in range(8):
                    t0 = time.perf_counter()
                    await b.update({"type": "realtime", "instructions": f"round {i}"})
                    round_trips.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.05)
                b_finished = time.perf_counter()
                assert not drainer.done(), "A finished before B's round trips: nothing was measured"
                await a.send("response.cancel")
                await drainer
                assert b_finished < a_busy_until[0]
                assert max(round_trips) < 1.0, round_trips
                assert sorted(round_trips)[len(round_trips) // 2] < 0.25, round_trips
                # A's work went on meanwhile: its speech kept coming and its turn was transcribed.
                assert len(decoded_audio(a.received)) > 0
                await a.until("conversation.item.input_audio_transcription.completed", timeout=120)
        finally:
            await server.stop()

    asyncio.run(main())


# ----------------------------------------------------------------------------- the LLM brain


class FakeChatCompletions:
    """A small OpenAI-compatible chat-completions server on 127.0.0.1 (streams server-sent events)."""

    def __init__(self, pieces: list[str | dict[str, Any]], status: int = 200, hold_last: threading.Event | None = None) -> None:
        #: Each piece is a reply's text, or a whole `delta` object (e.g. with `tool_calls`).
        self.pieces, self.status = pieces, status
        #: When given, the last piece is only sent once this is set (or after 30 s).
        self.hold_last = hold_last
        self.released_in_time: bool | None = None
        self.requests: list[dict[str, Any]] = []
        self.last_piece_sent_at: float | None = None
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode()
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
            self.requests.append({"line": request_line.strip(), "headers": headers, "body": body})
            if self.status != 200:
                payload = json.dumps({"error": {"message": "model overloaded", "type": "server_error"}}).encode()
                writer.write(f"HTTP/1.1 {self.status} Error\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n")

            async def event(data: str) -> None:
                raw = f"data: {data}\n\n".encode()
                writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                await writer.drain()

            for i, piece in enumerate(self.pieces):
                if self.hold_last is not None and i == len(self.pieces) - 1:
                    self.released_in_time = await asyncio.to_thread(self.hold_last.wait, 30)
                chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                         "choices": [{"index": 0, "delta": piece if isinstance(piece, dict) else {"role": "assistant", "content": piece}, "finish_reason": None}]}
                await event(json.dumps(chunk))
            self.last_piece_sent_at = time.perf_counter()
            await event(json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body.get("model"),
                                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
            await event("[DONE]")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()


# The smallest valid PNG (1x1), as a user would attach an image.
PNG_1PX = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def test_llm_brain_gets_text_and_images_and_is_spoken_sentence_by_sentence(models):
    first_audio = threading.Event()
    fake = FakeChatCompletions(["Hello from the", " language model. ", "This second sentence", " arrives later."],
                               hold_last=first_audio)

    async def scenario(peer: TimedPeer) -> None:
        await peer.update({"type": "realtime", "instructions": "Be a helpful test.", "audio": {"input": {"turn_detection": None}}})
        await peer.send("conversation.item.create", item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture?"}, {"type": "input_image", "image_url": PNG_1PX}]})
        mark = peer.mark()
        await peer.send("response.create")
        # The model holds back the end of its reply until the first sentence is heard: the engine must speak
        # sentence by sentence while the stream is still open.
        await peer.until("response.output_audio.delta")
        first_audio.set()
        done = (await peer.until("response.done"))["response"]
        assert done["status"] == "completed", done
        transcript = done["output"][0]["content"][0]["transcript"]
        assert transcript == "Hello from the language model. This second sentence arrives later."
        deltas = [e["delta"] for e in peer.since(mark, "response.output_audio_transcript.delta")]
        assert deltas == ["Hello from the language model.", " This second sentence arrives later."]
        assert fake.released_in_time is True, "no audio until the model's reply was complete"
        assert peer.first_time("response.output_audio.delta", mark) < fake.last_piece_sent_at
        request = fake.requests[0]
        assert request["line"].startswith("POST /v1/chat/completions")
        assert request["headers"]["authorization"] == "Bearer sk-fake-llm"
        body = request["body"]
        assert body["model"] == "fake-model" and body["stream"] is True
        assert body["messages"][0] == {"role": "system", "content": "Be a helpful test."}
        assert body["messages"][1] == {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": PNG_1PX}}]}
        # The next turn carries the history, the assistant's answer included.
        await peer.send("conversation.item.create", item=user_text("Thanks."))
        await peer.send("response.create", response={"output_modalities": ["text"]})
        assert (await peer.until("response.done"))["response"]["status"] == "completed"
        history = fake.requests[1]["body"]["messages"]
        assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]
        assert history[2]["content"] == transcript

    async def main() -> None:
        url = await fake.start()
        try:
            await asyncio.to_thread(
                run_scenario, models, scenario,
                brain_factory=lambda: LLMBrain(url, model="fake-model", api_key="sk-fake-llm"))
        finally:
            await fake.stop()

    asyncio.run(main())


@pytest.mark.parametrize("failure", ["http_500", "unreachable"])
def test_llm_failure_is_an_apology_and_a_failed_response(models, failure):
    fake = FakeChatCompletions([], status=500)

    async def scenario(peer: TimedPeer) -> None:
        await peer.update(MANUAL_WITH_TRANSCRIPTION)
        await peer.send("conversation.item.create", item=user_text("Hello?"))
        mark = peer.mark()
        await peer.send("response.create")
        response = (await peer.until("response.done"))["response"]
        assert response["status"] == "failed"
        error = response["status_details"]["error"]
        if failure == "http_500":
            assert error["code"] == "llm_http_error" and "HTTP 500" in error["message"] and "model overloaded" in error["message"]
        else:
            assert error["code"] == "llm_unreachable" and "Cannot reach" in error["message"]
        spoken = peer.since(mark, "response.output_audio_transcript.done")[0]["transcript"]
        assert spoken.startswith("Sorry")
        assert len(decoded_audio(peer.received[mark:])) > 0.5 * RATE
        # Still usable.
        await peer.send("conversation.item.create", item=user_text("Again?"))
        await peer.send("response.create", response={"output_modalities": ["text"]})
        again = (await peer.until("response.done"))["response"]
        assert again["status"] == "failed" and again["output"][0]["content"][0]["text"].startswith("Sorry")

    async def main() -> None:
        url = await fake.start()
        if failure == "unreachable":
            await fake.stop()  # nothing listens on that port any more
        try:
            await asyncio.to_thread(run_scenario, models, scenario, brain_factory=lambda: LLMBrain(url, model="m", timeout=10))
        finally:
            await fake.stop()

    asyncio.run(main())


def test_sentence_assembler_cuts_a_stream_only_at_certain_sentence_ends():
    a = SentenceAssembler()
    out: list[str] = []
    for piece in ["Dr. Smith paid 3.", "5 dollars. Then", " he left!", " And", " then"]:
        out += a.feed(piece)
    assert out == ["Dr. Smith paid 3.5 dollars.", "Then he left!"]
    assert a.flush() == ["And then"]
    assert chat_completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"
    assert "sk-secret" not in repr(LLMBrain("http://h:1/v1", api_key="sk-secret"))


# ----------------------------------------------------------------------------- speech accuracy


def _normalize(text: str) -> list[str]:
    numbers = {"ten": "10", "seven": "7", "eight": "8"}
    return [numbers.get(w, w) for w in re.findall(r"[a-z0-9']+", text.lower())]


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def test_asr_word_error_rate_on_the_fixtures(models):
    """Whisper tiny.en as the engine runs it, over every spoken fixture (natural Piper and robotic espeak)."""
    models.asr.load()
    errors = words_total = 0
    per_file = {}
    for name, meta in MANIFEST.items():
        reference = _normalize(meta["text"])
        hypothesis = _normalize(models.asr.transcribe(load_wav(name)))
        if not reference:
            assert len(hypothesis) <= 1, (name, hypothesis)  # noise and silence: (almost) nothing
            continue
        e = _edit_distance(reference, hypothesis)
        per_file[name] = (e, " ".join(hypothesis))
        errors += e
        words_total += len(reference)
    wer = errors / words_total
    assert wer <= 0.10, (round(wer, 3), per_file)


# ----------------------------------------------------------------------------- standalone server


def test_bearer_token_is_required_when_set(models):
    async def main() -> None:
        server = EngineServer(models=models, token="s3cret-token")
        port = await server.start("127.0.0.1", 0)
        try:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
                with pytest.raises(InvalidStatus) as caught:
                    async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=x", additional_headers=headers):
                        pass
                assert caught.value.response.status_code == 401, headers
            async with connect(f"ws://127.0.0.1:{port}/v1/realtime?model=x",
                               additional_headers={"Authorization": "Bearer s3cret-token"}) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                validate_server_event(first, allow_extra=SERVER_EXTRAS_OF_THE_REAL_API)
                assert first["type"] == "session.created"
        finally:
            await server.stop()

    asyncio.run(main())


def test_cli_refuses_non_loopback_without_allow_remote_and_token(capsys, monkeypatch):
    monkeypatch.delenv("PARLEY_ENGINE_TOKEN", raising=False)
    assert cli.main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert cli.main(["--host", "0.0.0.0", "--port", "0", "--allow-remote"]) == 2
    assert cli.main(["--host", "192.0.2.1", "--port", "0", "--token", "t"]) == 2
    assert cli.main(["--llm-url", "ftp://x", "--port", "0"]) == 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--host", "--port", "--allow-remote", "--token", "--llm-url", "--llm-model", "--llm-key", "--log-level"):
        assert option in help_text
    assert "127.0.0.1" in help_text
